"""What only the Redis adapter has: names, clients, NUMERIC slots beyond the first batch, a server without the
search module, reopening checks, and (with a 3-master cluster) items spread over the shards and merged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from finetune_embed import ConfigError, DimensionMismatchError, UnsupportedFilterError

from ._data import vectors
from ._engine_redis import EngineError, running
from .conftest import unavailable, unique_name


@pytest.fixture
def store(redis_url: str) -> Any:
    from finetune_embed.stores import RedisIndex

    made = RedisIndex(redis_url, unique_name("rt"), dim=4)
    yield made
    made.drop()
    made.close()


@pytest.mark.parametrize("name", ["", "a:b", "x" * 101, "sp ace", "{tag}", 3])
def test_names_that_could_collide_are_refused(redis_url: str, name: Any) -> None:
    """A ':' would let one store's key prefix cover another's; braces would pin every key to one cluster slot."""
    from finetune_embed.stores import RedisIndex

    with pytest.raises(ConfigError, match="name must be"):
        RedisIndex(redis_url, name)


def test_a_decoding_client_is_refused(redis_url: str) -> None:
    """Vectors are raw float32 bytes: a client that decodes replies to str would mangle them."""
    import redis as redis_py

    from finetune_embed.stores import RedisIndex

    client = redis_py.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ConfigError, match="decode_responses=False"):
        RedisIndex(client, unique_name("rt"))
    client.close()


def test_a_passed_client_stays_open_and_repr_shows_no_address(redis_url: str) -> None:
    import redis as redis_py

    from finetune_embed.stores import RedisIndex

    client = redis_py.Redis.from_url(redis_url)
    with RedisIndex(client, unique_name("rt"), dim=2) as store:
        assert "127.0.0.1" not in repr(store)
        assert repr(store).startswith("RedisIndex(name='rt_")
        store.drop()
    assert client.ping()
    client.close()


def test_more_numeric_paths_than_the_first_batch_of_slots(store: Any) -> None:
    """Each metadata path that holds a number gets a NUMERIC field; past the first 32 more are declared, and ranges
    on every path run inside RediSearch."""
    n = 40
    metas = [{f"f{j}": i * 10 + j for j in range(n)} for i in range(5)]
    store.add([f"i{i}" for i in range(5)], vectors(5, 4), metas)
    for j in (0, 31, 32, 39):
        got = store.search([1.0, 0, 0, 0], k=10, where={f"f{j}": {"$gte": 20 + j}})
        assert sorted(got.ids) == ["i2", "i3", "i4"], j
    assert store.search([1.0, 0, 0, 0], k=10, where={"never": {"$lt": 5}}).ids == []


def test_string_ranges_name_the_engine_and_operator(store: Any) -> None:
    store.add(["a"], [[1, 0, 0, 0]], {"s": "b"})
    with pytest.raises(UnsupportedFilterError, match="redis") as info:
        store.search([1, 0, 0, 0], k=1, where={"$or": [{"x": 1}, {"s": {"$lt": "c"}}]})
    assert (info.value.engine, info.value.operator) == ("redis", "$lt:string")


def test_reopening_checks_dimension_metric_and_algorithm(redis_url: str) -> None:
    from finetune_embed.stores import RedisIndex

    name = unique_name("rt")
    with RedisIndex(redis_url, name, dim=3, metric="dot", model="m1") as store:
        store.add(["a"], [[1, 2, 3]])
    with pytest.raises(DimensionMismatchError):
        RedisIndex(redis_url, name, dim=4)
    with pytest.raises(ConfigError, match="metric='dot'"):
        RedisIndex(redis_url, name, metric="cosine")
    with pytest.raises(ConfigError, match="algorithm='flat'"):
        RedisIndex(redis_url, name, algorithm="hnsw")
    with pytest.raises(ConfigError, match="different models"):
        RedisIndex(redis_url, name, model="m2")
    with RedisIndex(redis_url, name) as again:
        assert (again.dim, again.metric, again.model, len(again)) == (3, "dot", "m1", 1)
        again.drop()
    with pytest.raises(ConfigError, match="no store"):
        RedisIndex(redis_url, name, create=False)


def test_dimension_set_by_the_first_add(redis_url: str) -> None:
    from finetune_embed.stores import RedisIndex

    with RedisIndex(redis_url, unique_name("rt")) as store:
        assert store.dim is None
        assert len(store) == 0
        assert len(store.search([1.0, 0.0], k=3)) == 0
        store.add(["a", "b"], [[1, 0], [0, 1]], [{"x": 1}, {"x": 2}])
        assert store.dim == 2
        assert store.search([1.0, 0.1], k=1, where={"x": {"$lt": 2}}).ids == ["a"]
        store.drop()


def test_a_server_without_the_search_module_is_a_clear_error() -> None:
    """Plain Redis has no FT.* commands: the error says which module to load."""
    from finetune_embed.stores import RedisIndex

    try:
        context = running(search=False)
        servers = context.__enter__()
    except EngineError as exc:
        unavailable(f"no Redis server could start: {exc}")
        raise
    try:
        with pytest.raises(ConfigError, match="RediSearch"):
            RedisIndex(servers[0].url, "plain", dim=2)
    finally:
        context.__exit__(None, None, None)


def test_cluster_spreads_items_over_every_master_and_merges(redis_cluster_url: str, redis_url: str) -> None:
    """On a 3-master cluster each master indexes its own share; a search asks all three and merges to exactly
    the answer of one server holding everything (filtered too)."""
    from finetune_embed.stores import RedisIndex
    from finetune_embed.stores._redis_shards import command, info_field

    n, dim = 300, 16
    ids, x = [f"doc-{i}" for i in range(n)], vectors(n, dim, seed=5)
    meta = [{"cat": i % 5} for i in range(n)]
    cluster = RedisIndex(redis_cluster_url, unique_name("rc"), dim=dim)
    single = RedisIndex(redis_url, unique_name("rs"), dim=dim)
    try:
        cluster.add(ids, x, meta)
        single.add(ids, x, meta)
        assert cluster.shards == 3
        counts = [int(info_field(command(s.conn, "FT.INFO", s.index), "num_docs")) for s in cluster._shards]
        assert sum(counts) == n
        assert min(counts) > n // 6, counts  # every master holds a real share
        q = vectors(5, dim, seed=6)
        for where in (None, {"cat": 2}, {"cat": {"$ne": 2}}):
            for got, want in zip(cluster.search(q, k=25, where=where), single.search(q, k=25, where=where),
                                 strict=True):  # fmt: skip
                assert got.ids == want.ids
                np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        assert [i for batch, _, _ in cluster.iter_items(100) for i in batch] == ids  # insertion order
    finally:
        for store in (cluster, single):
            store.drop()
            store.close()


def test_ids_may_hold_nul_characters(store: Any) -> None:
    """Redis keys are binary-safe, so unlike the other engines an id may hold NUL: it is stored, read back, searched,
    excluded, searched by and deleted like any other (StoreBase's id checks keep the NUL refusal for the others)."""
    ids = ["a\x00b", "a", "\x00"]
    x = vectors(3, 4, seed=41)
    store.add(ids, x, [{"i": 0}, {"i": 1}, {"i": 2}])
    assert "a\x00b" in store
    assert len(store) == 3
    assert store.get("a\x00b").metadata == {"i": 0}
    assert set(store.search(x[0], k=3).ids) == set(ids)
    assert "a\x00b" not in store.search(x[0], k=3, exclude=["a\x00b"]).ids
    assert "\x00" not in store.search_by_id("\x00", k=3).ids
    store.upsert("a\x00b", x[1], {"i": 9})
    assert store.get("a\x00b").metadata == {"i": 9}
    assert store.delete(["a\x00b", "\x00"]) == 2
    assert store.search(x[0], k=3).ids == ["a"]
