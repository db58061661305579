"""PgVectorIndex: the EmbeddingIndex API over a PostgreSQL table with pgvector (layout: see ``_schema``).

Search is exact by default: a scan ordered by distance, with index scans switched off for the query so that
an HNSW index cannot make it approximate. With ``hnsw=True`` it goes through the HNSW index (approximate,
much faster on large tables). Either way equal scores keep insertion order (the ``seq`` column), as in
:class:`~finetune_embed.index.EmbeddingIndex`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from ..._exceptions import ConfigError, DuplicateIdError, InvalidVectorError, MissingDependencyError, UnknownIdError
from ..._logging import get_logger
from ..._progress import progress_bar
from .._filters import Where
from .._index import EmbeddingIndex, Item, SupportsEmbed, _check_k, _check_metric, _reject_repeats
from .._index import _as_ids as _any_ids
from .._matches import BatchMatches, Matches
from .._vectors import _shown, as_matrix, as_queries, clean_metadata, embed_query, metadata_per_id, normalize_rows
from ._copy import copy_chunks, parse_vector
from ._ddl import MAX_INDEXED_DIM, AnnKind, Storage, index_name, index_statement
from ._source import ConnectionSource
from ._sql import Unrepresentable, metadata_json, where_to_sql

try:
    import psycopg
    from psycopg import sql
    from psycopg.rows import tuple_row
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "finetune_embed.index.pgvector needs psycopg 3: pip install 'finetune-embed[pgvector]'",
        package="psycopg",
        extra="pgvector",
    ) from exc

from ._schema import (
    Metric,
    check_dim,
    create_table,
    ensure_extension,
    pgvector_version,
    read_table,
    set_comment,
    table_identifier,
)

if TYPE_CHECKING:
    import pandas as pd
    from psycopg_pool import ConnectionPool

__all__ = ["Metric", "PgVectorIndex"]

_log = get_logger("index.pgvector")

_MAX_DIM = 16000  # pgvector's limit for the vector type
_DEFAULT_EF_SEARCH = 40  # pgvector's default hnsw.ef_search
_MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
_OPS = {"cosine": "<=>", "dot": "<#>"}
_ITERATIVE = ("off", "relaxed_order", "strict_order")
_HALF_MAX = 65504.0  # the largest finite float16
_NEEDS = {"halfvec": (0, 7, 0), "iterative_scan": (0, 8, 0)}

Cursor = psycopg.Cursor[tuple[Any, ...]]


def _as_ids(ids: str | Iterable[str], what: str = "ids") -> list[str]:
    """The in-process index's id checks, and no NUL characters (PostgreSQL text cannot store them)."""
    return _any_ids(ids, what, allow_nul=False)


class PgVectorIndex:
    """The :class:`~finetune_embed.index.EmbeddingIndex` API on a PostgreSQL table with pgvector.

    Args:
        conninfo: a libpq connection string or URL (the index opens an autocommit connection and closes it in
            :meth:`close`), or an open ``psycopg.Connection``, used as it is and left open: each operation
            commits at once when that connection is idle, and joins its transaction when one is open. Or a
            ``psycopg_pool.ConnectionPool``: each operation borrows a connection, so threads sharing one index
            run their queries in parallel (the pool stays yours to close).
        table: the table, ``"name"`` or ``"schema.name"``.
        dim: the vector dimension. Creates the table up front; otherwise the first ``add`` / ``upsert`` sets
            it, or an existing table (a different ``dim`` raises :class:`~finetune_embed.DimensionMismatchError`).
        metric: ``"cosine"`` (vectors normalised when added; score ``1 - (a <=> b)``) or ``"dot"`` (score
            ``-(a <#> b)``, the inner product). Default: the table's, else ``"cosine"``.
        model: the embedding model the vectors come from (recorded in the table's comment; checked by
            :meth:`search_text`). Default: the table's.
        create: create the ``vector`` extension, the table and (with ``hnsw=True``) the HNSW index when
            missing; with ``False`` a missing table raises :class:`~finetune_embed.ConfigError`.
        hnsw: search through the HNSW index (approximate). Default ``False``: exact search.
        ef_search: HNSW candidates per query (pgvector's ``hnsw.ef_search``, default 40, at most 1000); at
            least ``k`` is used so that ``k`` results can come back. Higher: more accurate, slower.
        storage: for a new table, ``"vector"`` (float32, the default) or ``"halfvec"`` (float16: half the
            space, and indexable up to 4,000 dimensions, so text-embedding-3-large's 3,072 work; scores then
            differ from float32 by about 1e-3). An existing table keeps its own. Needs pgvector 0.7.
        iterative_scan: for filtered approximate searches, pgvector 0.8's iterative index scans
            (``"relaxed_order"`` or ``"strict_order"``): the index keeps scanning until ``k`` rows pass the
            ``where`` filter, instead of filtering only its first ``ef_search`` / ``probes`` candidates.
            Default ``None``: the server's setting (off).
        probes: IVFFlat lists searched per query (pgvector's ``ivfflat.probes``, default 1).
        replica: a read replica of the same database (a connection string or connection; e.g. a streaming
            standby, see :func:`start_replica`): searches run there, everything else (writes, ``get``, ``len``)
            on ``conninfo``. A search sees the primary's writes once the replica has replayed them (the
            replication lag).

    Database errors (connection refused, permissions, ...) are psycopg's exceptions.

    Example:
        >>> index = PgVectorIndex("postgresql://app@db.internal/app", "docs", dim=1536)  # doctest: +SKIP
        >>> index.add(["a", "b"], vectors, metadata=[{"lang": "en"}, {"lang": "fr"}])  # doctest: +SKIP
        >>> index.search(query, k=5, where={"lang": "en"}).ids  # doctest: +SKIP
    """

    def __init__(
        self,
        conninfo: str | psycopg.Connection[Any] | ConnectionPool[Any],
        table: str = "embeddings",
        *,
        dim: int | None = None,
        metric: Metric | None = None,
        model: str | None = None,
        create: bool = True,
        hnsw: bool = False,
        ef_search: int | None = None,
        storage: Storage | None = None,
        iterative_scan: str | None = None,
        probes: int | None = None,
        replica: str | psycopg.Connection[Any] | ConnectionPool[Any] | None = None,
    ) -> None:
        if metric is not None:
            _check_metric(metric)
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= _MAX_DIM):
            raise ConfigError(f"dim must be an integer from 1 to {_MAX_DIM} (pgvector's limit), got {dim!r}.")
        self._name = table
        self._table = table_identifier(table)
        self._create = create
        self.ef_search = ef_search
        self.probes = probes
        if storage is not None and storage not in MAX_INDEXED_DIM:
            raise ConfigError(f"storage must be 'vector' or 'halfvec', got {storage!r}.")
        if iterative_scan is not None and iterative_scan not in _ITERATIVE:
            raise ConfigError(f"iterative_scan must be one of {', '.join(_ITERATIVE)} or None, got {iterative_scan!r}.")
        self._storage: Storage = storage or "vector"
        self._iterative = iterative_scan
        self._ann: AnnKind | None = None
        self._src = ConnectionSource(conninfo, "conninfo")
        self._read = self._src
        try:
            if replica is not None:
                self._read = ConnectionSource(replica, "replica")
            self._open(dim, metric, model, storage)
            if hnsw:
                if self._dim is not None and not self.has_hnsw_index:
                    if not create:
                        raise ConfigError(
                            f"hnsw=True but table {table!r} has no HNSW index; call create_hnsw_index() or pass "
                            "create=True."
                        )
                    self.create_hnsw_index()
                self._ann = "hnsw"
        except BaseException:
            self.close()
            raise

    @contextlib.contextmanager
    def _tx(self, *, read: bool = False) -> Iterator[Cursor]:
        """A cursor inside a transaction block: committed at the end when the connection was idle, a savepoint
        inside the caller's open transaction otherwise (so no operation leaves a transaction open). ``read``:
        on the replica when there is one."""
        with (self._read if read else self._src).borrow() as conn, conn.transaction(), conn.cursor(
            row_factory=tuple_row
        ) as cur:
            yield cur

    def _needs(self, feature: str) -> None:
        if self._pgvector < _NEEDS[feature]:
            have = ".".join(map(str, self._pgvector))
            want = ".".join(map(str, _NEEDS[feature]))
            raise ConfigError(
                f"{feature} needs pgvector {want} or later and this server has {have}; upgrade the extension "
                "(ALTER EXTENSION vector UPDATE) or use a server with a newer pgvector."
            )

    def _open(self, dim: int | None, metric: Metric | None, model: str | None, storage: Storage | None) -> None:
        with self._tx() as cur:
            ensure_extension(cur, create=self._create)
            self._pgvector = pgvector_version(cur)
            if self._iterative not in (None, "off"):
                self._needs("iterative_scan")
            info = read_table(cur, self._table, self._name)
            if info is None:
                if not self._create:
                    raise ConfigError(f"Table {self._name!r} does not exist; pass create=True to create it.")
                self._dim, self._metric, self._model = dim, metric or "cosine", model
                if self._storage == "halfvec":
                    self._needs("halfvec")
                if dim is not None:
                    create_table(cur, self._table, dim, self._metric, model, self._storage)
                return
            if storage is not None and storage != info.storage:
                raise ConfigError(
                    f"Table {self._name!r} stores {info.storage}, not {storage}; open it without storage= (or "
                    f"storage={info.storage!r})."
                )
            self._storage = info.storage
            check_dim(self._name, info.dim, dim)
            if info.metric is not None and metric is not None and info.metric != metric:
                raise ConfigError(
                    f"Table {self._name!r} was created with metric={info.metric!r}; open it with that metric "
                    f"(got {metric!r})."
                )
            if info.model is not None and model is not None and info.model != model:
                raise ConfigError(
                    f"Table {self._name!r} holds {info.model!r} embeddings, not {model!r}; vectors from "
                    "different models cannot be compared."
                )
            self._dim = info.dim
            self._metric = metric or info.metric or "cosine"
            self._model = model or info.model
            if (self._metric, self._model) != (info.metric, info.model):
                set_comment(cur, self._table, self._metric, self._model, self._storage)
            self._ann = None

    # --- properties ------------------------------------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        """The vector dimension (``None`` until known)."""
        return self._dim

    @property
    def metric(self) -> Metric:
        """``"cosine"`` or ``"dot"``."""
        return self._metric

    @property
    def model(self) -> str | None:
        """The embedding model recorded for the table, if any."""
        return self._model

    @property
    def table(self) -> str:
        """The table name, as given."""
        return self._name

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The psycopg connection in use (an index on a pool has none of its own: :class:`ConfigError`)."""
        if self._src.conn is None:
            raise ConfigError("this index borrows a connection from its pool for each operation; use the pool.")
        return self._src.conn

    @property
    def ef_search(self) -> int | None:
        """HNSW candidates per query (``None``: pgvector's default, 40)."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_EF_SEARCH
        ):
            raise ConfigError(f"ef_search must be an integer from 1 to {_MAX_EF_SEARCH}, got {value!r}.")
        self._ef_search = value

    @property
    def probes(self) -> int | None:
        """IVFFlat lists searched per query (``None``: pgvector's default, 1)."""
        return self._probes

    @probes.setter
    def probes(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32768):
            raise ConfigError(f"probes must be an integer from 1 to 32768, got {value!r}.")
        self._probes = value

    @property
    def storage(self) -> Storage:
        """``"vector"`` (float32) or ``"halfvec"`` (float16)."""
        return self._storage

    @property
    def pgvector_version(self) -> tuple[int, ...]:
        """The server's pgvector extension version, e.g. ``(0, 8, 0)``."""
        return self._pgvector

    @property
    def hnsw(self) -> bool:
        """Whether searches go through the HNSW index (approximate); settable."""
        return self._ann == "hnsw"

    @hnsw.setter
    def hnsw(self, value: bool) -> None:
        if value and not self.has_hnsw_index:
            raise ConfigError("This table has no HNSW index yet: call create_hnsw_index() first.")
        self._ann = "hnsw" if value else None if self._ann == "hnsw" else self._ann

    @property
    def ivfflat(self) -> bool:
        """Whether searches go through the IVFFlat index (approximate); settable."""
        return self._ann == "ivfflat"

    @ivfflat.setter
    def ivfflat(self, value: bool) -> None:
        if value and not self._has_index("ivfflat"):
            raise ConfigError("This table has no IVFFlat index yet: call create_ivfflat_index() first.")
        self._ann = "ivfflat" if value else None if self._ann == "ivfflat" else self._ann

    def __repr__(self) -> str:
        mode = self._ann or "exact"
        model = f", model={self._model!r}" if self._model else ""
        half = ", storage='halfvec'" if self._storage == "halfvec" else ""
        return f"PgVectorIndex(table={self._name!r}, dim={self._dim}, metric={self._metric!r}{model}{half}, {mode})"

    def close(self) -> None:
        """Close the connection if the index opened it (a connection you passed in stays open)."""
        self._src.close()
        if self._read is not self._src:
            self._read.close()

    def __enter__(self) -> PgVectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        if self._dim is None:
            return 0
        with self._tx() as cur:
            row = cur.execute(sql.SQL("SELECT count(*) FROM {}").format(self._table)).fetchone()
        return int(row[0]) if row else 0

    def count(self, *, estimate: bool = False) -> int:
        """How many items: exactly (``count(*)``, a full scan on large tables), or with ``estimate=True``
        PostgreSQL's planner estimate (``pg_class.reltuples``, kept by ANALYZE and autovacuum: free, but it
        trails recent writes). A table never analyzed is counted exactly."""
        if self._dim is None:
            return 0
        if estimate:
            with self._tx() as cur:
                row = cur.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                    [self._table.as_string(cur.connection)],
                ).fetchone()
            if row is not None and row[0] is not None and int(row[0]) >= 0:
                return int(row[0])
        return len(self)

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, str) or self._dim is None or "\x00" in item_id:
            return False
        with self._tx() as cur:
            row = cur.execute(
                sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE id = %s)").format(self._table), [item_id]
            ).fetchone()
        return bool(row and row[0])

    def __iter__(self) -> Iterator[str]:
        return self.iter_ids()

    @property
    def ids(self) -> list[str]:
        """All ids in insertion order (:meth:`iter_ids` streams them for tables too big for one list)."""
        return list(self.iter_ids())

    def iter_ids(self, batch_size: int = 10_000) -> Iterator[str]:
        """The ids in insertion order, fetched ``batch_size`` at a time."""
        for chunk in self._pages("id", batch_size):
            yield from (row[0] for row in chunk)

    def iter_items(
        self, batch_size: int = 5_000
    ) -> Iterator[tuple[list[str], npt.NDArray[np.float32], list[dict[str, Any]]]]:
        """Everything in insertion order, ``batch_size`` rows at a time: ``(ids, vectors, metadata)``."""
        for chunk in self._pages(f"id, {self._send}, metadata", batch_size):
            yield [r[0] for r in chunk], np.stack([parse_vector(r[1]) for r in chunk]), [r[2] for r in chunk]

    def _pages(self, columns: str, batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
        """Rows in ``seq`` order, one page per query (keyset pagination: no long transaction or cursor)."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if self._dim is None:
            return
        query = sql.SQL("SELECT seq, " + columns + " FROM {} WHERE seq > %s ORDER BY seq LIMIT %s").format(
            self._table
        )
        last = -1
        while True:
            with self._tx() as cur:
                rows = cur.execute(query, [last, batch_size], binary=True).fetchall()
            if rows:
                yield [row[1:] for row in rows]
            if len(rows) < batch_size:
                return
            last = rows[-1][0]

    @property
    def vectors(self) -> npt.NDArray[np.float32]:
        """All vectors, a float32 ``(len(index), dim)`` array in the order of :attr:`ids` (reads the table)."""
        parts = [v for _, v, _ in self.iter_items(50_000)]
        return np.concatenate(parts) if parts else np.zeros((0, self._dim or 0), dtype=np.float32)

    @property
    def metadata(self) -> list[dict[str, Any]]:
        """The metadata of every item, in the order of :attr:`ids` (reads the table)."""
        return [m for chunk in self._pages("metadata", 50_000) for (m,) in chunk]

    @property
    def _send(self) -> str:
        """The column in pgvector's binary vector form (a halfvec column is widened to float32 first)."""
        return "vector_send(embedding::vector)" if self._storage == "halfvec" else "vector_send(embedding)"

    def _fetch(self, ids: Sequence[str]) -> dict[str, Item]:
        if self._dim is None or not ids:
            return {}
        with self._tx() as cur:
            rows = cur.execute(
                sql.SQL("SELECT id, " + self._send + ", metadata FROM {} WHERE id = ANY(%s)").format(
                    self._table
                ),
                [list(ids)],
                binary=True,
            ).fetchall()
        return {id_: Item(parse_vector(vec), meta) for id_, vec, meta in rows}

    def get(self, item_id: str) -> Item:
        """The stored float32 vector (normalised, for cosine) and the metadata of ``item_id``.

        Raises:
            UnknownIdError: ``item_id`` is not in the index.
        """
        found = self._fetch(_as_ids(item_id, "item_id"))
        if item_id not in found:
            raise UnknownIdError(f"id {item_id!r} is not in table {self._name!r}.", ids=[item_id])
        return found[item_id]

    # --- writing ---------------------------------------------------------------------------------------------

    def _prepare(
        self, ids: list[str], vectors: npt.ArrayLike, metadata: Any, *, normalized: bool = False
    ) -> tuple[npt.NDArray[np.float32], list[str]]:
        # the in-process index's checks and normalisation: the same errors and the same float32 values
        normalize = self._metric == "cosine" and not normalized
        rows = as_matrix(vectors, self._dim, ids, copy=normalize)  # normalised in place: never the caller's array
        if rows.shape[1] > _MAX_DIM:
            raise ConfigError(f"pgvector stores at most {_MAX_DIM} dimensions, got {rows.shape[1]}.")
        normalize_rows(rows, ids, normalize=normalize)
        given = metadata_per_id(metadata, ids)
        if given is None:
            return rows, ["{}"] * len(ids)
        texts = []
        for meta, item_id in zip(given, ids, strict=True):
            try:
                texts.append(metadata_json(clean_metadata(meta, item_id), f"metadata of id {item_id!r}"))
            except Unrepresentable as exc:
                raise ConfigError(f"{exc.path}: {exc.reason}.") from None
        return rows, texts

    def _ensure_table(self, cur: Cursor, dim: int) -> None:
        if self._dim is None:
            create_table(cur, self._table, dim, self._metric, self._model, self._storage)
            self._dim = dim
            if self._ann == "hnsw":
                self._build_index(cur, "hnsw", m=16, ef_construction=64)

    def _copy(self, cur: Cursor, target: sql.Composable, ids: list[str], rows: npt.NDArray[np.float32],
              metas: list[str], *, with_order: bool = False) -> None:
        if self._storage == "halfvec" and rows.size:
            over = np.flatnonzero(np.abs(rows).max(axis=1) > _HALF_MAX)
            if over.size:
                bad = [ids[int(i)] for i in over]
                raise InvalidVectorError(
                    f"{len(bad)} vectors have values beyond float16's range (±65504), which a halfvec column "
                    f"cannot store: {_shown(bad)}; scale them down or use storage='vector'.",
                    ids=bad,
                )
        columns = "(id, embedding, metadata, ord)" if with_order else "(id, embedding, metadata)"
        statement = sql.SQL("COPY {} " + columns + " FROM STDIN (FORMAT BINARY)").format(target)
        with cur.copy(statement) as copy:
            for chunk in copy_chunks(ids, rows, metas, extra_int=range(len(ids)) if with_order else None,
                                     half=self._storage == "halfvec"):
                copy.write(chunk)

    def add(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items with one binary ``COPY``, all or none.

        Args:
            ids: one id or a sequence of unique ids not yet in the table.
            vectors: one vector or an ``(n, dim)`` array-like, one row per id.
            metadata: one JSON-compatible mapping per id (or one mapping for a single id), stored as JSONB.

        Raises:
            DuplicateIdError: an id already in the table or repeated in ``ids`` (use :meth:`upsert`).
            DimensionMismatchError: vectors of the wrong dimension.
            InvalidVectorError: zero, NaN or infinite vectors (``.ids`` names them).
            ConfigError: metadata that JSONB cannot hold (NaN, NUL characters, non-string keys, ...).
        """
        self._add(_as_ids(ids), vectors, metadata)

    def _add(self, id_list: list[str], vectors: npt.ArrayLike, metadata: Any, *, normalized: bool = False) -> None:
        _reject_repeats(id_list)
        rows, metas = self._prepare(id_list, vectors, metadata, normalized=normalized)
        if not id_list:
            return
        try:
            with self._tx() as cur:
                self._ensure_table(cur, rows.shape[1])
                self._copy(cur, self._table, id_list, rows, metas)
        except psycopg.errors.UniqueViolation:
            existing = [i for i in id_list if i in self._fetch(id_list)]
            raise DuplicateIdError(
                f"{len(existing)} ids are already in table {self._name!r}: {_shown(existing)}; use upsert() to "
                "replace them.",
                ids=existing,
            ) from None
        except BaseException:
            self._forget_uncommitted_table()
            raise

    def _forget_uncommitted_table(self) -> None:
        """After a rollback, a table created in the same transaction is gone again."""
        if self._dim is not None:
            with contextlib.suppress(psycopg.Error), self._tx() as cur:
                if read_table(cur, self._table, self._name) is None:
                    self._dim = None

    def upsert(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items and replace existing ones (vector and metadata); an id repeated in ``ids`` takes its
        last occurrence. Replaced items keep their insertion position."""
        id_list = _as_ids(ids)
        rows, metas = self._prepare(id_list, vectors, metadata)
        if not id_list:
            return
        last = {item_id: j for j, item_id in enumerate(id_list)}
        order = sorted(last.values())
        if len(order) < len(id_list):
            id_list, rows, metas = [id_list[j] for j in order], rows[order], [metas[j] for j in order]
        staging = sql.Identifier("_finetune_embed_upsert")
        try:
            with self._tx() as cur:
                self._ensure_table(cur, rows.shape[1])
                cur.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE {s} (id text, embedding {v}({d}), metadata jsonb, ord int) "
                        "ON COMMIT DROP"
                    ).format(s=staging, v=sql.SQL(self._storage), d=sql.Literal(rows.shape[1]))
                )
                self._copy(cur, staging, id_list, rows, metas, with_order=True)
                cur.execute(
                    sql.SQL(
                        "INSERT INTO {t} (id, embedding, metadata) SELECT id, embedding, metadata FROM {s} "
                        "ORDER BY ord ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, "
                        "metadata = EXCLUDED.metadata"
                    ).format(t=self._table, s=staging)
                )
                cur.execute(sql.SQL("DROP TABLE {}").format(staging))
        except BaseException:
            self._forget_uncommitted_table()
            raise

    def delete(self, ids: str | Iterable[str]) -> int:
        """Remove items; ids not in the table are ignored. Returns how many were removed."""
        wanted = _as_ids(ids)
        if not wanted or self._dim is None:
            return 0
        with self._tx() as cur:
            cur.execute(sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(self._table), [wanted])
            return int(cur.rowcount)

    # --- indexes ---------------------------------------------------------------------------------------------

    def _has_index(self, kind: str) -> bool:
        if self._dim is None:
            return False
        with self._tx() as cur:
            row = cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = to_regclass(%s) AND am.amname = %s "
                "AND i.indisvalid)",
                [self._table.as_string(cur.connection), kind],
            ).fetchone()
        return bool(row and row[0])

    @property
    def has_hnsw_index(self) -> bool:
        """Whether the table has a (valid) HNSW index."""
        return self._has_index("hnsw")

    def create_hnsw_index(self, m: int = 16, ef_construction: int = 64, *, concurrently: bool = False) -> None:
        """Build an HNSW index for the metric (if there is none) and search through it from now on.

        Build it after a bulk load: adding to an indexed table is much slower. The build is fast while the
        graph fits in the server's ``maintenance_work_mem`` (pgvector logs a notice when it stops fitting).
        ``concurrently=True`` builds it with ``CREATE INDEX CONCURRENTLY``: writes to the table go on during
        the build (slower, and it cannot run inside your open transaction).

        Raises:
            ConfigError: more dimensions than pgvector indexes (2,000 for ``vector``, 4,000 for ``halfvec``:
                search exactly, store halfvec, or embed with fewer ``dimensions``), no table yet (pass ``dim``
                or add vectors first), bad ``m`` / ``ef_construction``, or ``concurrently`` inside a
                transaction.
        """
        self._create_index("hnsw", concurrently, m=m, ef_construction=ef_construction, lists=100)

    def create_ivfflat_index(self, lists: int | None = None, *, concurrently: bool = False) -> None:
        """Build an IVFFlat index for the metric (if there is none) and search through it from now on.

        IVFFlat builds much faster than HNSW and uses less memory; its recall depends on :attr:`probes`
        (lists searched per query). Build it after loading the data: the lists are k-means centres of the rows
        present. ``lists`` defaults to pgvector's advice: rows / 1000 up to a million rows, sqrt(rows) above.
        ``concurrently`` as in :meth:`create_hnsw_index`.
        """
        if lists is None:
            # counted exactly: right after a bulk load (when this is built) the planner's estimate can trail far
            # behind, and the build reads the whole table anyway
            rows = len(self)
            lists = max(1, rows // 1000 if rows <= 1_000_000 else int(rows**0.5))
        self._create_index("ivfflat", concurrently, m=16, ef_construction=64, lists=lists)

    def _create_index(self, kind: AnnKind, concurrently: bool, *, m: int, ef_construction: int, lists: int) -> None:
        if self._dim is None:
            raise ConfigError(
                f"The table does not exist yet: pass dim= or add vectors before create_{kind}_index()."
            )
        if not self._has_index(kind):
            if concurrently:
                statement = self._index_statement(kind, True, m, ef_construction, lists)
                with self._src.pin() as conn:
                    idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                    if not idle or not (conn.autocommit or self._src.pool is not None):
                        raise ConfigError(
                            "CREATE INDEX CONCURRENTLY cannot run inside a transaction: call it on an autocommit "
                            "connection with no transaction open (or pass concurrently=False)."
                        )
                    was = conn.autocommit
                    conn.autocommit = True  # a pooled connection: only for this statement
                    try:
                        conn.execute(statement)
                    finally:
                        conn.autocommit = was
            else:
                with self._tx() as cur:
                    self._build_index(cur, kind, m=m, ef_construction=ef_construction, lists=lists)
        self._ann = kind

    def _index_statement(
        self, kind: AnnKind, concurrently: bool, m: int, ef_construction: int, lists: int
    ) -> sql.Composed:
        assert self._dim is not None
        return index_statement(self._table, self._name, kind, self._metric, self._storage, self._dim,
                               m=m, ef_construction=ef_construction, lists=lists, concurrently=concurrently)

    def _build_index(self, cur: Cursor, kind: AnnKind, *, m: int = 16, ef_construction: int = 64,
                     lists: int = 100) -> None:
        cur.execute(self._index_statement(kind, False, m, ef_construction, lists))
        _log.info("built %s index on %s", kind, self._name)

    def drop_hnsw_index(self) -> None:
        """Drop the HNSW index that :meth:`create_hnsw_index` made; searches are exact again."""
        self._drop_index("hnsw")

    def drop_ivfflat_index(self) -> None:
        """Drop the IVFFlat index that :meth:`create_ivfflat_index` made; searches are exact again."""
        self._drop_index("ivfflat")

    def _drop_index(self, kind: AnnKind) -> None:
        if self._dim is not None:
            with self._tx() as cur:
                cur.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(index_name(self._name, kind, qualified=True)))
        if self._ann == kind:
            self._ann = None

    def create_metadata_index(self) -> None:
        """A GIN index (``jsonb_path_ops``) on ``metadata``; it serves equality filters on large tables."""
        if self._dim is None:
            raise ConfigError("The table does not exist yet: pass dim= or add vectors first.")
        with self._tx() as cur:
            cur.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {n} ON {t} USING gin (metadata jsonb_path_ops)").format(
                    n=index_name(self._name, "metadata_gin"), t=self._table
                )
            )

    # --- search ----------------------------------------------------------------------------------------------

    @overload
    def search(
        self,
        queries: np.ndarray[tuple[int, int], np.dtype[Any]] | Sequence[Sequence[float]],
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
    ) -> BatchMatches: ...

    @overload
    def search(
        self,
        queries: np.ndarray[tuple[int], np.dtype[Any]] | Sequence[float],
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
    ) -> Matches: ...

    @overload
    def search(
        self,
        queries: npt.ArrayLike,
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
    ) -> Matches | BatchMatches: ...

    def search(
        self,
        queries: npt.ArrayLike,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
    ) -> Matches | BatchMatches:
        """The ``k`` nearest items of each query, in one SQL statement for all queries.

        Args:
            queries: one vector (gives :class:`Matches`) or an ``(n, dim)`` matrix (gives
                :class:`BatchMatches`, one :class:`Matches` per row).
            k: how many hits per query (fewer when fewer items pass the filters).
            where: a metadata filter mapping, ``{"field": value}``, ``{"field": {"$gte": 3}}``, ``$in``, ...
                (the rules of :func:`~finetune_embed.index.parse_where`), run inside PostgreSQL. A callable
                cannot run there and raises :class:`~finetune_embed.ConfigError`.
            exclude: ids never returned (ids not in the table are ignored).

        Returns:
            Hits best first: cosine similarity (or dot product), higher is better; equal scores keep insertion
            order. Exact unless :attr:`hnsw` or :attr:`ivfflat` is on; then approximate, and a selective
            ``where`` may leave fewer than ``k`` hits (pgvector filters the index's ``ef_search`` / ``probes``
            candidates) unless ``iterative_scan`` is set.
        """
        k = _check_k(k)
        condition = where_to_sql(where)
        rows, single = as_queries(queries, self._dim, normalize=self._metric == "cosine")
        excluded = _as_ids(list(exclude), "exclude") if exclude else []
        results = self._search_rows(rows, k, condition, excluded)
        return results[0] if single else BatchMatches(results)

    def search_by_id(
        self,
        item_id: str,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
        exclude_self: bool = True,
    ) -> Matches:
        """The ``k`` nearest items of the stored item ``item_id`` (itself left out unless ``exclude_self`` is
        false). Raises :class:`~finetune_embed.UnknownIdError` for an unknown id."""
        k = _check_k(k)
        vector = self.get(item_id).vector
        skip = list(exclude or ()) + ([item_id] if exclude_self else [])
        rows = vector.reshape(1, -1)
        return self._search_rows(rows, k, where_to_sql(where), _as_ids(skip, "exclude"))[0]

    def search_text(
        self,
        text: str,
        embedder: SupportsEmbed,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
    ) -> Matches:
        """Embed ``text`` with ``embedder`` and search. The embedder's ``model`` must match the table's."""
        vector = embed_query(embedder, text, self._model, "the table")
        result = self.search(vector, k, where=where, exclude=exclude)
        assert isinstance(result, Matches)
        return result

    def _search_rows(
        self, queries: npt.NDArray[np.float32], k: int, condition: sql.Composable | None, excluded: list[str]
    ) -> list[Matches]:
        n, dim = queries.shape
        if self._dim is None or n == 0:
            return [Matches() for _ in range(n)]
        op = _OPS[self._metric]
        filters: list[sql.Composable] = [] if condition is None else [condition]
        if excluded:
            filters.append(sql.SQL("NOT (t.id = ANY(%(exclude)s::text[]))"))
        where_sql = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(filters) if filters else sql.SQL("")
        distance = sql.SQL("t.embedding {} q.v").format(sql.SQL(op))
        if self._ann:  # the index serves ORDER BY <distance> LIMIT k; its hits are re-sorted for the tie-break
            inner = sql.SQL(
                "SELECT * FROM (SELECT t.id, t.metadata, t.seq, {d} AS dist FROM {t} AS t{w} ORDER BY {d} "
                "LIMIT %(k)s) AS h ORDER BY dist, seq"
            ).format(d=distance, t=self._table, w=where_sql)
        else:
            inner = sql.SQL(
                "SELECT t.id, t.metadata, t.seq, {d} AS dist FROM {t} AS t{w} ORDER BY dist, t.seq LIMIT %(k)s"
            ).format(d=distance, t=self._table, w=where_sql)
        # all queries travel as one float8[] and are cut into vectors once (MATERIALIZED), not per row
        query = sql.SQL(
            "WITH q AS MATERIALIZED (SELECT i, ((%(flat)b::float8[])[i * {dim} + 1:(i + 1) * {dim}])::{s} AS v "
            "FROM generate_series(0, %(n)s - 1) AS i) "
            "SELECT q.i, r.id, r.dist, r.metadata FROM q CROSS JOIN LATERAL ({inner}) AS r ORDER BY q.i, r.dist, r.seq"
        ).format(dim=sql.Literal(dim), s=sql.SQL(self._storage), inner=inner)
        # the query vectors travel in binary (a float8[] in PostgreSQL's binary format: no text to format or parse)
        params: dict[str, Any] = {"flat": queries.astype(np.float64).ravel().tolist(), "n": n, "k": k,
                                  "exclude": excluded}
        with self._tx(read=True) as cur:
            if self._ann == "hnsw":
                ef = min(max(self._ef_search or _DEFAULT_EF_SEARCH, k), _MAX_EF_SEARCH)
                cur.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(ef)))
            elif self._ann == "ivfflat" and self._probes is not None:
                cur.execute(sql.SQL("SET LOCAL ivfflat.probes = {}").format(sql.Literal(self._probes)))
            if self._ann and self._iterative is not None:
                cur.execute(sql.SQL("SET LOCAL {}.iterative_scan = {}").format(
                    sql.SQL(self._ann), sql.Literal(self._iterative)))
            if not self._ann:
                cur.execute("SET LOCAL enable_indexscan = off")  # exact: never an (approximate) index scan
            found = cur.execute(query, params).fetchall()
        per: list[tuple[list[str], list[float], list[dict[str, Any]]]] = [([], [], []) for _ in range(n)]
        for i, item_id, dist, meta in found:
            ids_i, dists_i, metas_i = per[i]
            ids_i.append(item_id)
            dists_i.append(dist)
            metas_i.append(meta)
        out = []
        for ids_i, dists_i, metas_i in per:
            d = np.asarray(dists_i, dtype=np.float64)
            scores = (1.0 - d) if self._metric == "cosine" else -d
            out.append(Matches(ids=ids_i, scores=scores.astype(np.float32), metadata=metas_i))
        return out

    # --- moving data -----------------------------------------------------------------------------------------

    @classmethod
    def from_index(
        cls,
        index: EmbeddingIndex,
        conninfo: str | psycopg.Connection[Any] | ConnectionPool[Any],
        table: str = "embeddings",
        *,
        hnsw: bool = False,
        batch_size: int = 50_000,
        progress: bool | None = None,
    ) -> PgVectorIndex:
        """Copy an in-process :class:`~finetune_embed.index.EmbeddingIndex` into a new (or empty) table.

        Ids, float32 vectors (bit for bit), metadata, order, metric and model carry over, in one transaction:
        all or nothing. With ``hnsw=True`` the HNSW index is built after the load (the fast way round).

        Raises:
            DuplicateIdError: the table already holds some of the ids.
            ConfigError: the table has another metric or model; metadata JSONB cannot hold.
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        target = cls(conninfo, table, dim=index.dim, metric=index.metric, model=index.model)
        try:
            ids = index.ids
            vectors = index.vectors
            metadata = index.metadata
            with target._src.pin() as conn, conn.transaction(), progress_bar(
                total=len(ids), desc="copy to PostgreSQL", unit="vec", progress=progress
            ) as bar:
                for start in range(0, len(ids), batch_size):
                    stop = start + batch_size
                    target._add(ids[start:stop], vectors[start:stop], metadata[start:stop], normalized=True)
                    bar.update(len(ids[start:stop]))
            if hnsw:
                target.create_hnsw_index()
        except BaseException:
            target.close()
            raise
        return target

    def to_index(self, *, dtype: Any = np.float32, batch_size: int = 50_000) -> EmbeddingIndex:
        """An in-process :class:`~finetune_embed.index.EmbeddingIndex` with everything in the table, in order
        (for cosine the stored unit vectors are normalised again, which may change a last bit)."""
        local = EmbeddingIndex(self._dim, metric=self._metric, dtype=dtype, model=self._model)
        for ids, vectors, metadata in self.iter_items(batch_size):
            local.add(ids, vectors, metadata)
        return local

    def to_pandas(self, *, vector_column: str = "embedding") -> pd.DataFrame:
        """A DataFrame with an ``id`` column, a ``vector_column`` of float32 arrays and one column per top-level
        metadata key (reads the whole table)."""
        from .._io import items_frame

        ids: list[str] = []
        vectors: list[npt.NDArray[np.float32]] = []
        metadata: list[dict[str, Any]] = []
        for chunk_ids, chunk_vectors, chunk_meta in self.iter_items(50_000):
            ids += chunk_ids
            vectors += list(chunk_vectors)
            metadata += chunk_meta
        return items_frame(ids, vectors, metadata, vector_column)
