"""High availability on a 3-node Typesense Raft cluster on 127.0.0.1 (``--nodes``): a write sent to a follower
reaches every node; after the leader is killed a new one is elected, and later writes and reads succeed.

Followers apply the leader's log asynchronously, so a read on another node can trail a write by a moment: reads
are polled until they agree (with a deadline), never assumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from finetune_embed.index import EmbeddingIndex

from ._data import vectors
from ._engine_typesense import FOLLOWER, LEADER, EngineError, Node, running, wait_until
from .conftest import unavailable, unique_name

DIM = 8


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[Node]]:
    """Three nodes, healthy, with an elected leader (about 10 s to form); stopped after this module."""
    try:
        context = running(3, timeout=90)
        nodes = context.__enter__()
    except EngineError as exc:
        unavailable(f"no 3-node Typesense cluster could form: {exc}")
        raise
    try:
        yield nodes
    finally:
        context.__exit__(None, None, None)


def _store(nodes: list[Node], name: str, **options: Any) -> Any:
    from finetune_embed.stores import TypesenseIndex

    return TypesenseIndex([n.url for n in nodes], name, api_key=nodes[0].api_key, **options)


def _eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.1)


def _agrees(node: Node, name: str, ids: list[str], reference: EmbeddingIndex, q: Any) -> bool:
    """Whether ``node`` alone holds exactly ``ids`` and answers a filtered search as the reference does."""
    store = _store([node], name)
    try:
        if len(store) != len(ids):
            return False
        return bool(store.search(q, k=5, where={"part": 1}).ids == reference.search(q, k=5, where={"part": 1}).ids)
    except Exception:  # a follower that has not seen the collection yet
        return False


def test_a_write_to_a_follower_reaches_every_node_and_survives_the_leader(cluster: list[Node]) -> None:
    states = {n.api_port: n.state() for n in cluster}
    leader = next(n for n in cluster if states[n.api_port] == LEADER)
    follower = next(n for n in cluster if states[n.api_port] == FOLLOWER)
    name = unique_name("tc")
    x = vectors(40, DIM, seed=21)
    ids = [f"d{i}" for i in range(40)]
    meta = [{"part": i % 2} for i in range(40)]
    reference = EmbeddingIndex(DIM)
    q = vectors(1, DIM, seed=22)[0]

    with _store([follower], name, dim=DIM) as via_follower:  # the follower forwards the writes to the leader
        via_follower.add(ids[:30], x[:30], meta[:30])
    reference.add(ids[:30], x[:30], meta[:30])
    for node in cluster:
        _eventually(lambda node=node: _agrees(node, name, ids[:30], reference, q), f"node {node.api_port} in sync")

    leader.kill()
    survivors = [n for n in cluster if n is not leader]
    wait_until(lambda: any(n.state() == LEADER for n in survivors), "a new leader", survivors, 60)
    new_leader = next(n for n in survivors if n.state() == LEADER)
    assert new_leader is not leader

    with _store(cluster, name) as everywhere:  # the client skips the dead node
        everywhere.add(ids[30:], x[30:], meta[30:])
        everywhere.upsert("d0", x[0], {"part": 1, "moved": True})
        reference.add(ids[30:], x[30:], meta[30:])
        reference.upsert("d0", x[0], {"part": 1, "moved": True})
        for node in survivors:
            _eventually(lambda node=node: _agrees(node, name, ids, reference, q), f"node {node.api_port} in sync")
        got = everywhere.search(q, k=5, where={"part": 1})
        want = reference.search(q, k=5, where={"part": 1})
        assert got.ids == want.ids
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        assert everywhere.get("d0").metadata == {"part": 1, "moved": True}
        assert len(everywhere) == 40
        everywhere.drop()
