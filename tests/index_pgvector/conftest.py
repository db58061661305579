"""A session-wide throwaway PostgreSQL + pgvector server for the PgVectorIndex tests.

Locally, the tests skip (with the reason) when psycopg or a PostgreSQL with pgvector is missing. Under
``CI=true`` they fail instead: CI must really test the PostgreSQL backend (``pip install -e '.[dev,pgvector]'``
brings psycopg and the pgserver wheel).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the environment
    if IN_CI:
        raise RuntimeError(
            f"CI=true but psycopg is not installed ({exc}): install the extra, pip install -e '.[dev,pgvector]'"
        ) from exc


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: the PostgreSQL tests must run, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A running :class:`~finetune_embed.index.pgvector.LocalServer` shared by the session."""
    try:
        from finetune_embed.index.pgvector import LocalServerError, start_local_server
    except ImportError as exc:
        _unavailable(f"finetune_embed.index.pgvector cannot be imported: {exc}")
        raise  # unreachable: _unavailable raised
    try:
        server = start_local_server()
    except LocalServerError as exc:
        _unavailable(f"no local PostgreSQL with pgvector could start: {exc}")
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def conninfo(pg_server: Any) -> str:
    """The session server's connection string."""
    return str(pg_server.conninfo)


_counter = itertools.count()


@pytest.fixture
def table(conninfo: str) -> Iterator[str]:
    """A fresh table name for one test; the table (if created) is dropped afterwards."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    yield name
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{name}"')
