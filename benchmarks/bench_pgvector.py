"""Benchmark: PgVectorIndex (PostgreSQL + pgvector) versus the in-process EmbeddingIndex on the same data.

Generates clustered float32 vectors (default 100,000 x 384, 1,000 clusters: closer to real embeddings than
uniform noise, which no approximate index handles well) with a little metadata, then measures:

* ``load``: ``add()`` of everything (binary COPY) — and, for scale, ``executemany`` INSERTs of a 2,000-row
  sample into a scratch table, the approach COPY replaces;
* ``exact``: single-query latency (median and p95 over ``--queries`` queries, one round trip each) and the
  throughput of one batched call, plus a filtered query (``where={"lang": "en"}``, a third of the rows);
* ``hnsw`` (with ``--hnsw``): the index build (``create_hnsw_index``), query latency at two ``ef_search``
  values and recall@k against the exact results;
* ``in-process``: the same load and queries on ``EmbeddingIndex`` (if available).

By default the server is a throwaway :func:`local_server` (fsync off: loads are faster than on a durable
server); ``--conninfo`` measures your own server instead (a table ``bench_pgvector_<pid>`` is created and
dropped). Run: ``python benchmarks/bench_pgvector.py [--n 100000] [--dim 384] [--hnsw] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from finetune_embed.index.pgvector import PgVectorIndex, local_server


def make_data(n: int, dim: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    clusters = max(1, min(1000, n // 100))
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    vectors = centres[labels] + rng.standard_normal((n, dim)).astype(np.float32)  # in-cluster cosine ~0.5
    ids = [f"doc-{i}" for i in range(n)]
    langs = ("en", "fr", "de")
    metadata = [{"lang": langs[i % 3], "cluster": int(labels[i])} for i in range(n)]
    return ids, vectors.astype(np.float32), metadata


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def latencies(fn: Callable[[np.ndarray], Any], queries: np.ndarray) -> tuple[float, float, list[Any]]:
    times, results = [], []
    for q in queries:
        elapsed, result = timed(lambda q=q: fn(q))
        times.append(elapsed)
        results.append(result)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, results


def recall(approx: list[list[str]], exact: list[list[str]], k: int) -> float:
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact, strict=True)]))


@contextmanager
def server_conninfo(conninfo: str | None) -> Iterator[str]:
    if conninfo:
        yield conninfo
        return
    settings = {"shared_buffers": "1GB", "maintenance_work_mem": "2GB", "max_parallel_maintenance_workers": "1"}
    with local_server(settings=settings) as server:
        print(f"# throwaway PostgreSQL {server.version} (fsync=off) at {server.host}", file=sys.stderr)
        yield server.conninfo


def executemany_rate(conninfo: str, ids: list[str], vectors: np.ndarray, metadata: list[dict[str, Any]]) -> float:
    import psycopg
    from psycopg.types.json import Jsonb

    rows = min(2000, len(ids))
    table = f"bench_executemany_{os.getpid()}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, embedding vector({vectors.shape[1]}), metadata jsonb)")
        try:
            data = [
                (ids[i], "[" + ",".join(map(repr, vectors[i].tolist())) + "]", Jsonb(metadata[i])) for i in range(rows)
            ]
            with conn.transaction(), conn.cursor() as cur:
                elapsed, _ = timed(
                    lambda: cur.executemany(f"INSERT INTO {table} VALUES (%s, %s::vector, %s)", data)
                )
        finally:
            conn.execute(f"DROP TABLE {table}")
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--hnsw", action="store_true", help="also build an HNSW index and query through it")
    parser.add_argument("--quick", action="store_true", help="n=10,000, 30 queries")
    parser.add_argument("--conninfo", help="an existing PostgreSQL with pgvector instead of a throwaway one")
    args = parser.parse_args()
    if args.quick:
        args.n, args.queries = 10_000, 30

    ids, vectors, metadata = make_data(args.n, args.dim)
    rng = np.random.default_rng(1)
    picks = rng.integers(0, args.n, args.queries)
    queries = vectors[picks] + 0.5 * rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    k = args.k
    rows: list[tuple[str, str, str]] = []

    def row(system: str, what: str, value: str) -> None:
        rows.append((system, what, value))
        print(f"  {system:<12} {what:<44} {value}", file=sys.stderr)

    with server_conninfo(args.conninfo) as conninfo:
        table = f"bench_pgvector_{os.getpid()}"
        index = PgVectorIndex(conninfo, table)
        try:
            elapsed, _ = timed(lambda: index.add(ids, vectors, metadata))
            row("postgres", f"add {args.n:,} x {args.dim} (binary COPY)", f"{elapsed:.2f} s ({args.n / elapsed:,.0f} rows/s)")
            rate = executemany_rate(conninfo, ids, vectors, metadata)
            row("postgres", "executemany INSERT (2,000-row sample)", f"{rate:,.0f} rows/s")
            index.connection.execute(f"VACUUM ANALYZE {table}")

            def one(q: np.ndarray) -> Any:
                return index.search(q, k=k)

            med, p95, exact = latencies(one, queries)
            exact_ids = [m.ids for m in exact]
            row("postgres", f"exact search, 1 query, k={k}", f"median {med * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms")
            elapsed, _ = timed(lambda: index.search(queries, k=k))
            row("postgres", f"exact search, batch of {args.queries}", f"{elapsed:.2f} s ({args.queries / elapsed:,.1f} q/s)")
            med, _, _ = latencies(lambda q: index.search(q, k=k, where={"lang": "en"}), queries[:20])
            row("postgres", 'exact search + where {"lang": "en"}', f"median {med * 1e3:.1f} ms")

            if args.hnsw:
                elapsed, _ = timed(lambda: index.create_hnsw_index(m=16, ef_construction=64))
                row("postgres", "HNSW build (m=16, ef_construction=64)", f"{elapsed:.1f} s")
                for ef in (40, 100):
                    index.ef_search = ef
                    med, p95, approx = latencies(one, queries)
                    r = recall([m.ids for m in approx], exact_ids, k)
                    row("postgres", f"HNSW search, ef_search={ef}", f"median {med * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms, recall@{k} {r:.3f}")
        finally:
            index.connection.execute(f"DROP TABLE IF EXISTS {table}")
            index.close()

    try:
        from finetune_embed.index import EmbeddingIndex
    except ImportError:
        row("in-process", "EmbeddingIndex", "not available")
    else:
        local = EmbeddingIndex(dim=args.dim)
        elapsed, _ = timed(lambda: local.add(ids, vectors.copy(), metadata))  # (its add normalises in place)
        row("in-process", f"add {args.n:,} x {args.dim}", f"{elapsed:.2f} s ({args.n / elapsed:,.0f} rows/s)")
        med, p95, results = latencies(lambda q: local.search(q.copy(), k=k), queries)
        same = recall([m.ids for m in results], exact_ids, k)
        row("in-process", f"exact search, 1 query, k={k}", f"median {med * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms (same ids: {same:.3f})")
        elapsed, _ = timed(lambda: local.search(queries.copy(), k=k))
        row("in-process", f"exact search, batch of {args.queries}", f"{elapsed:.2f} s ({args.queries / elapsed:,.1f} q/s)")
        med, _, _ = latencies(lambda q: local.search(q.copy(), k=k, where={"lang": "en"}), queries[:20])
        row("in-process", 'exact search + where {"lang": "en"}', f"median {med * 1e3:.1f} ms")

    print(f"\nN={args.n:,} dim={args.dim} k={k} queries={args.queries} ({os.cpu_count()} CPUs)\n")
    print(f"| {'system':<10} | {'measure':<44} | result |")
    print(f"|{'-' * 12}|{'-' * 46}|--------|")
    for system, what, value in rows:
        print(f"| {system:<10} | {what:<44} | {value} |")


if __name__ == "__main__":
    main()
