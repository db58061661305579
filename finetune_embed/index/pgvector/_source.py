"""Where a PgVectorIndex gets its connections: one connection, or a ``psycopg_pool.ConnectionPool``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import psycopg

from ..._exceptions import ConfigError

__all__ = ["ConnectionSource"]


def _pool_class() -> type[Any] | None:
    try:
        from psycopg_pool import ConnectionPool
    except ImportError:
        return None
    return ConnectionPool


class ConnectionSource:
    """A connection string (the index opens an autocommit connection and closes it), a ``psycopg.Connection``
    (used as it is, left open) or a ``psycopg_pool.ConnectionPool`` (a connection borrowed per operation, so
    threads sharing the index run their queries side by side; the pool stays open).

    :meth:`pin` keeps one borrowed connection for a multi-statement job (one transaction) on the calling thread.
    """

    def __init__(self, target: object, argument: str) -> None:
        self.pool: Any = None
        self.conn: psycopg.Connection[Any] | None = None
        self.owns = False
        self._pinned = threading.local()
        pool_class = _pool_class()
        if isinstance(target, str):
            self.conn, self.owns = psycopg.connect(target, autocommit=True), True
        elif isinstance(target, psycopg.Connection):
            self.conn = target
        elif pool_class is not None and isinstance(target, pool_class):
            self.pool = target
        else:
            raise ConfigError(
                f"{argument} must be a connection string, a psycopg.Connection or a psycopg_pool.ConnectionPool, "
                f"got {type(target).__name__}."
            )

    @contextlib.contextmanager
    def borrow(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection to run one operation on."""
        pinned: psycopg.Connection[Any] | None = getattr(self._pinned, "conn", None)
        if pinned is not None:
            yield pinned
        elif self.pool is not None:
            with self.pool.connection() as conn:
                yield conn
        else:
            assert self.conn is not None
            yield self.conn

    @contextlib.contextmanager
    def pin(self) -> Iterator[psycopg.Connection[Any]]:
        """One connection for everything the calling thread does inside the block."""
        with self.borrow() as conn:
            previous = getattr(self._pinned, "conn", None)
            self._pinned.conn = conn
            try:
                yield conn
            finally:
                self._pinned.conn = previous

    def close(self) -> None:
        if self.owns and self.conn is not None:
            self.conn.close()
