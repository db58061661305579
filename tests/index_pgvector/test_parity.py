"""PgVectorIndex and EmbeddingIndex give the same answers; from_index / to_index move data both ways intact."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("psycopg", reason="the pgvector extra (psycopg) is not installed")

from finetune_embed import ConfigError, DuplicateIdError
from finetune_embed.index import BatchMatches, EmbeddingIndex, Matches
from finetune_embed.index.pgvector import PgVectorIndex

pytestmark = pytest.mark.pgvector

LANGS = ["en", "fr", "de", "nl"]


def _metadata(rng: random.Random, i: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"i": i}
    if rng.random() < 0.8:
        meta["lang"] = rng.choice(LANGS)
    if rng.random() < 0.7:
        meta["stars"] = rng.choice([1, 2, 3, 4, 5, 2.5, None, "4", True])
    if rng.random() < 0.5:
        meta["user"] = {"country": rng.choice(["NL", "FR", "US"]), "age": rng.randint(10, 80)}
    if rng.random() < 0.3:
        meta["tags"] = rng.sample(["a", "b", "c"], rng.randint(0, 2))
    return meta


def _where(rng: random.Random) -> dict[str, Any] | None:
    choices: list[dict[str, Any] | None] = [
        None,
        {"lang": rng.choice(LANGS)},
        {"lang": {"$in": rng.sample(LANGS, 2)}},
        {"lang": {"$nin": rng.sample(LANGS, 2)}},
        {"stars": {"$gte": rng.choice([2, 2.5, 4])}},
        {"stars": {"$lt": 3}, "lang": {"$ne": "en"}},
        {"user.country": rng.choice(["NL", "FR"]), "user.age": {"$gt": rng.randint(10, 70)}},
        {"stars": None},
        {"stars": True},
        {"tags": ["a"]},
        {"stars": {"$gt": "3"}},
        {"user": {"$ne": None}, "i": {"$lte": rng.randint(0, 2000)}},
    ]
    return rng.choice(choices)


def _build(metric: str, conninfo: str, table: str) -> tuple[EmbeddingIndex, PgVectorIndex, npt.NDArray[np.float32]]:
    rng = random.Random(3)
    nrng = np.random.default_rng(3)
    n, d = 1500, 24
    vectors = nrng.standard_normal((n, d)).astype(np.float32)
    vectors[100:110] = vectors[5]  # exact duplicates: equal scores, broken by insertion order
    ids = [f"item-{i}" for i in range(n)]
    metadata = [_metadata(rng, i) for i in range(n)]
    local = EmbeddingIndex(d, metric=metric)  # type: ignore[arg-type]
    remote = PgVectorIndex(conninfo, table, dim=d, metric=metric)  # type: ignore[arg-type]
    for index in (local, remote):
        index.add(ids[:1000], vectors[:1000], metadata[:1000])
        index.add(ids[1000:], vectors[1000:], metadata[1000:])
        index.delete(["item-3", "item-104", "item-999"])
        index.upsert(["item-7", "item-3", "item-1499"], vectors[[0, 1, 2]] * 2, [{"lang": "en"}, None, {"x": 1}])
    return local, remote, vectors


def _same(got: Matches, want: Matches) -> None:
    assert len(got) == len(want)
    np.testing.assert_allclose(got.scores, want.scores, atol=2e-6)
    for pos, (g, w) in enumerate(zip(got.ids, want.ids, strict=True)):
        if g != w:  # a float near-tie may swap two neighbours; nothing else may differ
            assert abs(float(got.scores[pos]) - float(want.scores[pos])) < 2e-6, (got.ids, want.ids)
            assert g in want.ids
    by_id = dict(zip(want.ids, want.metadata, strict=True))
    assert all(by_id[i] == m for i, m in zip(got.ids, got.metadata, strict=True))


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_random_queries_and_filters_give_the_same_results(metric: str, conninfo: str, table: str) -> None:
    local, remote, vectors = _build(metric, conninfo, table)
    with remote:
        assert remote.ids == local.ids
        assert len(remote) == len(local)
        rng = random.Random(9)
        queries = np.random.default_rng(4).standard_normal((40, vectors.shape[1])).astype(np.float32)
        queries[0] = vectors[5]  # hits the duplicates
        filtered = 0
        for q in queries:
            where = _where(rng)
            k = rng.choice([1, 5, 20])
            want = local.search(q, k=k, where=where)
            got = remote.search(q, k=k, where=where)
            assert isinstance(got, Matches)
            assert isinstance(want, Matches)
            _same(got, want)
            filtered += where is not None
        assert filtered > 20
        assert remote.search(vectors[5], k=12).ids[:12] == local.search(vectors[5], k=12).ids  # type: ignore[union-attr]
        batch_got = remote.search(queries[:8], k=6, where={"lang": {"$in": ["en", "de"]}}, exclude=["item-5"])
        batch_want = local.search(queries[:8], k=6, where={"lang": {"$in": ["en", "de"]}}, exclude=["item-5"])
        assert isinstance(batch_got, BatchMatches)
        assert isinstance(batch_want, BatchMatches)
        for g, w in zip(batch_got, batch_want, strict=True):
            _same(g, w)
        for item_id in ["item-5", "item-7", "item-1200"]:
            _same(remote.search_by_id(item_id, k=8), local.search_by_id(item_id, k=8))
            _same(
                remote.search_by_id(item_id, k=8, where={"stars": {"$gte": 3}}, exclude_self=False),
                local.search_by_id(item_id, k=8, where={"stars": {"$gte": 3}}, exclude_self=False),
            )
        np.testing.assert_array_equal(remote.get("item-7").vector, local.get("item-7").vector)
        assert remote.get("item-1499").metadata == local.get("item-1499").metadata


def test_from_index_copies_everything_bit_for_bit(conninfo: str, table: str) -> None:
    local, source, _ = _build("cosine", conninfo, table + "_src")
    source.close()
    local.model = "text-embedding-3-small"
    with PgVectorIndex.from_index(local, conninfo, table, batch_size=400) as remote:
        assert (remote.dim, remote.metric, remote.model) == (local.dim, local.metric, "text-embedding-3-small")
        assert remote.ids == local.ids
        np.testing.assert_array_equal(remote.vectors, local.vectors)
        assert remote.metadata == local.metadata
        back = remote.to_index()
    assert back.ids == local.ids
    assert back.metadata == local.metadata
    assert (back.metric, back.model) == ("cosine", "text-embedding-3-small")
    np.testing.assert_allclose(back.vectors, local.vectors, atol=1e-7)
    query = local.vectors[10].copy()  # (EmbeddingIndex.search normalises a float32 query in place)
    assert back.search(query, k=10).ids == local.search(query, k=10).ids  # type: ignore[union-attr]
    with PgVectorIndex(conninfo, table) as reopened:  # metric and model come from the table
        assert (reopened.metric, reopened.model) == ("cosine", "text-embedding-3-small")
        with pytest.raises(ConfigError, match="different models"):
            PgVectorIndex(conninfo, table, model="text-embedding-3-large")


def test_from_index_is_all_or_nothing(conninfo: str, table: str) -> None:
    local = EmbeddingIndex(4)
    local.add([f"v{i}" for i in range(100)], np.random.default_rng(0).standard_normal((100, 4)))
    with PgVectorIndex(conninfo, table, dim=4) as existing:
        existing.add(["v90"], np.ones(4))
    with pytest.raises(DuplicateIdError) as info:
        PgVectorIndex.from_index(local, conninfo, table, batch_size=30)  # the clash is in the last batch
    assert info.value.ids == ["v90"]
    with PgVectorIndex(conninfo, table) as after:
        assert after.ids == ["v90"]  # the first three batches were rolled back too


def test_from_index_with_hnsw_and_other_storage(conninfo: str, table: str) -> None:
    rng = np.random.default_rng(1)
    local = EmbeddingIndex(16, metric="dot", dtype="int8")
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    local.add([f"v{i}" for i in range(300)], vectors)
    with PgVectorIndex.from_index(local, conninfo, table, hnsw=True) as remote:
        assert remote.hnsw
        assert remote.has_hnsw_index
        np.testing.assert_array_equal(remote.vectors, vectors)  # int8 storage still keeps exact float32
        remote.ef_search = 200
        got = remote.search(vectors[3], k=5)
        assert isinstance(got, Matches)
        assert got.ids == local.search(vectors[3], k=5).ids  # type: ignore[union-attr]


def test_empty_index_round_trip(conninfo: str, table: str) -> None:
    with PgVectorIndex.from_index(EmbeddingIndex(), conninfo, table) as remote:
        assert remote.dim is None
        assert len(remote) == 0
        back = remote.to_index()
    assert len(back) == 0


class _FakeEmbedder:
    model = "text-embedding-3-small"

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


def test_search_text_checks_the_model(conninfo: str, table: str) -> None:
    with PgVectorIndex(conninfo, table, model="text-embedding-3-small") as index:
        index.add(["cat", "car"], [[1.0, 0.1], [0.1, 1.0]])
        embedder = _FakeEmbedder({"kitten": [0.9, 0.2]})
        assert index.search_text("kitten", embedder, k=1).ids == ["cat"]
        embedder.model = "text-embedding-3-large"
        with pytest.raises(ConfigError, match="cannot be compared"):
            index.search_text("kitten", embedder)


def test_single_item_calls_and_upsert_last_wins(conninfo: str, table: str) -> None:
    with PgVectorIndex(conninfo, table) as index:
        index.add("one", [3.0, 4.0], {"n": 1})
        assert index.get("one").metadata == {"n": 1}
        np.testing.assert_allclose(index.get("one").vector, [0.6, 0.8])
        index.upsert(["two", "one", "two"], [[1, 0], [0, 1], [1, 1]], [{"v": "first"}, {"v": 1}, {"v": "last"}])
        assert index.get("two").metadata == {"v": "last"}
        assert list(index) == ["one", "two"]
        frame = index.to_pandas()
        assert list(frame["id"]) == ["one", "two"]
        assert list(frame.columns) == ["id", "embedding", "v"]  # "one" lost {"n": 1} to the upsert
        assert frame["v"].tolist() == [1, "last"]


def test_callers_arrays_are_left_alone(conninfo: str, table: str) -> None:
    vectors = np.array([[3.0, 4.0], [1.0, 0.0]], dtype=np.float32)
    query = np.array([6.0, 8.0], dtype=np.float32)
    with PgVectorIndex(conninfo, table) as index:
        index.add(["a", "b"], vectors)
        index.upsert(["a"], vectors[:1])
        index.search(query, k=1)
    np.testing.assert_array_equal(vectors, [[3.0, 4.0], [1.0, 0.0]])
    np.testing.assert_array_equal(query, [6.0, 8.0])


def test_callers_buffers_are_left_alone(conninfo: str, table: str) -> None:
    """Not only numpy arrays: a float32 buffer (array.array, memoryview) shares memory with what numpy makes of it."""
    import array

    query = array.array("f", [3.0, 4.0])
    row = array.array("f", [6.0, 8.0])
    with PgVectorIndex(conninfo, table) as index:
        index.add(["a"], [memoryview(row)])
        index.upsert(["b"], [memoryview(row)])
        index.search(query, k=1)
        index.search(memoryview(query), k=1)
    assert list(query) == [3.0, 4.0]
    assert list(row) == [6.0, 8.0]
    local = EmbeddingIndex(dim=2)
    local.add(["a"], [memoryview(row)])
    local.search(query, k=1)
    assert list(query) == [3.0, 4.0]
    assert list(row) == [6.0, 8.0]
