"""Atomic file writes: a temporary file beside the target, fsynced, then renamed over it.

One helper for every file the library writes (datasets, fixed/rejected files, metrics CSVs, downloads,
embedding arrays), so that a reader sees either the old file or the complete new one, never half of one, and
an interrupted write (an exception, Ctrl-C, a full disk) leaves no temporary file behind.

Permissions are those :func:`open` would give: a new file gets ``0o666`` minus the process umask (the kernel
applies the umask, so default ACLs of the folder apply too), and replacing an existing file keeps that file's
permission bits, as writing into it with ``open(path, "w")`` would. Only files that hold secrets should pass
``private=True`` (``0o600``); nothing the library writes today does.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
>>> with atomic_write(target) as f:
...     _ = f.write("hello\\n")
>>> target.read_text()
'hello\\n'
"""

from __future__ import annotations

import contextlib
import errno as errno_codes
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Literal, overload

from ._exceptions import FileAccessError, FinetuneEmbedError

__all__ = ["atomic_path", "atomic_write", "atomic_write_bytes", "atomic_write_lines", "file_access_error"]

_NEW_FILE_MODE = 0o666
_PRIVATE_MODE = 0o600
# errors a write itself reports (a full disk, a quota, a file-size limit, a failing device)
_WRITE_ERRNOS = frozenset({errno_codes.ENOSPC, errno_codes.EDQUOT, errno_codes.EFBIG, errno_codes.EIO})


def file_access_error(exc: OSError, path: str | os.PathLike[str], doing: str) -> FileAccessError:
    """A typed error for an ``OSError`` raised while ``doing`` something with ``path`` (what, where, how to fix)."""
    name = os.fspath(path)
    reason = exc.strerror or str(exc) or type(exc).__name__
    code = exc.errno
    if code in (errno_codes.EACCES, errno_codes.EPERM, errno_codes.EROFS):
        fix = "check the permissions of the file and its folder (or choose another path)"
    elif code == errno_codes.ENOENT:
        fix = "check the path"
    elif code == errno_codes.EISDIR:
        fix = "the path is a folder: give a file name"
    elif code == errno_codes.ENOTDIR:
        fix = "a part of the path is a file, not a folder: check the path"
    elif code in (errno_codes.ENOSPC, errno_codes.EDQUOT):
        fix = "free some disk space (or choose another disk) and try again"
    elif code == errno_codes.EEXIST:
        fix = "remove the existing file or choose another path"
    else:
        fix = "check the path and the disk"
    return FileAccessError(f"Cannot {doing} {name}: {reason}; {fix}.", path=name, errno=code)


def _resolve_target(path: str | os.PathLike[str]) -> Path:
    """The file a plain ``open(path, "w")`` would write: a symlink is followed to its target."""
    target = Path(path)
    if target.is_symlink():
        return Path(os.path.realpath(target))
    return target


def _create_temp(target: Path, suffix: str, mode: int) -> tuple[int, Path]:
    """A new, uniquely named file beside ``target``, created with ``mode`` (the umask applies)."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
        except FileExistsError:
            continue
        return fd, tmp
    raise FileAccessError(  # pragma: no cover - 100 random 48-bit names all taken
        f"Cannot write {target}: no free temporary name beside it after 100 tries; remove stale "
        f".{target.name}.*{suffix} files from {target.parent}.",
        path=str(target),
        errno=errno_codes.EEXIST,
    )


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort: not every platform or file system can fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str],
    *,
    private: bool = False,
    suffix: str = ".tmp",
    make_parents: bool = True,
) -> Iterator[Path]:
    """Yield the path of a new, empty temporary file beside ``path``; on a clean exit it is fsynced and renamed
    over ``path``, on any exception (``KeyboardInterrupt`` included) it is removed.

    For writers that must open the file themselves (possibly several times, e.g. a download that is retried).
    File-system failures raise :class:`~finetune_embed.FileAccessError`; the caller's own exceptions pass
    through unchanged.
    """
    target = _resolve_target(path)
    try:
        if make_parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(target, suffix, _PRIVATE_MODE if private else _NEW_FILE_MODE)
    except OSError as exc:
        raise file_access_error(exc, target, "write") from exc
    try:
        try:
            existing = os.stat(target)
        except OSError:
            existing = None
        try:
            if existing is not None and stat.S_ISREG(existing.st_mode) and not private:
                os.fchmod(fd, stat.S_IMODE(existing.st_mode))  # replacing keeps the file's permissions, as open() does
            os.close(fd)
            fd = -1
        except OSError as exc:
            raise file_access_error(exc, target, "write") from exc
        yield tmp
        try:
            with open(tmp, "rb+") as f:  # the data reaches the disk before the name does
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            raise file_access_error(exc, target, "write") from exc
        _fsync_dir(target.parent)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _unlink_quietly(tmp)
        raise


@overload
def atomic_write(
    path: str | os.PathLike[str],
    mode: Literal["w"] = "w",
    *,
    encoding: str = "utf-8",
    newline: str | None = "\n",
    private: bool = False,
    suffix: str = ".tmp",
) -> contextlib.AbstractContextManager[IO[str]]: ...


@overload
def atomic_write(
    path: str | os.PathLike[str],
    mode: Literal["wb"],
    *,
    encoding: str = "utf-8",
    newline: str | None = "\n",
    private: bool = False,
    suffix: str = ".tmp",
) -> contextlib.AbstractContextManager[IO[bytes]]: ...


def atomic_write(
    path: str | os.PathLike[str],
    mode: Literal["w", "wb"] = "w",
    *,
    encoding: str = "utf-8",
    newline: str | None = "\n",
    private: bool = False,
    suffix: str = ".tmp",
) -> contextlib.AbstractContextManager[IO[str]] | contextlib.AbstractContextManager[IO[bytes]]:
    """Open a temporary file beside ``path`` for writing (text with ``mode="w"``, bytes with ``"wb"``); on a
    clean exit of the ``with`` block it is flushed, fsynced and renamed over ``path``, on any exception removed.

    ``newline`` is that of :func:`open` (default ``"\\n"``: LF on every platform; ``""`` for the csv module).
    """
    opened = _atomic_file(path, mode, encoding=encoding, newline=newline, private=private, suffix=suffix)
    return opened  # type: ignore[return-value]  # the overloads say which of the two


@contextlib.contextmanager
def _atomic_file(
    path: str | os.PathLike[str],
    mode: str,
    *,
    encoding: str,
    newline: str | None,
    private: bool,
    suffix: str,
) -> Iterator[IO[str] | IO[bytes]]:
    with atomic_path(path, private=private, suffix=suffix) as tmp:
        try:
            if mode == "wb":
                with open(tmp, "wb") as fb:
                    yield fb
            else:
                with open(tmp, "w", encoding=encoding, newline=newline) as ft:
                    yield ft
        except OSError as exc:
            if isinstance(exc, FinetuneEmbedError) or exc.errno not in _WRITE_ERRNOS:
                raise
            raise file_access_error(exc, path, "write") from exc


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb", private=private) as f:
        f.write(data)


def atomic_write_lines(
    path: str | os.PathLike[str],
    lines: Iterable[str],
    *,
    private: bool = False,
) -> int:
    """Write ``lines`` (each without its newline) to ``path`` atomically, UTF-8 with LF; returns how many."""
    n = 0
    with atomic_write(path, private=private) as f:
        for text in lines:
            f.write(text)
            f.write("\n")
            n += 1
    return n
