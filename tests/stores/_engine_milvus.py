"""Milvus for the conformance suite: Milvus Lite (a ``.db`` file, served inside the test process by pymilvus) and
the real Milvus standalone server from the ``milvus`` wheel (2.3: embedded etcd, local storage), started once per
session on free loopback ports in a temporary folder and always stopped."""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from finetune_embed.index import VectorIndex

if TYPE_CHECKING:
    from .conftest import Backend

# HNSW on the server: the recall test's setting, as docs/vector-stores.md gives it (M=16, efConstruction=200):
# recall@10 on 10k x 384 random vectors was 0.51 at ef=100, 0.94 at 500, 0.994 at 1000 after flush()
RECALL_EF = 1_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def milvus_server(folder: Path) -> Iterator[str]:
    """The ``milvus`` wheel's standalone server on free ports under ``folder``; yields its URI."""
    from milvus import MilvusServer

    server = MilvusServer()
    server.set_base_dir(str(folder))
    server.listen_port = free_port()
    try:
        with warnings.catch_warnings():
            # the wheel's port search leaves a socket unclosed for every port it finds taken: collect them here
            warnings.simplefilter("ignore", ResourceWarning)
            server.start()
            gc.collect()
    except BaseException:
        server.stop()
        raise
    try:
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()


def milvus_server_fixture() -> Iterator[str]:
    """The body of the session fixture ``milvus_uri`` (conftest.py)."""
    from .conftest import unavailable

    try:
        import milvus  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        unavailable(f"the milvus server wheel or pymilvus is not installed ({exc}); pip install -e '.[dev,milvus]'")
        raise
    folder = Path(tempfile.mkdtemp(prefix="fe-milvus-"))
    try:
        with milvus_server(folder) as uri:
            yield uri
    except Exception as exc:
        unavailable(f"the Milvus server could not start: {type(exc).__name__}: {exc}")
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def milvus_lite_fixture() -> Iterator[str]:
    """The body of the session fixture ``milvus_lite_uri``: one ``.db`` file for the session (pymilvus serves each
    file from one in-process server; collections keep the tests apart)."""
    from .conftest import unavailable

    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        unavailable(f"milvus-lite or pymilvus is not installed ({exc}); pip install -e '.[dev,milvus]'")
        raise
    folder = Path(tempfile.mkdtemp(prefix="fe-milvus-lite-"))
    path = str(folder / "suite.db")
    try:
        yield path
    finally:
        with contextlib.suppress(Exception):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(path)
        shutil.rmtree(folder, ignore_errors=True)


class Pool:
    """The server tier's collections, emptied and reused between tests.

    Creating and loading a collection costs the Milvus 2.3 server 2-7 s here (its query coordinator loads on a
    timer), about ten times a test's own work. So a test's collections are emptied when it ends (every row
    deleted, then a strong count(*) until Milvus reports 0) and handed to the next test that asks for the same
    dimension, metric and index; reopening one goes through ``MilvusIndex``'s normal open path. A collection
    the test dropped, or whose rows would not go, is dropped instead.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.free: dict[tuple[int | None, str, bool], list[str]] = {}

    def take(self, key: tuple[int | None, str, bool]) -> str | None:
        names = self.free.get(key)
        return names.pop() if names else None

    def give_back(self, names: list[tuple[str, tuple[int | None, str, bool]]]) -> None:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=self.uri, alias=f"fe-tests-pool-{os.getpid()}")
        try:
            for name, key in names:
                if not client.has_collection(name):
                    continue
                client.delete(name, filter="seq >= 0")
                for _ in range(50):
                    rows = client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
                    if int(rows[0]["count(*)"]) == 0:
                        self.free.setdefault(key, []).append(name)
                        break
                    time.sleep(0.1)
                else:
                    client.drop_collection(name)
        finally:
            client.close()


def milvus_pool_fixture(milvus_uri: str) -> Pool:
    """The body of the session fixture ``milvus_pool`` (conftest.py)."""
    return Pool(milvus_uri)


def milvus_backend(name: str, uri: str, pool: Pool | None = None) -> Backend:
    """The Backend for ``milvus`` (the server, FLAT), ``milvus-hnsw`` (the server, HNSW) or ``milvus-lite``
    (Milvus Lite, FLAT). ``pool``: the server tier's reusable collections."""
    from .conftest import Backend, unavailable, unique_name

    try:
        from finetune_embed.stores import MilvusIndex
    except ImportError as exc:
        unavailable(f"pymilvus is not installed ({exc}); pip install 'finetune-embed[milvus]'")
        raise
    hnsw = name.endswith("-hnsw")
    names: dict[int, str] = {}
    made: list[tuple[str, tuple[int | None, str, bool]]] = []

    def create(dim: int | None, metric: str) -> VectorIndex:
        key = (dim, metric, hnsw)
        collection = (pool.take(key) if pool is not None and dim is not None else None) or unique_name("m")
        made.append((collection, key))
        store = MilvusIndex(collection, uri=uri, dim=dim, metric=metric,  # type: ignore[arg-type]
                            index="hnsw" if hnsw else "flat", ef=RECALL_EF)
        names[id(store)] = collection
        return store

    def reopen(store: VectorIndex) -> VectorIndex:
        collection = names[id(store)]
        store.close()
        again = MilvusIndex(collection, uri=uri, create=False, ef=RECALL_EF)
        names[id(again)] = collection
        return again

    def flush(store: VectorIndex) -> None:
        """After a bulk load: seal and index the rows (see MilvusIndex.flush)."""
        assert isinstance(store, MilvusIndex)
        store.flush()

    def drop() -> None:
        if pool is not None:
            pool.give_back(made)
            return
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri)
        try:
            for collection, _ in made:
                client.drop_collection(collection)
        finally:
            client.close()

    backend = Backend(name, "milvus", not hnsw, create, reopen)
    backend.cleanup.append(drop)
    if hnsw:
        backend.finish_load = flush
    return backend
