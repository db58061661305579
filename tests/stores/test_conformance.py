"""One conformance suite for every VectorIndex backend: the same tests, the same data, the same answers.

Exact backends must return exactly the in-process EmbeddingIndex's ids, with scores within 1e-5; approximate
ones must reach recall@10 >= 0.95 on 10k x 384 vectors. Every filter operator gives the reference evaluator's
answer inside the engine, or a typed UnsupportedFilterError naming the engine and the operator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from finetune_embed import (
    ConfigError,
    DimensionMismatchError,
    DuplicateIdError,
    InvalidVectorError,
    UnknownIdError,
    UnsupportedFilterError,
)
from finetune_embed.index import (
    BatchMatches,
    EmbeddingIndex,
    Matches,
    VectorIndex,
    kmeans,
    knn_classify,
    mmr,
    outlier_scores,
    recommend,
)

from ._data import FILTERS, metadata, operators, random_filters, vectors
from .conftest import ALL_BACKENDS, EXACT_BACKENDS, Backend, LoadedOnce

N, DIM = 600, 24
exact = pytest.mark.parametrize("backend", EXACT_BACKENDS, indirect=True)
every = pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
exact_read_only = pytest.mark.parametrize("name", EXACT_BACKENDS)  # with the shared loaded stores below


def _loaded(backend: Backend, metric: str = "cosine", n: int = N) -> tuple[VectorIndex, EmbeddingIndex]:
    """The same items in the backend and in an EmbeddingIndex (the reference)."""
    ids = [f"id-{i}" for i in range(n)]
    x, meta = vectors(n, DIM), metadata(n)
    store = backend.create(DIM, metric)
    store.add(ids[: n // 2], x[: n // 2], meta[: n // 2])  # in two calls: the second appends
    store.add(ids[n // 2 :], x[n // 2 :], meta[n // 2 :])
    reference = EmbeddingIndex(DIM, metric=metric)  # type: ignore[arg-type]
    reference.add(ids, x, meta)
    return store, reference


Shared = tuple[Backend, VectorIndex, EmbeddingIndex]
SharedLoad = Callable[..., Shared]


@pytest.fixture
def shared(loaded_once: LoadedOnce, request: pytest.FixtureRequest) -> SharedLoad:
    """``shared(name, metric)``: backend ``name`` holding the suite's N items, loaded once per module and metric
    (the tests using it only read)."""

    def get(name: str, metric: str = "cosine") -> Shared:
        def build(backend: Backend) -> Shared:
            return (backend, *_loaded(backend, metric))

        result: Shared = loaded_once.load(name, metric, build, request)
        return result

    return get


def _queries(count: int = 8, seed: int = 7) -> npt.NDArray[np.float32]:
    return vectors(count, DIM, seed=seed)


def _same(got: Matches, want: Matches) -> None:
    assert want.ids == got.ids
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5, rtol=0)
    assert want.metadata == got.metadata


class TestProtocol:
    @every
    def test_is_a_vector_index(self, backend: Backend) -> None:
        """Every backend implements the protocol, including the context manager."""
        with backend.create(DIM, "cosine") as store:
            assert isinstance(store, VectorIndex)
            assert store.dim == DIM
            assert store.metric == "cosine"
            assert len(store) == 0


class TestExactSearch:
    @exact_read_only
    @pytest.mark.parametrize("metric", ["cosine", "dot"])
    def test_same_ids_and_scores_as_embedding_index(self, shared: SharedLoad, name: str, metric: str) -> None:
        """One query, a batch, and by id: the reference's ids in order, scores within 1e-5, same metadata."""
        _, store, reference = shared(name, metric)
        q = _queries()
        one = store.search(q[0], k=10)
        assert isinstance(one, Matches)
        _same(one, reference.search(q[0], k=10))
        batch = store.search(q, k=10)
        assert isinstance(batch, BatchMatches)
        for got, want in zip(batch, reference.search(q, k=10), strict=True):
            _same(got, want)
        _same(store.search_by_id("id-5", k=7), reference.search_by_id("id-5", k=7))
        kept = reference.search_by_id("id-5", 7, exclude_self=False)
        _same(store.search_by_id("id-5", k=7, exclude_self=False), kept)
        skip = {"id-1", "id-2", "nope"}
        _same(store.search(q[1], k=5, exclude=skip), reference.search(q[1], k=5, exclude=skip))

    @exact_read_only
    def test_dense_arrays(self, shared: SharedLoad, name: str) -> None:
        """A batch as (n, k) id / score arrays, padded where a filter leaves fewer hits."""
        _, store, reference = shared(name)
        q = _queries(3)
        dense = store.search(q, k=4, where={"cat": 99}).dense(4)
        assert dense.ids.shape == (3, 4)
        assert dense.counts.tolist() == [0, 0, 0]
        dense = store.search(q, k=4).dense()
        assert dense.ids.tolist() == [m.ids for m in reference.search(q, k=4)]
        assert dense.scores.dtype == np.float32
        assert dense.scores.shape == (3, 4)


class TestFilters:
    @exact_read_only
    @pytest.mark.parametrize("where", FILTERS, ids=[str(f) for f in FILTERS])
    def test_every_operator(self, shared: SharedLoad, name: str, where: dict[str, Any]) -> None:
        """Each filter gives the reference's hits, inside the engine, or a typed error naming engine and operator."""
        backend, store, reference = shared(name)
        _check_filter(backend, store, reference, where)

    @exact_read_only
    def test_random_nested_filters(self, shared: SharedLoad, name: str) -> None:
        """60 random nested filters ($and / $or / $not over every operator and JSON type) agree with the reference."""
        backend, store, reference = shared(name)
        for where in random_filters(60, seed=3):
            _check_filter(backend, store, reference, where)

    @every
    def test_callable_filters_run_in_process_only(self, backend: Backend) -> None:
        """A Python callable cannot run inside an engine: only the in-process index takes one."""
        store, _ = _loaded(backend, n=20)
        if backend.name == "memory":
            assert len(store.search(_queries(1)[0], k=3, where=lambda m: m["cat"] == 1)) == 3
        else:
            with pytest.raises(ConfigError, match="mapping"):
                store.search(_queries(1)[0], k=3, where=lambda m: True)

    @every
    def test_malformed_filter(self, backend: Backend) -> None:
        """A malformed filter is a ConfigError before anything reaches the engine."""
        store, _ = _loaded(backend, n=20)
        with pytest.raises(ConfigError, match="unknown operator"):
            store.search(_queries(1)[0], k=3, where={"a": {"$regex": "x"}})


def _check_filter(backend: Backend, store: VectorIndex, reference: EmbeddingIndex, where: dict[str, Any]) -> None:
    q = _queries(3)
    want = reference.search(q, k=10, where=where)
    blocked = operators(where) & backend.unsupported
    if blocked:
        with pytest.raises(UnsupportedFilterError) as info:
            store.search(q, k=10, where=where)
        assert backend.engine == info.value.engine
        assert info.value.operator in blocked, (info.value.operator, blocked)
        assert backend.engine in str(info.value)
        return
    got = store.search(q, k=10, where=where)
    for g, w in zip(got, want, strict=True):
        assert w.ids == g.ids, where
        np.testing.assert_allclose(g.scores, w.scores, atol=1e-5, rtol=0)


class TestWrites:
    @every
    def test_upsert_replaces_vector_and_metadata(self, backend: Backend) -> None:
        """upsert replaces the whole metadata (a key that is gone stays gone) and the vector."""
        store = backend.create(4, "cosine")
        store.add(["a", "b"], [[1, 0, 0, 0], [0, 1, 0, 0]], [{"x": 1, "gone": True, "n": {"y": 2}}, {"x": 2}])
        store.upsert(["a", "c"], [[0, 0, 1, 0], [0, 0, 0, 1]], [{"x": 3}, None])
        assert len(store) == 3
        assert store.get("a").metadata == {"x": 3}
        assert store.get("c").metadata == {}
        np.testing.assert_allclose(store.get("a").vector, [0, 0, 1, 0], atol=1e-6)
        assert store.search([0, 0, 1, 0.1], k=1).ids == ["a"]
        assert store.search([1, 0, 0, 0], k=3, where={"gone": {"$exists": True}}).ids == []
        assert store.search([1, 0, 0, 0], k=3, where={"n.y": 2}).ids == []
        assert sorted(store.search([1, 0, 0, 0], k=3, where={"x": {"$gte": 2}}).ids) == ["a", "b"]
        store.upsert("b", [0, 2, 0, 0], {"x": 20})
        assert store.get("b").metadata == {"x": 20}

    @every
    def test_delete(self, backend: Backend) -> None:
        """delete removes items (unknown ids are ignored) and reports how many."""
        store = backend.create(3, "cosine")
        store.add(["a", "b", "c"], np.eye(3), [{"k": 1}, {"k": 2}, {"k": 3}])
        assert store.delete(["a", "zzz"]) == 1
        assert store.delete("a") == 0
        assert len(store) == 2
        assert "a" not in store
        assert "b" in store
        assert store.search([1, 0, 0], k=5).ids[-1] != "a"
        assert "a" not in store.search([1, 0, 0], k=5).ids
        with pytest.raises(UnknownIdError):
            store.get("a")
        store.add(["a"], [[1, 0, 0]], [{"k": 9}])  # a deleted id can be added again
        assert store.get("a").metadata == {"k": 9}

    @every
    def test_metadata_round_trips_exactly(self, backend: Backend) -> None:
        """Every JSON type comes back as it went in: ints stay ints, floats floats, nested, null and lists."""
        meta = {
            "i": 1, "f": 1.0, "neg": -0.5, "big": 10**15, "t": True, "none": None, "s": "é ✓", "empty": "",
            "list": [1, "a", None, [2.5]], "nested": {"x": {"y": [{}]}}, "dotted.key": 1, "obj": {},
        }  # fmt: skip
        store = backend.create(2, "cosine")
        store.add(["m"], [[1.0, 2.0]], [meta])
        got = store.get("m").metadata
        assert meta == got
        assert [type(v) for v in meta.values()] == [type(got[k]) for k in meta]
        assert store.search([1.0, 2.0], k=1).metadata == [meta]
        ((ids, x, metas),) = list(store.iter_items())
        assert ids == ["m"]
        assert metas == [meta]
        assert x.shape == (1, 2)
        assert x.dtype == np.float32

    @every
    def test_iter_items_in_batches(self, backend: Backend) -> None:
        """iter_items yields every item once, in batches of at most batch_size, vectors as stored."""
        store, reference = _loaded(backend, n=57)
        seen: dict[str, tuple[Any, Any]] = {}
        for ids, x, metas in store.iter_items(batch_size=10):
            assert len(ids) <= 10
            assert x.shape == (len(ids), DIM)
            assert len(metas) == len(ids)
            for i, v, m in zip(ids, x, metas, strict=True):
                seen[i] = (v, m)
        assert sorted(seen) == sorted(reference.ids)
        for i in reference.ids:
            np.testing.assert_allclose(seen[i][0], reference.get(i).vector, atol=backend.vector_atol)
            assert reference.get(i).metadata == seen[i][1]

    @every
    def test_reopen_after_close(self, backend: Backend) -> None:
        """Closing and reopening keeps the items, the dimension and the metric."""
        store, reference = _loaded(backend, metric="dot", n=40)
        again = backend.reopen(store)
        assert len(again) == 40
        assert again.dim == DIM
        assert again.metric == "dot"
        q = _queries(1)[0]
        assert reference.search(q, k=5).ids == again.search(q, k=5).ids
        again.add(["new"], q, {"cat": 1})
        assert again.search(q, k=1).ids == ["new"]


class TestEdges:
    @every
    def test_k_larger_than_the_store(self, backend: Backend) -> None:
        """k beyond the number of items gives every item, best first."""
        store, reference = _loaded(backend, n=12)
        q = _queries(1)[0]
        got = store.search(q, k=1000)
        assert len(got) == 12
        assert got.ids == reference.search(q, k=1000).ids
        assert len(store.search(q, k=50, where={"cat": 1})) == 2

    @every
    def test_empty_store(self, backend: Backend) -> None:
        """An empty store searches to nothing, contains nothing, iterates nothing."""
        store = backend.create(DIM, "cosine")
        q = _queries(2)
        assert len(store.search(q[0], k=3)) == 0
        assert [len(m) for m in store.search(q, k=3)] == [0, 0]
        assert "x" not in store
        assert len(store) == 0
        assert list(store.iter_items()) == []
        with pytest.raises(UnknownIdError):
            store.search_by_id("x")

    @every
    def test_wrong_dimension(self, backend: Backend) -> None:
        """Vectors or queries of another dimension raise DimensionMismatchError."""
        store = backend.create(3, "cosine")
        store.add(["a"], [[1, 0, 0]])
        with pytest.raises(DimensionMismatchError):
            store.add(["b"], [[1, 0]])
        with pytest.raises(DimensionMismatchError):
            store.upsert(["a"], [[1, 0, 0, 0]])
        with pytest.raises(DimensionMismatchError):
            store.search([1, 0], k=1)
        assert len(store) == 1

    @every
    @pytest.mark.parametrize("bad", ["", 3, None])
    def test_bad_ids(self, backend: Backend, bad: Any) -> None:
        """Ids must be non-empty strings."""
        store = backend.create(2, "cosine")
        with pytest.raises(ConfigError, match="non-empty strings"):
            store.add(["ok", bad], [[1, 0], [0, 1]])
        assert len(store) == 0

    @every
    def test_duplicate_unknown_and_invalid(self, backend: Backend) -> None:
        """Duplicates, unknown ids and zero / NaN vectors are typed errors, and nothing is half-written."""
        store = backend.create(2, "cosine")
        store.add(["a"], [[1, 0]])
        with pytest.raises(DuplicateIdError):
            store.add(["b", "b"], [[1, 0], [0, 1]])
        with pytest.raises(DuplicateIdError):
            store.add(["c", "a"], [[1, 0], [0, 1]])
        with pytest.raises(InvalidVectorError):
            store.add(["d"], [[0, 0]])
        with pytest.raises(InvalidVectorError):
            store.add(["e"], [[np.nan, 1]])
        with pytest.raises(UnknownIdError):
            store.get("zzz")
        assert len(store) == 1
        assert "c" not in store

    @every
    def test_search_text_checks_the_model(self, backend: Backend) -> None:
        """search_text embeds with the given embedder."""

        class Fixed:
            model = None

            def embed(self, texts: Any) -> npt.NDArray[np.float32]:
                return np.array([[1.0, 0.1]], dtype=np.float32)

        store = backend.create(2, "cosine")
        store.add(["a", "b"], [[1, 0], [0, 1]])
        assert store.search_text("anything", Fixed(), k=1).ids == ["a"]


class TestAnalysis:
    @exact
    def test_functions_accept_any_backend(self, backend: Backend) -> None:
        """kmeans, knn_classify, recommend, mmr and outlier_scores give the in-process answers on every backend."""
        store, reference = _loaded(backend, n=150)
        q = _queries(4)
        a, b = kmeans(store, 3, seed=1), kmeans(reference, 3, seed=1)
        by_id = dict(zip(b.ids or [], b.labels.tolist(), strict=True))
        assert [by_id[i] for i in a.ids or []] == a.labels.tolist()
        assert knn_classify(store, q, "lang", k=5).labels == knn_classify(reference, q, "lang", k=5).labels
        assert knn_classify(store, q, "a", k=5, where={"cat": {"$lt": 4}}).labels == knn_classify(
            reference, q, "a", k=5, where={"cat": {"$lt": 4}}
        ).labels
        assert recommend(store, "id-3", k=5).ids == recommend(reference, "id-3", k=5).ids
        assert mmr(store, q[0], k=5, where={"cat": 2}).ids == mmr(reference, q[0], k=5, where={"cat": 2}).ids
        order = [i for ids, _, _ in store.iter_items() for i in ids]
        ours = dict(zip(order, outlier_scores(store, k=5).tolist(), strict=True))
        theirs = dict(zip(reference.ids, outlier_scores(reference, k=5).tolist(), strict=True))
        assert ours.keys() == theirs.keys()
        np.testing.assert_allclose([ours[i] for i in theirs], list(theirs.values()), atol=1e-5)


RECALL_N, RECALL_DIM = 10_000, 384


@pytest.fixture(scope="module")
def recall_data() -> tuple[npt.NDArray[np.float32], list[dict[str, Any]], npt.NDArray[np.float32]]:
    """10k x 384 random vectors (the worst case for ANN indexes), metadata, and 50 queries."""
    x = vectors(RECALL_N, RECALL_DIM, seed=11)
    meta = [{"cat": i % 16, "year": 2000 + i % 25} for i in range(RECALL_N)]
    return x, meta, vectors(50, RECALL_DIM, seed=12)


class TestRecall:
    @pytest.mark.slow
    @pytest.mark.parametrize("backend", [b for b in ALL_BACKENDS if b not in EXACT_BACKENDS], indirect=True)
    def test_ann_recall_at_10(self, backend: Backend, recall_data: Any) -> None:
        """Approximate modes find >= 95% of the exact top-10 on 10k x 384, unfiltered and filtered (1/16 of rows),
        with the search parameters docs/vector-stores.md gives."""
        x, meta, q = recall_data
        ids = [str(i) for i in range(RECALL_N)]
        reference = EmbeddingIndex(RECALL_DIM)
        reference.add(ids, x, meta)
        store = backend.bulk_load(RECALL_DIM, ids, x, meta)
        for where in (None, {"cat": 3}):
            want = reference.search(q, k=10, where=where)
            got = store.search(q, k=10, where=where)
            hits = sum(len(set(g.ids) & set(w.ids)) for g, w in zip(got, want, strict=True))
            recall = hits / sum(len(w) for w in want)
            assert recall >= 0.95, (backend.name, where, recall)
            assert all(len(g) == 10 for g in got), "an ANN index must not return fewer than k hits under a filter"
