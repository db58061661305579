"""The EmbeddingIndex API on PostgreSQL + pgvector, for indexes past one machine's memory or shared by services.

Needs the ``pgvector`` extra (``pip install 'finetune-embed[pgvector]'``: psycopg 3) and a PostgreSQL server
with the pgvector extension. :func:`local_server` starts a throwaway one for tests (``pip install pgserver``).
See docs/search-postgres.md.
"""

from __future__ import annotations

from ._index import PgVectorIndex
from ._schema import Metric
from ._server import LocalServer, LocalServerError, find_postgres, local_server, start_local_server
from ._sql import where_to_sql

__all__ = [
    "LocalServer",
    "LocalServerError",
    "Metric",
    "PgVectorIndex",
    "find_postgres",
    "local_server",
    "start_local_server",
    "where_to_sql",
]
