"""Chroma for the conformance suite: embedded (``PersistentClient`` in a temp folder) and a real ``chroma run``
server on a free loopback port, started once per session and always stopped."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from finetune_embed.index import VectorIndex

if TYPE_CHECKING:
    from .conftest import Backend

EXHAUSTIVE_EF = 1000  # >= every collection of the exact tests (600 items): the HNSW search visits every item
# the recall test's setting, as docs/vector-stores.md gives it: on 10k x 384 random vectors, with Chroma's default
# build (max_neighbors=16, ef_construction=100), recall@10 was 0.50 at Chroma's default ef_search=100, 0.92 at 400,
# 0.994 at 1000 (filtered to 1/16 of the rows: 0.998 / 1.0 / 1.0)
RECALL_EF = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _chroma_cli() -> Path | None:
    exe = Path(sys.executable).with_name("chroma")
    return exe if exe.exists() else None


def start_chroma_server(data: Path, timeout: float = 60.0) -> tuple[subprocess.Popen[bytes], str]:
    """``chroma run`` on 127.0.0.1, ready when ``/api/v2/heartbeat`` answers; returns the process and its URL."""
    exe = _chroma_cli()
    if exe is None:
        raise RuntimeError(f"no `chroma` command next to {sys.executable} (pip install 'finetune-embed[chroma]')")
    port = _free_port()
    log = open(data.parent / "chroma-server.log", "wb")  # noqa: SIM115 - the server writes it until stopped
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as response:
                response.read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                tail = (data.parent / "chroma-server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"chroma run did not answer at {url}: {tail}") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def chroma_url_fixture() -> Iterator[str]:
    """The body of the session fixture ``chroma_url`` (conftest.py)."""
    from .conftest import unavailable

    try:
        import chromadb  # noqa: F401
    except ImportError as exc:
        unavailable(f"chromadb is not installed ({exc}); pip install 'finetune-embed[chroma]'")
        raise
    folder = Path(tempfile.mkdtemp(prefix="fe-chroma-server-"))
    try:
        proc, url = start_chroma_server(folder / "data")
    except RuntimeError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        unavailable(f"the Chroma server could not start: {exc}")
        raise
    try:
        yield url
    finally:
        stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def chroma_backend(name: str, tmp: Path, url: str | None) -> Backend:
    """The Backend for ``chroma`` (embedded, ef_search >= n), ``chroma-server`` (the same over HTTP) or
    ``chroma-hnsw`` (embedded, the recall test's 10k items with the documented ef_search)."""
    from .conftest import Backend, unavailable, unique_name

    try:
        from finetune_embed.stores import ChromaIndex
    except ImportError as exc:
        unavailable(f"chromadb is not installed ({exc}); pip install 'finetune-embed[chroma]'")
        raise
    ef = RECALL_EF if name == "chroma-hnsw" else EXHAUSTIVE_EF
    where = {"url": url} if url is not None else {"path": str(tmp / "chroma")}
    names: dict[int, str] = {}

    def create(dim: int | None, metric: str) -> VectorIndex:
        collection = unique_name("c")
        store = ChromaIndex(collection, dim=dim, metric=metric, ef_search=ef, **where)  # type: ignore[arg-type]
        names[id(store)] = collection
        return store

    def reopen(store: VectorIndex) -> VectorIndex:
        collection = names[id(store)]
        store.close()
        again = ChromaIndex(collection, create=False, **where)  # type: ignore[arg-type]
        names[id(again)] = collection
        return again

    # HNSW always: exact only in the sense that ef_search >= n visits every item (measured on the suite's data)
    return Backend(name, "chroma", False, create, reopen,
                         unsupported=frozenset({"$gt:string", "$gte:string", "$lt:string", "$lte:string"}))
