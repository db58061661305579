"""The SQL that creates a PgVectorIndex table and its vector indexes: run by the index, and exported for migrations.

:func:`schema_sql` gives the statements as text, so a team that manages its schema with migrations (Alembic,
Flyway, plain SQL files) can create the table and indexes there and open it with ``PgVectorIndex(...,
create=False)``.
"""

from __future__ import annotations

import json
from typing import Literal, TypeAlias

from psycopg import sql

from ..._exceptions import ConfigError

__all__ = ["AnnKind", "Storage", "index_name", "index_statement", "operator_class", "schema_sql", "table_statements"]

Storage: TypeAlias = Literal["vector", "halfvec"]
"""``"vector"``: float32 (4 bytes a dimension, indexable up to 2,000 dimensions); ``"halfvec"``: float16 (2 bytes,
indexable up to 4,000: text-embedding-3-large's 3,072 fit)."""
AnnKind: TypeAlias = Literal["hnsw", "ivfflat"]

MARKER = "finetune_embed"
FORMAT_VERSION = 1
MAX_INDEXED_DIM: dict[str, int] = {"vector": 2000, "halfvec": 4000}  # pgvector's limits for HNSW and IVFFlat
_OPS = {"cosine": "cosine_ops", "dot": "ip_ops"}


def operator_class(metric: str, storage: Storage) -> str:
    """pgvector's operator class for the metric on the storage type, e.g. ``halfvec_cosine_ops``."""
    return f"{storage}_{_OPS[metric]}"


def comment(metric: str, model: str | None, storage: Storage) -> str:
    """The table comment that remembers the metric, the model and the storage type."""
    info: dict[str, object] = {"version": FORMAT_VERSION, "metric": metric, "model": model}
    if storage != "vector":
        info["storage"] = storage
    return json.dumps({MARKER: info})


def table_statements(
    table: sql.Identifier, dim: int, metric: str, model: str | None, storage: Storage = "vector"
) -> list[sql.Composed]:
    """``CREATE TABLE IF NOT EXISTS`` and ``COMMENT ON TABLE`` for a PgVectorIndex table."""
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {t} (id text PRIMARY KEY, embedding {s}({d}) NOT NULL, "
            "metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb, seq bigint GENERATED ALWAYS AS IDENTITY)"
        ).format(t=table, s=sql.SQL(storage), d=sql.Literal(dim)),
        sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(comment(metric, model, storage))),
    ]


def index_name(table_name: str, kind: AnnKind | Literal["metadata_gin"], *, qualified: bool = False) -> sql.Identifier:
    """The name the index gives its vector / metadata index: ``<table>_embedding_hnsw`` and so on."""
    *schema, base = table_name.split(".")
    suffix = kind if kind == "metadata_gin" else f"embedding_{kind}"
    name = f"{base}_{suffix}"[:63]
    return sql.Identifier(*schema, name) if qualified else sql.Identifier(name)


def index_statement(
    table: sql.Identifier,
    table_name: str,
    kind: AnnKind,
    metric: str,
    storage: Storage,
    dim: int,
    *,
    m: int = 16,
    ef_construction: int = 64,
    lists: int = 100,
    concurrently: bool = False,
) -> sql.Composed:
    """``CREATE INDEX [CONCURRENTLY] IF NOT EXISTS`` for an HNSW or IVFFlat index, after checking its options.

    Raises:
        ConfigError: more dimensions than pgvector indexes for the storage type, or options out of range.
    """
    limit = MAX_INDEXED_DIM[storage]
    if dim > limit:
        hint = " or store halfvec (storage='halfvec', up to 4000)" if storage == "vector" else ""
        raise ConfigError(
            f"pgvector indexes {storage} columns of up to {limit} dimensions and this table has {dim}: search "
            f"exactly, embed with fewer dimensions (text-embedding-3 models accept dimensions=){hint}."
        )
    if kind == "hnsw":
        if not (isinstance(m, int) and 2 <= m <= 100 and isinstance(ef_construction, int)
                and 2 * m <= ef_construction <= 1000):
            raise ConfigError(
                f"HNSW needs 2 <= m <= 100 and 2*m <= ef_construction <= 1000, got m={m!r}, "
                f"ef_construction={ef_construction!r}."
            )
        options = sql.SQL("WITH (m = {}, ef_construction = {})").format(sql.Literal(m), sql.Literal(ef_construction))
    elif kind == "ivfflat":
        if isinstance(lists, bool) or not isinstance(lists, int) or not 1 <= lists <= 32768:
            raise ConfigError(f"IVFFlat needs 1 <= lists <= 32768, got lists={lists!r}.")
        options = sql.SQL("WITH (lists = {})").format(sql.Literal(lists))
    else:
        raise ConfigError(f"index kind must be 'hnsw' or 'ivfflat', got {kind!r}.")
    return sql.SQL("CREATE INDEX {c}IF NOT EXISTS {n} ON {t} USING {k} (embedding {o}) {w}").format(
        c=sql.SQL("CONCURRENTLY " if concurrently else ""),
        n=index_name(table_name, kind),
        t=table,
        k=sql.SQL(kind),
        o=sql.SQL(operator_class(metric, storage)),
        w=options,
    )


def schema_sql(
    table: str,
    dim: int,
    *,
    metric: Literal["cosine", "dot"] = "cosine",
    storage: Storage = "vector",
    model: str | None = None,
    index: AnnKind | None = None,
    m: int = 16,
    ef_construction: int = 64,
    lists: int = 100,
    concurrently: bool = False,
    metadata_index: bool = False,
) -> str:
    """The SQL that creates a PgVectorIndex table (and optionally its vector and metadata indexes), as text.

    Run it in your own migration, then open the table with ``PgVectorIndex(conninfo, table, create=False)``; the
    table comment records the metric, model and storage type, so the index finds them.

    Example:
        >>> ddl = schema_sql("docs", 3072, storage="halfvec", index="hnsw", model="text-embedding-3-large")
        >>> print(ddl)  # doctest: +ELLIPSIS
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE IF NOT EXISTS "docs" (id text PRIMARY KEY, embedding halfvec(3072) NOT NULL, ...);
        COMMENT ON TABLE "docs" IS '{"finetune_embed": {..., "storage": "halfvec"}}';
        CREATE INDEX IF NOT EXISTS "docs_embedding_hnsw" ON "docs" USING hnsw (embedding halfvec_cosine_ops) ...;
    """
    from ._schema import table_identifier

    if metric not in _OPS:
        raise ConfigError(f"metric must be 'cosine' or 'dot', got {metric!r}.")
    if storage not in MAX_INDEXED_DIM:
        raise ConfigError(f"storage must be 'vector' or 'halfvec', got {storage!r}.")
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 16000:
        raise ConfigError(f"dim must be an integer from 1 to 16000 (pgvector's limit), got {dim!r}.")
    ident = table_identifier(table)
    statements: list[sql.Composable] = [sql.SQL("CREATE EXTENSION IF NOT EXISTS vector")]
    statements += table_statements(ident, dim, metric, model, storage)
    if index is not None:
        statements.append(
            index_statement(ident, table, index, metric, storage, dim, m=m, ef_construction=ef_construction,
                            lists=lists, concurrently=concurrently)
        )
    if metadata_index:
        statements.append(
            sql.SQL("CREATE INDEX {c}IF NOT EXISTS {n} ON {t} USING gin (metadata jsonb_path_ops)").format(
                c=sql.SQL("CONCURRENTLY " if concurrently else ""), n=index_name(table, "metadata_gin"), t=ident
            )
        )
    return "\n".join(s.as_string(None) + ";" for s in statements)
