"""Milvus for the conformance suite: Milvus Lite (a ``.db`` file, served inside the test process by pymilvus) and
the real Milvus standalone server from the ``milvus`` wheel (2.3: embedded etcd, local storage), started once per
session on free loopback ports in a temporary folder and always stopped."""

from __future__ import annotations

import contextlib
import gc
import shutil
import socket
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from finetune_embed.index import VectorIndex

if TYPE_CHECKING:
    from .conftest import Backend

# HNSW on the server: the recall test's setting, as docs/vector-stores.md gives it (M=16, efConstruction=200)
RECALL_EF = 500


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


def milvus_backend(name: str, uri: str) -> Backend:
    """The Backend for ``milvus`` (the server, FLAT), ``milvus-hnsw`` (the server, HNSW) or ``milvus-lite``
    (Milvus Lite, FLAT)."""
    from .conftest import Backend, unavailable, unique_name

    try:
        from finetune_embed.stores import MilvusIndex
    except ImportError as exc:
        unavailable(f"pymilvus is not installed ({exc}); pip install 'finetune-embed[milvus]'")
        raise
    hnsw = name.endswith("-hnsw")
    names: dict[int, str] = {}
    made: list[str] = []

    def create(dim: int | None, metric: str) -> VectorIndex:
        collection = unique_name("m")
        made.append(collection)
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

    def drop() -> None:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri)
        try:
            for collection in made:
                client.drop_collection(collection)
        finally:
            client.close()

    backend = Backend(name, "milvus", not hnsw, create, reopen)
    backend.cleanup.append(drop)
    return backend
