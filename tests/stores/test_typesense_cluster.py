"""High availability and read-your-writes on a 3-node Typesense Raft cluster on 127.0.0.1 (``--nodes``).

Typesense answers a read from the receiving node's own data, and a follower applies a write a moment after the
leader acknowledged it. ``TypesenseIndex(read_your_writes=True)`` (the default) therefore returns from a write only
once every node that answers has applied it: right after a write, each node *alone* answers as the reference does
(no polling in these tests). A node that cannot apply it (stopped with SIGSTOP) ends the wait with a typed
``ReplicationLagError`` naming it. The cluster is the session's, which the conformance suite also runs on (backend
``typesense-cluster``); the test that kills its leader starts that node again, and it rejoins.
"""

from __future__ import annotations

import os
import signal
import urllib.error
from typing import Any

import numpy as np
import pytest

from finetune_embed import ReplicationLagError
from finetune_embed.index import EmbeddingIndex

from ._data import vectors
from ._engine_typesense import FOLLOWER, LEADER, Node, wait_until
from .conftest import unique_name

DIM = 8


@pytest.fixture
def cluster(typesense_cluster: list[Node]) -> list[Node]:
    """The session's three nodes (tests/stores/_engine_typesense.py), each a leader or a follower again."""
    _roles(typesense_cluster)
    return typesense_cluster


def _store(nodes: list[Node], name: str, **options: Any) -> Any:
    from finetune_embed.stores import TypesenseIndex

    return TypesenseIndex([n.url for n in nodes], name, api_key=nodes[0].api_key, **options)


def _follower_client(nodes: list[Node], follower: Node) -> Any:
    """A client that sends every request to ``follower`` (``nearest_node``) and knows all of ``nodes``."""
    import typesense

    return typesense.Client({"nodes": [n.url for n in nodes], "nearest_node": follower.url,
                             "api_key": follower.api_key})  # fmt: skip


def _status(node: Node, path: str) -> int:
    try:
        node.get(path)
        return 200
    except urllib.error.HTTPError as exc:
        return exc.code


def _roles(nodes: list[Node]) -> tuple[Node, list[Node]]:
    """The leader and the followers, once every node has one of the two roles."""
    wait_until(lambda: sorted(n.state() or 0 for n in nodes) == [LEADER, FOLLOWER, FOLLOWER], "stable roles", nodes,
               60)  # fmt: skip
    leader = next(n for n in nodes if n.state() == LEADER)
    return leader, [n for n in nodes if n is not leader]


def _same_on(node: Node, name: str, ids: list[str], reference: EmbeddingIndex, q: Any) -> None:
    """``node`` alone holds exactly ``ids`` and answers a filtered search and a lookup as the reference does."""
    with _store([node], name) as alone:
        assert len(alone) == len(ids), node.url
        got, want = alone.search(q, k=5, where={"part": 1}), reference.search(q, k=5, where={"part": 1})
        assert got.ids == want.ids, node.url
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        assert alone.get(ids[0]).metadata == reference.get(ids[0]).metadata


def test_a_lagging_node_ends_the_wait_with_a_typed_error(cluster: list[Node]) -> None:
    """A follower stopped with SIGSTOP cannot apply writes (the two others still commit them): the write is stored,
    its wait ends after ``replication_timeout`` with ReplicationLagError naming that node; without
    ``read_your_writes`` the same write returns at once. Resumed, the node catches up and the next write waits for
    it again."""
    import typesense

    from finetune_embed.stores import TypesenseIndex

    leader, (stopped, _) = _roles(cluster)
    client = typesense.Client({
        "nodes": [n.url for n in cluster], "nearest_node": leader.url, "api_key": leader.api_key,
        "connection_timeout_seconds": 1, "num_retries": 3,
    })  # fmt: skip  (every request to the leader; the wait still asks all three nodes)
    name = unique_name("tl")
    x = vectors(6, DIM, seed=31)
    with TypesenseIndex(client, name, dim=DIM, replication_timeout=2) as store:
        assert stopped.process is not None
        os.kill(stopped.process.pid, signal.SIGSTOP)
        try:
            with pytest.raises(ReplicationLagError) as info:
                store.add(["a", "b"], x[:2], [{"part": 1}, {"part": 1}])
            assert info.value.node == stopped.url
            assert info.value.waited >= 2
            assert isinstance(info.value, TimeoutError)
            assert leader.api_key not in str(info.value)
            assert len(store) == 2  # stored: the leader answers
            with TypesenseIndex(client, name, read_your_writes=False) as no_wait:
                no_wait.add(["c"], x[2:3], {"part": 0})  # returns although a node cannot apply it
        finally:
            os.kill(stopped.process.pid, signal.SIGCONT)
    with TypesenseIndex(client, name) as again:  # the default wait: the resumed node catches up within it
        again.upsert(["d"], x[3:4], {"part": 1})
    reference = EmbeddingIndex(DIM)
    reference.add(["a", "b", "c", "d"], x[:4], [{"part": 1}, {"part": 1}, {"part": 0}, {"part": 1}])
    _same_on(stopped, name, ["a", "b", "c", "d"], reference, vectors(1, DIM, seed=32)[0])
    _store(cluster, name).drop()


def test_a_write_to_a_follower_is_read_on_every_node_and_survives_the_leader(cluster: list[Node]) -> None:
    leader, followers = _roles(cluster)
    name = unique_name("tc")
    x = vectors(40, DIM, seed=21)
    ids = [f"d{i}" for i in range(40)]
    meta = [{"part": i % 2} for i in range(40)]
    reference = EmbeddingIndex(DIM)
    q = vectors(1, DIM, seed=22)[0]

    from finetune_embed.stores import TypesenseIndex

    # every request to a follower, which forwards the writes to the leader; each node alone has them on return
    with TypesenseIndex(_follower_client(cluster, followers[0]), name, dim=DIM) as via_follower:
        via_follower.add(ids[:30], x[:30], meta[:30])
    reference.add(ids[:30], x[:30], meta[:30])
    for node in cluster:
        _same_on(node, name, ids[:30], reference, q)

    leader.kill()
    try:
        survivors = [n for n in cluster if n is not leader]
        wait_until(lambda: any(n.state() == LEADER for n in survivors), "a new leader", survivors, 60)
        _after_the_leader_died(cluster, survivors, name, ids, x, meta, reference, q)
    finally:
        leader.rejoin()  # same ports and data: back as a follower, for the session's later tests
        _roles(cluster)


def _after_the_leader_died(cluster: list[Node], survivors: list[Node], name: str, ids: list[str], x: Any,
                           meta: list[dict[str, Any]], reference: EmbeddingIndex, q: Any) -> None:  # fmt: skip
    with _store(cluster, name) as everywhere:  # the client skips the dead node; the wait does too
        everywhere.add(ids[30:], x[30:], meta[30:])
        everywhere.upsert("d0", x[0], {"part": 1, "moved": True})
        assert everywhere.delete(["d1", "d3"]) == 2
        reference.add(ids[30:], x[30:], meta[30:])
        reference.upsert("d0", x[0], {"part": 1, "moved": True})
        reference.delete(["d1", "d3"])
        kept = [i for i in ids if i not in ("d1", "d3")]
        for node in survivors:
            _same_on(node, name, kept, reference, q)
        got = everywhere.search(q, k=5, where={"part": 1})
        want = reference.search(q, k=5, where={"part": 1})
        assert got.ids == want.ids
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        assert everywhere.get("d0").metadata == {"part": 1, "moved": True}
        assert len(everywhere) == 38
        everywhere.drop()
        for node in survivors:
            assert _status(node, f"/collections/{name}") == 404
