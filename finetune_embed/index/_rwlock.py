"""A readers-writer lock: many threads may read at once; a writer waits for them and then has the index alone.

Writers are preferred (a waiting writer holds back new readers, so a stream of searches cannot starve an
``add``), and the lock is re-entrant per thread: a thread that reads may read again (a search that calls
``search``), a thread that writes may read or write again. A thread that reads may not start writing (for
instance an ``add`` from inside a ``where`` callable): that would wait for itself, so it raises instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from .._exceptions import ConfigError

__all__ = ["ReadWriteLock"]


class ReadWriteLock:
    """Many readers or one writer; see the module docstring."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers: dict[int, int] = {}  # thread id -> how many times it holds the read lock
        self._writer: int | None = None
        self._depth = 0  # how many times the writer holds the write lock
        self._waiting = 0  # writers waiting

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock for reading during the ``with`` block."""
        me = threading.get_ident()
        with self._cond:
            if self._writer != me and me not in self._readers:
                while self._writer is not None or self._waiting:
                    self._cond.wait()
            self._readers[me] = self._readers.get(me, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                left = self._readers[me] - 1
                if left:
                    self._readers[me] = left
                else:
                    del self._readers[me]
                    if not self._readers:
                        self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock for writing during the ``with`` block."""
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
            else:
                if me in self._readers:
                    raise ConfigError(
                        "the index cannot be changed while this thread is reading it (for example from a where "
                        "callable during a search); change it after the search returns."
                    )
                self._waiting += 1
                acquired = False
                try:
                    while self._writer is not None or self._readers:
                        self._cond.wait()
                    acquired = True
                finally:
                    self._waiting -= 1
                    if not acquired:  # interrupted: readers held back by this writer may go on
                        self._cond.notify_all()
                self._writer = me
                self._depth = 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._writer = None
                    self._cond.notify_all()
