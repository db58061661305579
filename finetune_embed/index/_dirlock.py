"""Advisory locks on directories (``flock``), so that saves and loads of one index directory can run side by side.

A save holds the *parent* directory's lock exclusively only while it swaps its new directory in and removes the
old one (milliseconds); loads hold it shared only while they open the files. Each save's own temporary
directory is locked exclusively for as long as the save runs: a temporary directory whose lock can be taken
belongs to a save that died, and may be cleaned up.

Where ``flock`` does not exist (Windows) or the file system refuses it, the locks are skipped: saves stay atomic
but concurrent saves to one path are not coordinated there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .._exceptions import IndexFileError
from .._logging import get_logger

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_TIMEOUT", "dir_lock", "open_dir", "try_lock"]

LOCK_TIMEOUT = 120.0
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
_log = get_logger("index")


def open_dir(path: Path) -> int:
    """A read-only descriptor of the directory ``path`` (raises OSError)."""
    return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def try_lock(fd: int, *, shared: bool = False) -> bool:
    """Take the lock of ``fd`` without waiting; True when taken (or when locks are unsupported here)."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:  # pragma: no cover - file systems without flock
            return True
        raise
    return True


@contextlib.contextmanager
def dir_lock(directory: Path, *, shared: bool, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold ``directory``'s lock (shared or exclusive) for the ``with`` block, waiting at most ``timeout`` s.

    Raises:
        IndexFileError: the lock stayed taken for ``timeout`` seconds.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    try:
        fd = open_dir(directory)
    except OSError as exc:  # e.g. a directory we may enter but not list: go on unlocked
        _log.debug("cannot lock %s (%s); going on without the lock", directory, exc)
        yield
        return
    try:
        delay = 0.0005
        deadline = time.monotonic() + timeout
        while not try_lock(fd, shared=shared):
            if time.monotonic() > deadline:
                raise IndexFileError(
                    f"waited {timeout:.0f} s for the lock on {directory}, held by another process saving or loading "
                    "an index there; try again when it has finished."
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
