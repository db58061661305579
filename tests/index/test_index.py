"""EmbeddingIndex: exactness against brute force, ties, filters, upsert / delete, bad vectors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune_embed import _exceptions as exc
from finetune_embed.index import BatchMatches, EmbeddingIndex, Item, Matches
from finetune_embed.index import _index as index_module

from .conftest import assert_exact_topk, reference_scores

KINDS = ["float32", "float16", "int8"]


def _data(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _ids(n: int) -> list[str]:
    return [f"id{i}" for i in range(n)]


def _stored(index: EmbeddingIndex) -> np.ndarray:
    """What the index compares against: its stored vectors (normalised for cosine; float16-rounded)."""
    return index.vectors.astype(np.float64)


def _ref(index: EmbeddingIndex, q: np.ndarray) -> np.ndarray:
    """Brute-force scores over the stored vectors, the query normalised for cosine."""
    q64 = np.asarray(q, dtype=np.float64)
    if index.metric == "cosine":
        q64 = q64 / np.linalg.norm(q64)
    return _stored(index) @ q64


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 300),
    d=st.integers(1, 24),
    k=st.integers(1, 40),
    nq=st.integers(1, 12),  # up to 4: the row kernel; more: BLAS
    metric=st.sampled_from(["cosine", "dot"]),
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**16),
    batch=st.booleans(),
)
def test_search_is_exact_against_brute_force(
    n: int, d: int, k: int, nq: int, metric: str, kind: str, seed: int, batch: bool
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32) * rng.uniform(0.1, 10)
    x[np.abs(x).sum(axis=1) == 0] = 1.0
    index = EmbeddingIndex(metric=metric, dtype=kind)  # type: ignore[arg-type]
    index.add(_ids(n), x)
    queries = rng.standard_normal((nq, d)).astype(np.float32)
    queries[np.abs(queries).sum(axis=1) == 0] = 1.0
    tol = 2e-5 * max(1.0, float(np.abs(x).max()) ** 2 * d) if metric == "dot" else 2e-5
    if batch:
        result = index.search(queries, k)
        assert isinstance(result, BatchMatches)
        assert len(result) == nq
        for q, matches in zip(queries, result, strict=True):
            assert_exact_topk(matches, index.ids, _ref(index, q), k, tol=tol)
    else:
        single = index.search(queries[0], k)
        assert isinstance(single, Matches)
        assert_exact_topk(single, index.ids, _ref(index, queries[0]), k, tol=tol)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("nq", [1, 3, 4, 5, 300])
def test_larger_index_blocks_and_query_batches(kind: str, nq: int) -> None:
    x = _data(20_000, 16, seed=1)
    index = EmbeddingIndex(16, dtype=kind)
    # several adds: several storage segments, the scan crosses their boundaries
    for a in range(0, 20_000, 6_000):
        index.add(_ids(20_000)[a : a + 6_000], x[a : a + 6_000])
    queries = _data(nq, 16, seed=2)
    result = index.search(queries, 25)
    assert isinstance(result, BatchMatches)
    for q, m in zip(queries, result, strict=True):
        assert_exact_topk(m, index.ids, _ref(index, q), 25)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("nq", [4, 20])
def test_a_selective_filter_gathers_the_allowed_rows_for_both_kernels(kind: str, nq: int) -> None:
    """#16: few allowed items are gathered into a buffer and scored there, by the row kernel (a few queries)
    or BLAS (more), across tiles and segments."""
    x = _data(30_000, 48, seed=5)
    index = EmbeddingIndex(48, dtype=kind)
    for a in range(0, 30_000, 12_000):
        metadata = [{"n": i} for i in range(a, min(30_000, a + 12_000))]
        index.add(_ids(30_000)[a : a + 12_000], x[a : a + 12_000], metadata)
    allowed = np.zeros(30_000, dtype=bool)
    allowed[::9] = True  # 11% of the items: gathered, not masked
    queries = _data(nq, 48, seed=6)
    result = index.search(queries, 17, where={"n": {"$in": list(range(0, 30_000, 9))}})
    for q, m in zip(queries, result, strict=True):
        assert_exact_topk(m, index.ids, _ref(index, q), 17, allowed=allowed)


def test_query_batches_larger_than_one_chunk_are_split() -> None:
    x = _data(3000, 8, seed=3)
    index = EmbeddingIndex()
    index.add(_ids(3000), x)
    queries = _data(2100, 8, seed=4)  # more than the 1024 queries scanned together
    result = index.search(queries, 3)
    assert isinstance(result, BatchMatches)
    assert len(result) == 2100
    for i in (0, 1023, 1024, 2099):
        assert_exact_topk(result[i], index.ids, reference_scores(x, queries[i], "cosine"), 3)


def test_ties_are_broken_by_insertion_order() -> None:
    index = EmbeddingIndex(metric="dot")
    # small integers: every score is exact in float32, so ties are real ties
    vectors = [[1, 0], [2, 0], [1, 0], [0, 1], [1, 0], [2, 0]]
    index.add(["e", "b", "a", "x", "d", "c"], vectors)
    result = index.search([1, 0], k=5)
    assert result.ids == ["b", "c", "e", "a", "d"]
    assert result.scores.tolist() == [2, 2, 1, 1, 1]
    # the same order at every k, and in a batch
    for k in range(1, 6):
        assert index.search([1, 0], k=k).ids == result.ids[:k]
    batch = index.search([[1, 0], [1, 0]], k=3)
    assert batch.ids == [["b", "c", "e"], ["b", "c", "e"]]


@pytest.mark.parametrize("kind", KINDS)
def test_ties_with_many_equal_vectors_across_blocks(kind: str) -> None:
    n = 5000
    x = np.tile(np.array([[1.0, 0.0, 0.0]], dtype=np.float32), (n, 1))
    x[::7] = [0.0, 1.0, 0.0]
    index = EmbeddingIndex(dtype=kind)
    index.add(_ids(n), x)
    expected = [f"id{i}" for i in range(n) if i % 7][:30]
    assert index.search([1, 0, 0], k=30).ids == expected
    assert index.search(np.array([[1, 0, 0]] * 20), k=30).ids[19] == expected


def test_upsert_delete_get_len_contains() -> None:
    index = EmbeddingIndex(2)
    index.add(["a", "b", "c"], [[1, 0], [0, 1], [1, 1]], metadata=[{"n": 1}, {"n": 2}, None])
    assert len(index) == 3
    assert "a" in index
    assert "z" not in index
    assert index.ids == ["a", "b", "c"]
    item = index.get("c")
    assert isinstance(item, Item)
    np.testing.assert_allclose(item.vector, [2**-0.5, 2**-0.5], rtol=1e-6)
    assert item.metadata == {}
    _vector, meta = index.get("a")
    assert meta == {"n": 1}
    index.upsert(["b", "d"], [[-1, 0], [0, -1]], metadata=[{"n": 20}, {"n": 4}])
    assert index.ids == ["a", "b", "c", "d"]  # b keeps its place
    assert index.get("b").metadata == {"n": 20}
    assert index.search([-1, 0], k=1).ids == ["b"]
    assert index.delete(["a", "nope", "a"]) == 1
    assert index.ids == ["b", "c", "d"]
    assert "a" not in index
    assert index.search([1, 0], k=10).ids == ["c", "d", "b"]
    index.add(["a"], [[1, 0]])  # a deleted id can come back, at the end
    assert index.ids == ["b", "c", "d", "a"]
    assert index.search([1, 0], k=1).ids == ["a"]
    with pytest.raises(exc.UnknownIdError) as info:
        index.get("zz")
    assert info.value.ids == ["zz"]
    assert isinstance(info.value, KeyError)


def test_upsert_last_occurrence_wins_and_metadata_is_copied() -> None:
    index = EmbeddingIndex(2)
    meta = {"tags": ["x"], "n": np.int64(3)}
    index.upsert(["a", "a"], [[1, 0], [0, 1]], metadata=[{"v": 1}, meta])
    assert len(index) == 1
    assert index.get("a").metadata == {"tags": ["x"], "n": 3}
    assert type(index.get("a").metadata["n"]) is int
    meta["tags"].append("y")  # the index holds its own copy
    assert index.get("a").metadata["tags"] == ["x"]
    np.testing.assert_allclose(index.get("a").vector, [0, 1])


def test_many_deletes_compact_and_stay_exact() -> None:
    x = _data(5000, 8, seed=5)
    index = EmbeddingIndex(8)
    index.add(_ids(5000), x)
    gone = [f"id{i}" for i in range(0, 5000, 2)]
    assert index.delete(gone) == 2500
    assert len(index) == 2500
    kept = np.arange(1, 5000, 2)
    q = _data(1, 8, seed=6)[0]
    assert_exact_topk(index.search(q, 12), index.ids, reference_scores(x[kept], q, "cosine"), 12)
    assert index.ids == [f"id{i}" for i in kept]
    np.testing.assert_allclose(index.vectors, x[kept] / np.linalg.norm(x[kept], axis=1, keepdims=True), rtol=1e-6)


def test_growth_is_amortised_without_copying_rows() -> None:
    index = EmbeddingIndex(4, metric="dot")
    seen_arrays = []
    for i in range(3000):
        index.add([f"i{i}"], [[1.0, i, 0, 0]])
        store = index._store
        assert store is not None
        seen_arrays.append(id(store.segments[0].data))
    store = index._store
    assert store is not None
    # the first segment is never reallocated; segments grow geometrically
    assert len(set(seen_arrays)) == 1
    assert len(store.segments) <= 3
    assert index.search([0, 1, 0, 0], k=2).ids == ["i2999", "i2998"]


def test_filters_exclude_and_search_by_id() -> None:
    x = _data(2000, 12, seed=7)
    meta = [{"group": i % 4, "even": i % 2 == 0, "user": {"country": "NL" if i % 3 else "FR"}} for i in range(2000)]
    index = EmbeddingIndex()
    index.add(_ids(2000), x, meta)
    q = _data(1, 12, seed=8)[0]
    scores = reference_scores(x, q, "cosine")
    group = np.array([m["group"] for m in meta])
    cases = [
        ({"group": 1}, group == 1),  # few allowed: gathered
        ({"group": {"$in": [0, 1, 2]}}, group <= 2),  # most allowed: masked scan
        ({"group": {"$gte": 1, "$lt": 3}, "even": True}, (group >= 1) & (group < 3) & (np.arange(2000) % 2 == 0)),
        ({"user.country": "FR"}, np.arange(2000) % 3 == 0),
        (lambda m: m["group"] == 3, group == 3),
    ]
    for where, allowed in cases:
        assert_exact_topk(index.search(q, 15, where=where), index.ids, scores, 15, allowed=allowed)
    excluded = {"id5", "id17", "nope"}
    result = index.search(q, 2000, exclude=excluded)
    assert len(result) == 1998
    assert not excluded & set(result.ids)
    # a filter that matches nothing, and a k larger than what passes
    assert len(index.search(q, 5, where={"group": 9})) == 0
    few = index.search(q, 5000, where={"group": 1})
    assert len(few) == 500
    by_id = index.search_by_id("id3", k=4)
    assert "id3" not in by_id.ids
    assert_exact_topk(by_id, index.ids, reference_scores(x, x[3], "cosine"), 4, allowed=np.arange(2000) != 3)
    assert index.search_by_id("id3", k=1, exclude_self=False).ids == ["id3"]
    with pytest.raises(exc.UnknownIdError):
        index.search_by_id("missing")


def test_metadata_comes_back_with_matches() -> None:
    index = EmbeddingIndex(2)
    index.add(["a", "b"], [[1, 0], [0, 1]], metadata=[{"t": "A"}, {"t": "B"}])
    m = index.search([1, 0.1], k=2)
    assert m.metadata == [{"t": "A"}, {"t": "B"}]
    assert m[0].metadata == {"t": "A"}
    m.metadata[0]["t"] = "changed"  # results are copies
    assert index.get("a").metadata == {"t": "A"}


@pytest.mark.parametrize("kind", KINDS)
def test_zero_nan_and_inf_vectors_are_refused_with_their_ids(kind: str) -> None:
    index = EmbeddingIndex(3, dtype=kind)
    with pytest.raises(exc.InvalidVectorError) as info:
        index.add(["ok", "zero", "nan", "inf"], [[1, 0, 0], [0, 0, 0], [np.nan, 1, 0], [np.inf, 0, 0]])
    assert set(info.value.ids) == {"nan", "inf"}  # non-finite is checked first
    with pytest.raises(exc.InvalidVectorError) as info:
        index.add(["ok", "zero"], [[1, 0, 0], [0, 0, 0]])
    assert info.value.ids == ["zero"]
    assert "zero" in str(info.value)
    with pytest.raises(exc.InvalidVectorError):
        index.add(["big"], [[1e39, 0, 0]])  # beyond float32
    assert len(index) == 0  # nothing was added by the failed calls
    index.add(["ok"], [[1, 0, 0]])
    with pytest.raises(exc.InvalidVectorError) as qinfo:
        index.search([0, 0, 0])
    assert qinfo.value.ids == ["query 0"]
    with pytest.raises(exc.InvalidVectorError):
        index.search([[1, 0, 0], [np.nan, 0, 0]])


def test_float16_range_is_checked() -> None:
    index = EmbeddingIndex(2, metric="dot", dtype=np.float16)
    with pytest.raises(exc.InvalidVectorError, match="float16"):
        index.add(["a"], [[1e6, 1]])


def test_dimension_mismatch() -> None:
    index = EmbeddingIndex(3)
    with pytest.raises(exc.DimensionMismatchError) as info:
        index.add(["a"], [[1, 2]])
    assert (info.value.expected, info.value.got) == (3, 2)
    auto = EmbeddingIndex()
    auto.add(["a"], [1, 2, 3])
    assert auto.dim == 3
    with pytest.raises(exc.DimensionMismatchError):
        auto.search([1, 2])
    with pytest.raises(exc.DimensionMismatchError) as ragged:
        EmbeddingIndex().add(["a", "b", "c"], [[1, 2], [1, 2, 3], [3, 4]])
    assert "'b'" in str(ragged.value)
    assert isinstance(ragged.value, ValueError)


def test_duplicate_ids_and_bad_arguments() -> None:
    index = EmbeddingIndex(2)
    index.add(["a"], [[1, 0]])
    with pytest.raises(exc.DuplicateIdError) as info:
        index.add(["b", "a"], [[1, 0], [0, 1]])
    assert info.value.ids == ["a"]
    assert "upsert" in str(info.value)
    with pytest.raises(exc.DuplicateIdError):
        index.add(["c", "c"], [[1, 0], [0, 1]])
    assert index.ids == ["a"]
    with pytest.raises(exc.ConfigError, match="metric"):
        EmbeddingIndex(metric="l2")  # type: ignore[arg-type]
    with pytest.raises(exc.ConfigError, match="dtype"):
        EmbeddingIndex(dtype=np.int32)
    with pytest.raises(exc.ConfigError, match="k must"):
        index.search([1, 0], k=0)
    with pytest.raises(exc.ConfigError, match="ids"):
        index.add([1], [[1, 0]])  # type: ignore[list-item]
    with pytest.raises(exc.ConfigError, match="2 ids but 1"):
        index.add(["x", "y"], [[1, 0]])
    with pytest.raises(exc.ConfigError, match="NaN"):
        index.add(["x"], [[1, 0]], metadata=[{"v": float("nan")}])
    with pytest.raises(exc.ConfigError, match="field 'v' of id 'x'"):
        index.add(["x"], [[1, 0]], metadata=[{"v": object()}])
    import pickle

    with pytest.raises(TypeError, match="save"):
        pickle.dumps(index)


def test_empty_index_and_repr() -> None:
    index = EmbeddingIndex(metric="dot")
    assert len(index.search([1.0, 2.0], k=3)) == 0
    assert repr(index) == "EmbeddingIndex(count=0, dim=None, metric='dot', dtype='float32')"
    assert index.vectors.shape == (0, 0)
    index.add("one", [1.0, 2.0])  # a single id and vector
    assert index.ids == ["one"]
    assert list(index) == ["one"]
    assert index.nbytes == 8


def test_int8_widens_its_range_for_later_vectors_and_stays_exact() -> None:
    rng = np.random.default_rng(9)
    index = EmbeddingIndex(16, metric="dot", dtype="int8")
    small = rng.standard_normal((500, 16)).astype(np.float32) * 0.01
    index.add(_ids(500), small)  # sets the quantisation steps
    store = index._store
    assert store is not None
    first_error = store.max_residual
    big = rng.standard_normal((500, 16)).astype(np.float32) * 5  # far outside that range
    index.add([f"big{i}" for i in range(500)], big)
    index.upsert(["id0"], np.full(16, 40.0, dtype=np.float32))  # and again, through upsert
    x = np.vstack([small, big])
    x[0] = 40.0
    # every code is re-quantised on the wider steps: the error bound grows with the range, it is never clipped
    assert store.max_residual < 0.2 * 40
    assert store.max_residual > first_error
    codes = store.segments[0].data[:500].astype(np.float32) * store.scale
    np.testing.assert_allclose(codes, x[:500], atol=float(store.scale.max()))
    for q in rng.standard_normal((5, 16)).astype(np.float32):
        assert_exact_topk(index.search(q, 10), index.ids, reference_scores(x, q, "dot"), 10, tol=1e-4)
    loaded_like = EmbeddingIndex(16, metric="dot", dtype="int8")
    for a in range(0, 1000, 100):  # many small adds: few re-quantisations, small errors
        loaded_like.add([f"r{i}" for i in range(a, a + 100)], np.vstack([small, big / 500])[a : a + 100])


def test_int8_memory_is_a_quarter_of_float32() -> None:
    x = _data(4096, 64, seed=10)
    f32 = EmbeddingIndex(dtype=np.float32)
    f32.add(_ids(4096), x)
    i8 = EmbeddingIndex(dtype="int8")
    i8.add(_ids(4096), x)
    f16 = EmbeddingIndex(dtype="float16")
    f16.add(_ids(4096), x)
    assert f32.nbytes == 4096 * 64 * 4
    assert f16.nbytes == f32.nbytes // 2
    assert i8.nbytes == 4096 * 64 + 4096 * 4  # codes + one error bound per row
    q = _data(3, 64, seed=11)
    assert i8.search(q, 10).ids == f32.search(q, 10).ids


@pytest.mark.parametrize("kind", KINDS)
def test_inputs_are_never_modified(kind: str) -> None:
    x = _data(100, 8, seed=12)
    q = _data(3, 8, seed=13)
    x0, q0 = x.copy(), q.copy()
    index = EmbeddingIndex(dtype=kind)
    index.add(_ids(100), x)
    index.upsert(["id1", "new"], x[:2])
    index.search(q, 3)
    index.search(q[0], 3)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(q, q0)
    first, second = EmbeddingIndex(dtype=kind), EmbeddingIndex(dtype=kind)
    first.add(_ids(100), x)
    second.add(_ids(100), x)
    np.testing.assert_array_equal(first.vectors, second.vectors)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_int8_exact_when_many_scores_are_within_the_quantisation_error(metric: str) -> None:
    rng = np.random.default_rng(14)
    base = rng.standard_normal(32).astype(np.float32)
    # 3000 vectors within a hair of each other: every approximate score is ambiguous, the shortlist is long
    x = base + rng.standard_normal((3000, 32)).astype(np.float32) * 1e-3
    index = EmbeddingIndex(metric=metric, dtype="int8")  # type: ignore[arg-type]
    index.add(_ids(3000), x)
    tol = 1e-6 if metric == "cosine" else 1e-5
    for q in [base, *rng.standard_normal((4, 32)).astype(np.float32)]:
        for k in (1, 10, 50):
            assert_exact_topk(index.search(q, k), index.ids, _ref(index, q), k, tol=tol)


@pytest.mark.parametrize("nq", [5, 12, 31])
def test_few_query_batches_split_the_blas_product_into_row_slices(
    nq: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#16: below 32 queries each block's product is computed in slices of a few MB (here 300 rows: ragged ends
    inside blocks and segments); every score lands in its own row: the exact top-k, the same as unsliced."""
    x = _data(20_000, 16, seed=3)
    index = EmbeddingIndex(16)
    for a in range(0, 20_000, 7_000):
        index.add(_ids(20_000)[a : a + 7_000], x[a : a + 7_000])
    queries = _data(nq, 16, seed=4)
    whole = index.search(queries, 12)
    monkeypatch.setattr(index_module, "_GEMM_BYTES", 300 * 16 * 4)
    sliced = index.search(queries, 12)
    for q, m, w in zip(queries, sliced, whole, strict=True):
        assert_exact_topk(m, index.ids, _ref(index, q), 12)
        assert m.ids == w.ids
        np.testing.assert_array_equal(m.scores, w.scores)
