"""Bounded reading of line-oriented input files (JSONL, CSV, text): memory never grows with the input.

Two guards, shared by every reader of the library (dataset loading, validation and fixing, index loaders, the
CLI):

* :func:`open_input` opens only **regular files** unless the caller asks for more (``allow_special=True``):
  a device (``/dev/zero``, ``/dev/urandom``), a FIFO or a socket never ends or blocks, so it is refused with a
  :class:`~finetune_embed.FileAccessError` before anything is read. A FIFO is opened without blocking.
* :func:`iter_lines` and :func:`read_lines` never hold more than ``max_line_bytes`` of one line: a longer line
  is skipped in bounded chunks (and reported as a :class:`LongLine`) or refused with
  :class:`~finetune_embed.LineTooLongError`. The default limit is the Files API's limit on a whole file
  (512 MB): no line longer than that can be part of a file the service accepts through the Files API.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "x.jsonl")
>>> _ = open(path, "wb").write(b'{"a": 1}\\n' + b"x" * 50 + b"\\n{}\\n")
>>> with open_input(path) as f:
...     [line if isinstance(line, bytes) else line.length for line in iter_lines(f, max_line_bytes=20)]
[b'{"a": 1}\\n', 51, b'{}\\n']
"""

from __future__ import annotations

import contextlib
import csv
import os
import stat
import threading
from collections.abc import Iterator
from typing import IO, NamedTuple

from ._atomic import file_access_error
from ._exceptions import FileAccessError, LineTooLongError

__all__ = [
    "MAX_LINE_BYTES",
    "LongLine",
    "bounded_text_lines",
    "csv_field_limit",
    "iter_lines",
    "open_input",
    "read_lines",
    "regular_file_size",
]

MAX_LINE_BYTES = 512 * 1024 * 1024  # the Files API's per-file limit (openapi: "files can be up to 512 MB")
_SKIP_CHUNK = 1 << 20
_HEAD_BYTES = 200


class LongLine(NamedTuple):
    """Stands for a line longer than the limit, which was skipped rather than read into memory."""

    length: int  # bytes, its newline included
    head: bytes  # its first bytes, to show where it starts


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"  # pragma: no cover - every other kind is listed above


def open_input(path: str | os.PathLike[str], *, allow_special: bool = False, buffering: int = 1 << 20) -> IO[bytes]:
    """Open ``path`` for reading bytes, refusing anything but a regular file unless ``allow_special`` is true.

    Raises :class:`~finetune_embed.FileAccessError` (an ``OSError``) when the file is missing, unreadable, a
    folder, or a device / FIFO / socket (``.errno`` is ``None`` for those: the library refused, not the OS).
    """
    name = os.fspath(path)
    # a FIFO without a writer must not block an open that will refuse it anyway (no effect on regular files);
    # a caller who asks for FIFOs gets the usual blocking open, which waits for the writer
    nonblock = 0 if allow_special else getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0) | nonblock)
    except OSError as exc:
        raise file_access_error(exc, name, "read") from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise FileAccessError(f"Cannot read {name}: it is a folder; give the path of a file.", path=name)
        if not stat.S_ISREG(mode) and not allow_special:
            raise FileAccessError(
                f"Cannot read {name}: it is {_kind(mode)}, not a regular file, and reading it might never end; "
                "save the data to a file and pass that file's path.",
                path=name,
            )
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def regular_file_size(f: IO[bytes]) -> int | None:
    """The size of an open regular file, or ``None`` for anything else (or a size the OS reports as 0, as
    ``/proc`` files do)."""
    try:
        st = os.fstat(f.fileno())
    except (OSError, ValueError, AttributeError):  # pragma: no cover - objects without a descriptor
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) and st.st_size > 0 else None


def iter_lines(f: IO[bytes], *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes | LongLine]:
    """Each line of ``f`` (bytes, with its newline), or a :class:`LongLine` for a line of more than
    ``max_line_bytes`` bytes (newline excluded): such a line is skipped in 1 MiB chunks, never held whole.

    A regular file no larger than the limit cannot hold a longer line, so it is read by plain iteration (no
    cost per line); other files go through ``readline(limit)``.
    """
    size = regular_file_size(f)
    if size is not None and size <= max_line_bytes:
        yield from f
        return
    cap = max_line_bytes + 1
    readline = f.readline
    while True:
        raw = readline(cap)
        if not raw:
            return
        if len(raw) == cap and not raw.endswith(b"\n"):
            head = raw[:_HEAD_BYTES]
            length = cap
            del raw
            while chunk := readline(_SKIP_CHUNK):
                length += len(chunk)
                if chunk.endswith(b"\n"):
                    break
            yield LongLine(length, head)
            continue
        yield raw


def read_lines(
    path: str | os.PathLike[str],
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    allow_special: bool = False,
) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` for each line of ``path`` (bytes, newline included), refusing devices and FIFOs
    (unless ``allow_special``) and stopping with :class:`~finetune_embed.LineTooLongError` at the first line over
    ``max_line_bytes``. For loaders that stop at the first bad line (``Dataset.from_json``, index metadata, the
    CLI's inputs); validators that report every line use :func:`iter_lines`."""
    name = os.fspath(path)
    if isinstance(max_line_bytes, bool) or not isinstance(max_line_bytes, int) or max_line_bytes < 1:
        from ._exceptions import InvalidArgumentError

        raise InvalidArgumentError(
            f"max_line_bytes must be an integer >= 1, not {max_line_bytes!r}", argument="max_line_bytes"
        )
    with open_input(name, allow_special=allow_special) as f:
        for n, raw in enumerate(iter_lines(f, max_line_bytes=max_line_bytes), 1):
            if isinstance(raw, LongLine):
                raise LineTooLongError(
                    f"the line is longer than {max_line_bytes:,} bytes ({_describe(raw)}); no example or record can "
                    "be that long (the Files API takes at most 512 MB per file): is this a JSONL/CSV file? Split "
                    "the line, or pass a larger max_line_bytes",
                    path=name,
                    line=n,
                    limit=max_line_bytes,
                    length=raw.length,
                )
            yield n, raw


def _describe(long: LongLine) -> str:
    shown = long.head[:40].decode("utf-8", "backslashreplace")
    return f"at least {long.length:,} bytes, starting {shown!r}"


class _BoundedText:
    """An iterator over text lines that refuses a line longer than ``limit`` characters (for ``csv.reader``)."""

    def __init__(self, f: IO[str], limit: int, path: str) -> None:
        self._readline = f.readline
        self._limit = limit
        self._path = path
        self.line = 0

    def __iter__(self) -> _BoundedText:
        return self

    def __next__(self) -> str:
        text = self._readline(self._limit + 1)
        if not text:
            raise StopIteration
        self.line += 1
        if len(text) > self._limit and not text.endswith("\n"):
            raise LineTooLongError(
                f"the line is longer than {self._limit:,} characters; a CSV row cannot be that long: split it, or "
                "pass a larger limit",
                path=self._path,
                line=self.line,
                limit=self._limit,
                length=len(text),
            )
        return text


def bounded_text_lines(f: IO[str], *, path: str, max_line_chars: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Lines of a text file for ``csv.reader``, refusing (with :class:`LineTooLongError`) a line of more than
    ``max_line_chars`` characters instead of reading it whole."""
    return _BoundedText(f, max_line_chars, path)


_csv_lock = threading.Lock()


@contextlib.contextmanager
def csv_field_limit(limit: int) -> Iterator[None]:
    """Raise ``csv.field_size_limit`` to at least ``limit`` for the duration of the block, then restore it.

    The limit is process-wide in the :mod:`csv` module (there is no per-reader setting), so this is the one place
    the library touches it, and only while it parses; keep the block around an eager loop, not a generator that
    outlives it. Nested and concurrent uses are counted so that the caller's own value comes back at the end.
    """
    global _depth, _saved
    with _csv_lock:
        if _depth == 0:
            _saved = csv.field_size_limit()
        _depth += 1
        csv.field_size_limit(max(limit, csv.field_size_limit()))
    try:
        yield
    finally:
        with _csv_lock:
            _depth -= 1
            if _depth == 0:
                csv.field_size_limit(_saved)


_depth = 0
_saved = 0
