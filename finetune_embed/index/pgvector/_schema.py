"""The table behind a PgVectorIndex: creating it, recognising it, and what its comment records.

The layout::

    CREATE TABLE embeddings (
        id        text PRIMARY KEY,
        embedding vector(<dim>) NOT NULL,     -- or halfvec(<dim>) (storage="halfvec")
        metadata  jsonb NOT NULL DEFAULT '{}',
        seq       bigint GENERATED ALWAYS AS IDENTITY   -- insertion order: the tie-break and the id order
    );
    COMMENT ON TABLE embeddings IS '{"finetune_embed": {"version": 1, "metric": "cosine", "model": null}}';

The comment remembers the metric (cosine tables hold unit vectors) and the embedding model, so that reopening
the table needs only its name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import psycopg
from psycopg import sql

from ..._exceptions import ConfigError, DimensionMismatchError
from ._ddl import MARKER, Storage, comment, table_statements

__all__ = [
    "COLUMNS",
    "Metric",
    "TableInfo",
    "create_table",
    "ensure_extension",
    "pgvector_version",
    "read_table",
    "table_identifier",
]

Metric: TypeAlias = Literal["cosine", "dot"]
COLUMNS = {"id": "text", "embedding": "vector", "metadata": "jsonb", "seq": "bigint"}


@dataclass(frozen=True)
class TableInfo:
    """What an existing table says about itself."""

    oid: int
    dim: int
    metric: Metric | None  # None: no (readable) comment
    model: str | None
    storage: Storage = "vector"


def table_identifier(table: str) -> sql.Identifier:
    """``"name"`` or ``"schema.name"`` as a quoted identifier."""
    parts = table.split(".") if isinstance(table, str) else []
    if not parts or len(parts) > 2 or any(not p for p in parts):
        raise ConfigError(f"table must be 'name' or 'schema.name', got {table!r}.")
    for part in parts:
        if len(part.encode()) > 63 or "\x00" in part:
            raise ConfigError(f"table name part {part!r} is longer than PostgreSQL's 63 bytes or holds NUL.")
    return sql.Identifier(*parts)


def ensure_extension(cur: psycopg.Cursor[Any], *, create: bool) -> None:
    """Make sure the ``vector`` extension exists in the database (creating it when allowed)."""
    if cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        return
    if not create:
        raise ConfigError(
            "The pgvector extension is not installed in this database; run `CREATE EXTENSION vector` "
            "(as a user allowed to) or pass create=True."
        )
    try:
        cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ConfigError(
            f"Cannot create the pgvector extension ({exc.diag.message_primary}); ask the database owner to run "
            "`CREATE EXTENSION vector` in this database."
        ) from exc
    except (psycopg.errors.UndefinedFile, psycopg.errors.FeatureNotSupported) as exc:
        raise ConfigError(
            "This PostgreSQL server has no pgvector extension installed (install pgvector on the server): "
            f"{exc.diag.message_primary}"
        ) from exc


def pgvector_version(cur: psycopg.Cursor[Any]) -> tuple[int, ...]:
    """The installed pgvector extension's version, e.g. ``(0, 8, 0)``."""
    row = cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    parts = str(row[0]).split(".") if row else []
    return tuple(int(p) for p in parts if p.isdigit())


def create_table(
    cur: psycopg.Cursor[Any], table: sql.Identifier, dim: int, metric: Metric, model: str | None,
    storage: Storage = "vector",
) -> None:
    """Create the table (if it does not exist) and record the metric, model and storage in its comment."""
    for statement in table_statements(table, dim, metric, model, storage):
        cur.execute(statement)


def set_comment(
    cur: psycopg.Cursor[Any], table: sql.Identifier, metric: Metric, model: str | None, storage: Storage = "vector"
) -> None:
    """Record the metric, model and storage in the table's comment."""
    cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(comment(metric, model, storage))))


def read_table(cur: psycopg.Cursor[Any], table: sql.Identifier, name: str) -> TableInfo | None:
    """The table's layout and comment, ``None`` when it does not exist.

    Raises:
        ConfigError: the table exists but does not have the layout above.
    """
    row = cur.execute("SELECT to_regclass(%s)::oid", [table.as_string(cur.connection)]).fetchone()
    if row is None or row[0] is None:
        return None
    oid = int(row[0])
    cols = {
        col: (typ, mod)
        for col, typ, mod in cur.execute(
            "SELECT attname, format_type(atttypid, NULL), atttypmod FROM pg_attribute "
            "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
            [oid],
        )
    }
    storage: Storage = "halfvec" if cols.get("embedding", ("",))[0] == "halfvec" else "vector"
    wrong = {
        col: cols[col][0] if col in cols else "missing"
        for col, typ in COLUMNS.items()
        if cols.get(col, ("",))[0] != (storage if col == "embedding" else typ)
    }
    if wrong:
        raise ConfigError(
            f"Table {name!r} exists but is not a PgVectorIndex table: it needs columns {COLUMNS}, and has "
            f"{wrong} (embedding may also be halfvec). Use another table name."
        )
    dim = int(cols["embedding"][1])
    if dim < 1:
        raise ConfigError(f"Table {name!r}: column embedding has no dimension; it must be {storage}(n).")
    comment_row = cur.execute("SELECT obj_description(%s, 'pg_class')", [oid]).fetchone()
    metric: Metric | None = None
    model: str | None = None
    try:
        info = json.loads(comment_row[0])[MARKER] if comment_row and comment_row[0] else {}
    except (ValueError, KeyError, TypeError):
        info = {}
    if isinstance(info, dict):
        if info.get("metric") in ("cosine", "dot"):
            metric = info["metric"]
        if isinstance(info.get("model"), str):
            model = info["model"]
    return TableInfo(oid=oid, dim=dim, metric=metric, model=model, storage=storage)


def check_dim(name: str, table_dim: int, dim: int | None) -> None:
    """Refuse a ``dim`` that differs from the table's."""
    if dim is not None and dim != table_dim:
        raise DimensionMismatchError(
            f"Table {name!r} holds {table_dim}-dimensional vectors, not dim={dim}.", expected=table_dim, got=dim
        )
