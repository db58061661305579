"""PgVectorIndex: the EmbeddingIndex API on PostgreSQL, checked against numpy brute force."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("psycopg", reason="the pgvector extra (psycopg) is not installed")

import psycopg

from finetune_embed import (
    ConfigError,
    DimensionMismatchError,
    DuplicateIdError,
    InvalidVectorError,
    UnknownIdError,
)
from finetune_embed.index import BatchMatches, Matches
from finetune_embed.index._filters import compile_where
from finetune_embed.index.pgvector import PgVectorIndex

pytestmark = pytest.mark.pgvector


def _data(n: int, d: int, seed: int = 0) -> tuple[list[str], npt.NDArray[np.float32], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    ids = [f"doc-{i}" for i in range(n)]
    metadata = [{"group": i % 5, "lang": ["en", "fr", "de"][i % 3], "n": {"i": i}} for i in range(n)]
    return ids, vectors, metadata


def _normalise(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _brute(
    stored: npt.NDArray[np.float32], query: npt.NDArray[np.float32], k: int, keep: npt.NDArray[np.bool_] | None = None
) -> tuple[list[int], npt.NDArray[np.float32]]:
    scores = stored @ query
    order = [int(i) for i in np.lexsort((np.arange(len(scores)), -scores)) if keep is None or keep[i]][:k]
    return order, scores[order]


def _assert_same_ranking(got: Matches, ids: list[str], order: list[int], scores: Any) -> None:
    assert len(got) == len(order)
    np.testing.assert_allclose(got.scores, scores, atol=2e-6)
    for pos, (got_id, want) in enumerate(zip(got.ids, order, strict=True)):
        if got_id != ids[want]:  # only a float near-tie may swap neighbours
            assert abs(float(got.scores[pos]) - float(scores[pos])) < 2e-6
            assert got_id in {ids[j] for j in order}


@pytest.fixture
def index(conninfo: str, table: str) -> Any:
    with PgVectorIndex(conninfo, table) as idx:
        yield idx


def test_exact_cosine_search_equals_brute_force(index: PgVectorIndex) -> None:
    ids, vectors, metadata = _data(2500, 32)  # more rows than one COPY chunk
    index.add(ids, vectors, metadata)
    assert len(index) == 2500
    assert index.dim == 32
    stored = _normalise(vectors)
    queries = np.random.default_rng(1).standard_normal((12, 32)).astype(np.float32)
    result = index.search(queries, k=7)
    assert isinstance(result, BatchMatches)
    assert len(result) == 12
    for q, matches in enumerate(result):
        order, scores = _brute(stored, _normalise(queries[q]), 7)
        _assert_same_ranking(matches, ids, order, scores)
        assert matches.metadata[0] == metadata[order[0]]


def test_filtered_search_equals_brute_force_on_the_filtered_rows(index: PgVectorIndex) -> None:
    ids, vectors, metadata = _data(600, 16)
    index.add(ids, vectors, metadata)
    stored = _normalise(vectors)
    query = np.random.default_rng(2).standard_normal(16).astype(np.float32)
    for where in [{"lang": "fr"}, {"group": {"$in": [1, 3]}, "n.i": {"$gte": 100}}, {"lang": {"$ne": "en"}}]:
        keep_fn = compile_where(where)
        assert keep_fn is not None
        keep = np.array([keep_fn(m) for m in metadata])
        got = index.search(query, k=10, where=where)
        assert isinstance(got, Matches)
        order, scores = _brute(stored, _normalise(query), 10, keep)
        _assert_same_ranking(got, ids, order, scores)
        assert all(keep_fn(m) for m in got.metadata)


def test_dot_metric_keeps_vectors_and_scores_inner_products(conninfo: str, table: str) -> None:
    ids, vectors, _ = _data(300, 8)
    with PgVectorIndex(conninfo, table, metric="dot") as index:
        index.add(ids, vectors)
        vector, meta = index.get("doc-3")
        np.testing.assert_array_equal(vector, vectors[3])  # not normalised
        assert meta == {}
        query = vectors[0] * 2
        got = index.search(query, k=5)
        assert isinstance(got, Matches)
        order, scores = _brute(vectors, query, 5)
        _assert_same_ranking(got, ids, order, np.asarray(scores))


def test_equal_scores_keep_insertion_order(index: PgVectorIndex) -> None:
    same = np.ones((4, 3), dtype=np.float32)
    index.add(["b", "d", "a", "c"], same)
    index.add(["z"], np.array([[1.0, -1.0, 0.5]]))
    got = index.search(np.ones(3), k=5)
    assert isinstance(got, Matches)
    assert got.ids == ["b", "d", "a", "c", "z"]
    np.testing.assert_allclose(got.scores[:4], 1.0, atol=1e-6)


def test_exclude_and_search_by_id(index: PgVectorIndex) -> None:
    ids, vectors, metadata = _data(200, 8)
    index.add(ids, vectors, metadata)
    nearest = index.search_by_id("doc-5", k=3)
    assert "doc-5" not in nearest.ids
    assert len(nearest) == 3
    with_self = index.search_by_id("doc-5", k=3, exclude_self=False)
    assert with_self.ids[0] == "doc-5"
    assert float(with_self.scores[0]) == pytest.approx(1.0, abs=1e-6)
    assert with_self.ids[1:] == nearest.ids[:2]
    filtered = index.search_by_id("doc-5", k=3, where={"lang": "de"})
    assert all(m["lang"] == "de" for m in filtered.metadata)
    excluded = index.search(vectors[5], k=3, exclude=["doc-5", nearest.ids[0]])
    assert isinstance(excluded, Matches)
    assert excluded.ids[0] == nearest.ids[1]
    with pytest.raises(UnknownIdError):
        index.search_by_id("missing")


def test_query_shapes_and_small_tables(index: PgVectorIndex) -> None:
    empty = index.search(np.ones(4), k=3)
    assert isinstance(empty, Matches)
    assert len(empty) == 0
    index.add(["a", "b"], np.eye(2, 4))
    one = index.search([1.0, 0.0, 0.0, 0.0], k=10)
    assert isinstance(one, Matches)
    assert one.ids == ["a", "b"]  # k larger than the table: what there is
    batch = index.search([[0.0, 1.0, 0.0, 0.0]], k=1)
    assert isinstance(batch, BatchMatches)
    assert batch.ids == [["b"]]
    assert index.search(np.ones(4), k=5, where={"missing": 1}).ids == []  # type: ignore[union-attr]


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_is_a_config_error(index: PgVectorIndex, k: Any) -> None:
    index.add(["a"], np.ones((1, 2)))
    with pytest.raises(ConfigError, match="k must be"):
        index.search(np.ones(2), k=k)


def test_callable_where_is_refused(index: PgVectorIndex) -> None:
    index.add(["a"], np.ones((1, 2)))
    with pytest.raises(ConfigError, match="mapping"):
        index.search(np.ones(2), where=lambda m: True)


def test_duplicate_ids_are_refused_and_nothing_is_added(index: PgVectorIndex) -> None:
    index.add(["a", "b"], np.eye(2))
    with pytest.raises(DuplicateIdError) as info:
        index.add(["c", "b", "a"], np.eye(3, 2) + 1)
    assert info.value.ids == ["b", "a"]  # in call order, as EmbeddingIndex reports them
    assert "upsert" in str(info.value)
    assert len(index) == 2
    assert "c" not in index
    with pytest.raises(DuplicateIdError, match="repeat") as repeated:
        index.add(["x", "y", "x"], np.ones((3, 2)))
    assert repeated.value.ids == ["x"]


def test_invalid_vectors_name_their_ids(index: PgVectorIndex) -> None:
    vectors = np.ones((4, 3))
    vectors[1] = 0
    vectors[3, 2] = np.nan
    with pytest.raises(InvalidVectorError) as info:
        index.add(["ok", "zero", "ok2", "nan"], vectors)
    assert info.value.ids == ["nan"]  # the same checks as EmbeddingIndex: non-finite first, then zeros
    with pytest.raises(InvalidVectorError) as zero:
        index.add(["ok", "zero"], vectors[:2])
    assert zero.value.ids == ["zero"]
    with pytest.raises(InvalidVectorError, match="float32"):
        index.add(["huge"], np.full((1, 3), 1e300))
    assert len(index) == 0
    index.add(["a"], np.ones((1, 3)))
    with pytest.raises(DimensionMismatchError) as mismatch:
        index.add(["b"], np.ones((1, 4)))
    assert (mismatch.value.expected, mismatch.value.got) == (3, 4)
    with pytest.raises(DimensionMismatchError):
        index.search(np.ones(5))
    with pytest.raises(InvalidVectorError):
        index.search(np.zeros(3))
    with pytest.raises(ConfigError, match="one vector per id"):
        index.add(["c", "d"], np.ones((3, 3)))


def test_metadata_must_be_json(index: PgVectorIndex) -> None:
    with pytest.raises(ConfigError, match=r"field 'score' of id 'bad' is nan"):
        index.add(["good", "bad"], np.ones((2, 2)), [{"score": 1.0}, {"score": float("nan")}])
    with pytest.raises(ConfigError, match=r"id 'x'.*NUL"):  # PostgreSQL's own limit
        index.add(["x"], np.ones((1, 2)), [{"text": "a\x00b"}])
    with pytest.raises(ConfigError, match="non-string key"):
        index.add(["x"], np.ones((1, 2)), [{1: "a"}])
    assert len(index) == 0
    nested = {"tags": ["a", "é", "\U0001f600"], "user": {"country": "NL", "age": 41}, "none": None, "f": 0.1}
    index.add(["y"], np.ones((1, 2)), [nested])
    assert index.get("y")[1] == nested


def test_upsert_replaces_in_place_and_appends_new(index: PgVectorIndex) -> None:
    index.add(["a", "b", "c"], np.eye(3), [{"v": 1}, {"v": 2}, {"v": 3}])
    index.upsert(["b", "d"], [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]], [{"v": 20}, None])
    assert index.ids == ["a", "b", "c", "d"]
    vector, meta = index.get("b")
    np.testing.assert_allclose(vector, [0.0, 0.0, 1.0])
    assert meta == {"v": 20}
    assert index.get("d")[1] == {}
    np.testing.assert_allclose(index.get("d")[0], [2**-0.5, 2**-0.5, 0.0], atol=1e-7)
    assert len(index) == 4


def test_delete_get_contains(index: PgVectorIndex) -> None:
    index.add(["a", "b", "c"], np.eye(3))
    assert "b" in index
    assert 42 not in index
    assert index.delete(["b", "nope"]) == 1
    assert "b" not in index
    assert index.delete([]) == 0
    with pytest.raises(UnknownIdError) as info:
        index.get("b")
    assert info.value.ids == ["b"]
    assert isinstance(info.value, KeyError)
    item = index.get("c")
    np.testing.assert_allclose(item.vector, [0, 0, 1])
    assert item.metadata == {}
    assert index.delete("a") == 1  # one id, as in EmbeddingIndex
    with pytest.raises(ConfigError, match="non-empty strings"):
        index.delete([""])


def test_ids_in_insertion_order_across_batches(index: PgVectorIndex) -> None:
    ids = [f"id-{i:03d}" for i in range(50)][::-1]
    index.add(ids, np.ones((50, 2)))
    assert list(index.iter_ids(batch_size=7)) == ids
    assert index.ids == ids
    chunks = list(index.iter_items(batch_size=16))
    assert [len(c[0]) for c in chunks] == [16, 16, 16, 2]
    assert [i for c in chunks for i in c[0]] == ids


def test_reopening_reads_dim_and_metric_from_the_table(conninfo: str, table: str) -> None:
    with PgVectorIndex(conninfo, table, dim=6, metric="dot") as first:
        assert len(first) == 0
        first.add(["a"], np.arange(1, 7)[None, :])
    with PgVectorIndex(conninfo, table) as again:
        assert (again.dim, again.metric, len(again)) == (6, "dot", 1)
    with pytest.raises(ConfigError, match="metric='dot'"):
        PgVectorIndex(conninfo, table, metric="cosine")
    with pytest.raises(DimensionMismatchError):
        PgVectorIndex(conninfo, table, dim=7)
    with pytest.raises(ConfigError, match="does not exist"):
        PgVectorIndex(conninfo, table + "_other", create=False)


def test_a_foreign_table_is_not_taken_over(conninfo: str, table: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{table}" (id int, body text)')
    with pytest.raises(ConfigError, match="not a PgVectorIndex table"):
        PgVectorIndex(conninfo, table)


def test_schema_qualified_table(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS search")
    try:
        with PgVectorIndex(conninfo, "search.items", dim=2) as index:
            index.add(["a"], [[1.0, 0.0]])
            index.create_hnsw_index()
            assert index.search_by_id("a", exclude_self=False).ids == ["a"]
            index.drop_hnsw_index()
            assert not index.has_hnsw_index
        with pytest.raises(ConfigError, match=r"schema\.name"):
            PgVectorIndex(conninfo, "a.b.c")
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("DROP SCHEMA search CASCADE")


def _count(conninfo: str, table: str) -> int:
    with psycopg.connect(conninfo) as other:
        row = other.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return int(row[0]) if row else -1


def test_a_connection_you_pass_commits_when_idle_and_joins_open_transactions(conninfo: str, table: str) -> None:
    with psycopg.connect(conninfo) as conn:  # not autocommit
        index = PgVectorIndex(conn, table, dim=2)
        index.add(["a", "b"], np.eye(2))
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # nothing left open
        assert _count(conninfo, table) == 2  # committed: another session sees it
        assert len(index) == 2
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # reads leave none open
        seen_inside = False
        with contextlib.suppress(RuntimeError), conn.transaction():
            index.add(["c"], np.ones((1, 2)))
            seen_inside = "c" in index  # visible inside the caller's transaction
            raise RuntimeError("the caller fails")
        assert seen_inside
        assert "c" not in index  # rolled back with the caller's transaction
        conn.execute("SELECT 1")  # an implicit transaction of the caller's ...
        index.add(["d"], np.ones((1, 2)))
        assert _count(conninfo, table) == 2  # ... which the index joins: not committed yet
        conn.commit()
        assert _count(conninfo, table) == 3
        index.close()
        assert not conn.closed  # not ours to close


def test_hnsw_search_has_high_recall_on_clustered_data(conninfo: str, table: str) -> None:
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((20, 24))
    vectors = (centres[rng.integers(0, 20, 3000)] + 0.3 * rng.standard_normal((3000, 24))).astype(np.float32)
    ids = [f"v{i}" for i in range(3000)]
    with PgVectorIndex(conninfo, table) as index:
        index.add(ids, vectors, [{"odd": i % 2} for i in range(3000)])
        queries = vectors[:40] + 0.05 * rng.standard_normal((40, 24)).astype(np.float32)
        exact = index.search(queries, k=10)
        assert isinstance(exact, BatchMatches)
        index.create_hnsw_index(m=16, ef_construction=64)
        assert index.hnsw
        assert index.has_hnsw_index
        index.ef_search = 100
        approx = index.search(queries, k=10)
        assert isinstance(approx, BatchMatches)
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.ids, exact.ids, strict=True)])
        assert recall >= 0.9
        filtered = index.search(queries[0], k=5, where={"odd": 1})
        assert isinstance(filtered, Matches)
        assert filtered.metadata
        assert all(m["odd"] == 1 for m in filtered.metadata)
        index.hnsw = False  # exact again, the index stays
        assert index.search(queries, k=10).ids == exact.ids  # type: ignore[union-attr]
    with PgVectorIndex(conninfo, table, hnsw=True, create=False) as reopened:
        assert reopened.hnsw


def test_hnsw_limits_are_explained(conninfo: str, table: str) -> None:
    with PgVectorIndex(conninfo, table, dim=2001) as wide:
        with pytest.raises(ConfigError, match="2000 dimensions"):
            wide.create_hnsw_index()
        with pytest.raises(ConfigError, match="create_hnsw_index"):
            wide.hnsw = True
        wide.add(["a"], np.ones((1, 2001)))
        assert wide.search(np.ones(2001), k=1).ids == ["a"]  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="no HNSW index"):
        PgVectorIndex(conninfo, table, hnsw=True, create=False)


def test_hnsw_requested_up_front_is_built_with_the_table(conninfo: str, table: str) -> None:
    with PgVectorIndex(conninfo, table, hnsw=True) as index:
        assert not index.has_hnsw_index  # no table yet: dim unknown
        index.add(["a", "b"], np.eye(3, 3)[:2])
        assert index.has_hnsw_index
        assert index.search([1.0, 0.0, 0.0], k=1).ids == ["a"]  # type: ignore[union-attr]


def test_metadata_index_keeps_results(index: PgVectorIndex) -> None:
    ids, vectors, metadata = _data(400, 8)
    index.add(ids, vectors, metadata)
    before = index.search(vectors[:3], k=5, where={"lang": "en", "group": 2})
    index.create_metadata_index()
    after = index.search(vectors[:3], k=5, where={"lang": "en", "group": 2})
    assert before.ids == after.ids  # type: ignore[union-attr]


def test_owned_connection_closes(conninfo: str, table: str) -> None:
    index = PgVectorIndex(conninfo, table, dim=2)
    index.close()
    assert index.connection.closed
    assert "exact" in repr(index)


def test_missing_extension_is_explained(pg_server: Any) -> None:
    with psycopg.connect(pg_server.conninfo, autocommit=True) as conn:
        conn.execute("CREATE DATABASE no_vector")
        conn.execute("CREATE ROLE app LOGIN")
    target = pg_server.conninfo_for("no_vector")
    with pytest.raises(ConfigError, match="CREATE EXTENSION vector"):
        PgVectorIndex(target, create=False)
    as_app = target.replace("user=postgres", "user=app")
    with pytest.raises(ConfigError, match="ask the database owner") as info:
        PgVectorIndex(as_app)  # pgvector is not a trusted extension: only a superuser may create it
    assert isinstance(info.value.__cause__, psycopg.errors.InsufficientPrivilege)
    with PgVectorIndex(target, dim=2) as index:  # a superuser may
        index.add(["a"], [[1.0, 2.0]])
        assert len(index) == 1


def test_numbers_in_metadata_keep_their_value(index: PgVectorIndex) -> None:
    meta = {"small": 1e-7, "big": 1e16, "one": 1.0, "int": 10**20, "neg": -2.5}
    index.add(["a"], [[1.0, 0.0]], [meta])
    stored = index.get("a").metadata
    assert stored == meta  # equal values ...
    assert isinstance(stored["one"], float)
    assert isinstance(stored["small"], float)
    assert isinstance(stored["big"], int)  # ... but JSONB prints 1e16 as 10000000000000000
    assert index.search([1.0, 0.0], k=1, where={"big": 10**16}).ids == ["a"]  # type: ignore[union-attr]


def test_hnsw_settings_are_checked(conninfo: str, table: str) -> None:
    with pytest.raises(ConfigError, match="ef_search"):
        PgVectorIndex(conninfo, table, ef_search=0)
    with PgVectorIndex(conninfo, table, dim=4) as index:
        with pytest.raises(ConfigError, match="ef_search"):
            index.ef_search = 1001
        with pytest.raises(ConfigError, match="ef_construction"):
            index.create_hnsw_index(m=16, ef_construction=20)
        with pytest.raises(ConfigError, match="ef_construction"):
            index.create_hnsw_index(m=1)
        rng = np.random.default_rng(0)
        index.add([f"v{i}" for i in range(300)], rng.standard_normal((300, 4)))
        index.create_hnsw_index()
        index.ef_search = 10
        got = index.search(rng.standard_normal(4), k=60)  # ef_search is raised to k: k results come back
        assert isinstance(got, Matches)
        assert len(got) == 60
    with pytest.raises(ConfigError, match="dim must be"):
        PgVectorIndex(conninfo, table, dim=0)
    with pytest.raises(ConfigError, match="metric must be"):
        PgVectorIndex(conninfo, table, metric="l2")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="connection string"):
        PgVectorIndex(42, table)  # type: ignore[arg-type]
