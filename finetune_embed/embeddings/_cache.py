"""A persistent embedding cache: SQLite, keyed on (model, dimensions, sha256 of the text), float32 blobs.

Where it lives by default: ``$FINETUNE_EMBED_CACHE_DIR/embeddings.sqlite`` if that variable is set, else
``$XDG_CACHE_HOME/finetune_embed/embeddings.sqlite``, else ``~/.cache/finetune_embed/embeddings.sqlite``
(see :func:`default_cache_path`).

The database runs in WAL mode and every :meth:`EmbeddingCache.put` is its own committed transaction, so
vectors written before a crash or a ``kill -9`` are there on the next run. One connection serves all threads,
behind a lock; several processes may share the file (SQLite serialises their writes), on a local file system
(not NFS or SMB, where SQLite's locking is unreliable). Processes sharing a cache do not coordinate requests:
a text that none of them had cached yet may be fetched, and billed, once by each (see docs/errors.md, "What is
guaranteed").

**Integrity.** The cache never returns a corrupted vector. Every row carries a checksum (the first 8 bytes of
a SHA-256 over the model, ``dimensions``, key, size and vector bytes). A row that fails it, whose blob is not
``4 * dim`` bytes long or not the size the caller expects, or whose vector is non-finite or all zero, is
deleted and reported as missing (so the embedder fetches it again), with one warning on the
``finetune_embed.embeddings`` logger naming the cache file. A database file that SQLite cannot read (damaged
pages, a file that is not a database) raises :class:`~finetune_embed.EmbeddingCacheError`, which says how to
recover: :meth:`EmbeddingCache.salvage` keeps every row that still reads back.

**Schema changes** are migrations, applied in place when a file is opened (the approach of simonw/llm's
embeddings database): an ordered list of named steps, each recorded in the ``migrations`` table once applied,
each in its own transaction. Files written by finetune_embed 0.1 (no checksums) are migrated: their rows get a
checksum the first time they are read and pass the other checks. A file that a *newer* finetune_embed has
migrated further is refused with :class:`~finetune_embed.EmbeddingCacheError` rather than misread.

Texts are not stored, only their SHA-256, so the cache holds no readable copy of the corpus. A vector costs
``4 * dimensions`` bytes plus SQLite's page overhead: about 8.8 kB on disk for 1536 dimensions (measured).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, EmbeddingCacheError, InvalidEmbeddingError
from .._logging import get_logger

__all__ = ["EmbeddingCache", "SalvageReport", "default_cache_path", "row_checksum", "text_key"]

logger = get_logger("embeddings")

_SELECT_CHUNK = 500  # keys per SELECT ... IN (...), under SQLite's parameter limit
_HEADER = struct.Struct("<qq")  # dimensions key, dim

# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF)
_CORRUPT = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_FULL = 13
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_ACCESS = {3, 8, 10, 14, 23}  # PERM, READONLY, IOERR, CANTOPEN, AUTH


def default_cache_path() -> Path:
    """The default cache file: ``$FINETUNE_EMBED_CACHE_DIR``, ``$XDG_CACHE_HOME/finetune_embed`` or
    ``~/.cache/finetune_embed``, then ``embeddings.sqlite``."""
    folder = os.environ.get("FINETUNE_EMBED_CACHE_DIR")
    if folder:
        return Path(folder).expanduser() / "embeddings.sqlite"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "finetune_embed" / "embeddings.sqlite"


def text_key(text: str) -> bytes:
    """The cache key of a text: the SHA-256 digest of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _dims_key(dimensions: int | None) -> int:
    return 0 if dimensions is None else int(dimensions)


def row_checksum(model: str, dims: int, key: bytes, dim: int, blob: bytes) -> bytes:
    """The checksum stored with each row: 8 bytes of SHA-256 over everything the row says."""
    h = hashlib.sha256(model.encode("utf-8", "surrogatepass"))
    h.update(b"\0")
    h.update(_HEADER.pack(dims, dim))
    h.update(key)
    h.update(blob)
    return h.digest()[:8]


# --- migrations ---------------------------------------------------------------------------------------------


def _m001_initial(conn: sqlite3.Connection) -> None:
    """The schema of finetune_embed 0.1."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS embeddings ("
        " model TEXT NOT NULL, dimensions INTEGER NOT NULL, key BLOB NOT NULL,"
        " dim INTEGER NOT NULL, vector BLOB NOT NULL, created REAL NOT NULL,"
        " PRIMARY KEY (model, dimensions, key)) WITHOUT ROWID"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS batch_jobs ("
        " batch_id TEXT PRIMARY KEY, model TEXT NOT NULL, dimensions INTEGER NOT NULL,"
        " tokens INTEGER NOT NULL, lines TEXT NOT NULL, created REAL NOT NULL)"
    )
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', '1')")


def _m002_row_checksums(conn: sqlite3.Connection) -> None:
    """A checksum per row. Rows of older files keep ``NULL`` until they are first read and pass the other
    checks (so opening a large 0.1 cache does not rewrite it)."""
    conn.execute("ALTER TABLE embeddings ADD COLUMN checksum BLOB")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', '2')")


def _m003_servers_apart(conn: sqlite3.Connection) -> None:
    """Rows are keyed by server as well as model from now on (``model`` is ``"<server>|<model>"`` except for
    OpenAI's own API; see ``_namespace``). Which server wrote an older row was never recorded: rows of models
    OpenAI serves stay OpenAI's; the others (a local server's model, an Azure deployment name) move to the
    ``unknown-server`` namespace, where they are kept but never served, so no server gets another's vectors."""
    from ..catalog import default_catalog
    from ._namespace import LEGACY_NAMESPACE

    catalog = default_catalog()
    for (model,) in conn.execute("SELECT DISTINCT model FROM embeddings").fetchall():
        if "|" in model or catalog.find_embedding_model(model) is not None:
            continue
        conn.execute(
            "UPDATE embeddings SET model = ?, checksum = NULL WHERE model = ?", (f"{LEGACY_NAMESPACE}|{model}", model)
        )
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', '3')")


#: every schema change, in order; a new one goes at the end, never in between
MIGRATIONS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    ("m001_initial", _m001_initial),
    ("m002_row_checksums", _m002_row_checksums),
    ("m003_servers_apart", _m003_servers_apart),
)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def migrate(conn: sqlite3.Connection, path: object) -> list[str]:
    """Apply the migrations ``conn``'s file lacks, each in its own transaction; returns their names."""
    known = [name for name, _ in MIGRATIONS]
    applied_now: list[str] = []
    conn.execute("BEGIN IMMEDIATE")  # one process migrates at a time; the others see the result
    try:
        tables = _tables(conn)
        if "migrations" not in tables:
            conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
            if "embeddings" in tables:  # a finetune_embed 0.1 file: its schema is m001
                conn.execute("INSERT INTO migrations VALUES ('m001_initial', ?)", (time.time(),))
        done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
        unknown = sorted(done - set(known))
        if unknown:
            raise EmbeddingCacheError(
                f"The embedding cache {path} was written by a newer finetune_embed (schema step {unknown[-1]} is "
                "unknown here). Upgrade finetune_embed, or pass cache=<another path> (or cache=False).",
                path=str(path),
            )
        for name, step in MIGRATIONS:
            if name in done:
                continue
            step(conn)
            conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
            applied_now.append(name)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return applied_now


# --- errors -------------------------------------------------------------------------------------------------


def _recovery(path: object) -> str:
    return (
        f"It only holds vectors that can be fetched again (and the Batch API journal). To recover, run "
        f"EmbeddingCache.salvage({str(path)!r}): it moves the file aside and keeps every row that still reads back "
        "correctly; or move the file (and its -wal / -shm files) away; or pass cache=<another path> or cache=False."
    )


def _text(raw: bytes) -> str:
    """Text columns: damaged UTF-8 reads back with replacement characters instead of raising."""
    return raw.decode("utf-8", "replace")


def cache_error(exc: sqlite3.Error | UnicodeError, path: object, doing: str) -> EmbeddingCacheError:
    """Our typed error for an SQLite failure on the cache file ``path`` while ``doing`` something."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    lowered = text.lower()
    if primary in _CORRUPT or isinstance(exc, UnicodeError) or "malformed" in lowered or "not a database" in lowered:
        message = f"The embedding cache {path} is damaged ({text}) while {doing}. " + _recovery(path)
    elif primary == _FULL or "disk is full" in lowered:
        message = f"The disk holding the embedding cache {path} is full ({text}). Free space or pass cache=<path>."
    elif primary in _BUSY or "locked" in lowered:
        message = (
            f"The embedding cache {path} stayed locked by another process for 30 s ({text}). Wait for the other "
            "process, or pass cache=<another path>."
        )
    elif primary in _ACCESS or "readonly" in lowered or "unable to open" in lowered or "disk i/o" in lowered:
        message = (
            f"Cannot use the embedding cache {path} ({text}) while {doing}: check that it and its folder are "
            "readable and writable, set FINETUNE_EMBED_CACHE_DIR, or pass cache=<another path> or cache=False."
        )
    else:
        message = f"The embedding cache {path} failed ({type(exc).__name__}: {text}) while {doing}. " + _recovery(path)
    return EmbeddingCacheError(message, path=str(path))


@dataclass(frozen=True)
class SalvageReport:
    """What :meth:`EmbeddingCache.salvage` kept: vectors and Batch API journal entries copied, rows dropped
    (damaged, or unreadable after SQLite gave up on a damaged page), and where the damaged file went."""

    path: str
    moved_to: str
    vectors: int
    journal: int
    dropped: int
    complete: bool


# --- the cache ----------------------------------------------------------------------------------------------


class EmbeddingCache:
    """Embeddings already paid for, on disk.

    **Parameters:**

    * ``path`` - the SQLite file (created with its folder); default :func:`default_cache_path`.
      ``":memory:"`` keeps the cache in memory for this object's life.

    Vectors are stored per ``(model, dimensions, sha256(text))``: changing the model or ``dimensions`` never
    returns a stale vector. ``dimensions=None`` (the model's default size) is its own key. Every read checks
    each row (see the module docstring); a damaged row is dropped and counts as missing.

    >>> import numpy as np
    >>> cache = EmbeddingCache(":memory:")
    >>> cache.put("text-embedding-3-small", None, [text_key("hi")], np.ones((1, 3), np.float32))
    >>> cache.get("text-embedding-3-small", None, "hi")
    array([1., 1., 1.], dtype=float32)
    >>> cache.get("text-embedding-3-small", 256, "hi") is None
    True
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path: Path | str = default_cache_path() if path is None else (
            path if path == ":memory:" else Path(path).expanduser()
        )
        if isinstance(self.path, Path):
            if self.path.is_dir():
                raise ConfigError(
                    f"The embedding cache path {self.path} is a folder; pass a file path such as "
                    f"{self.path / 'embeddings.sqlite'}."
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"Cannot create the embedding cache folder {self.path.parent}: {exc}. Pass cache=<path> "
                    "somewhere writable, set FINETUNE_EMBED_CACHE_DIR, or pass cache=False."
                ) from exc
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._conn.text_factory = _text
            self._setup()
        except (sqlite3.Error, UnicodeError) as exc:
            self._close_quietly()
            raise cache_error(exc, self.path, "opening it") from exc
        except BaseException:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _setup(self) -> None:
        conn = self._db
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        applied = migrate(conn, self.path)
        if applied and applied != [name for name, _ in MIGRATIONS]:
            logger.info("Embedding cache %s: migrated in place (%s)", self.path, ", ".join(applied))

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise EmbeddingCacheError(
                f"The embedding cache {self.path} is closed; open a new EmbeddingCache.", path=str(self.path)
            )
        return self._conn

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and turn any SQLite failure into :class:`EmbeddingCacheError`."""
        with self._lock:
            conn = self._db
            try:
                yield conn
            except (sqlite3.Error, UnicodeError) as exc:
                raise cache_error(exc, self.path, doing) from exc

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    # --- reads --------------------------------------------------------------------------------------------

    def _select(
        self, model: str, dims: int, chunk: list[bytes]
    ) -> list[tuple[Any, Any, Any, Any]]:
        marks = ",".join("?" * len(chunk))
        with self._guard("reading it") as conn:
            return conn.execute(
                f"SELECT key, dim, vector, checksum FROM embeddings WHERE model = ? AND dimensions = ? "
                f"AND key IN ({marks})",
                (model, dims, *chunk),
            ).fetchall()

    def vectors(
        self, model: str, dimensions: int | None, keys: Sequence[bytes], *, dim: int | None = None
    ) -> Iterator[tuple[bytes, npt.NDArray[np.float32]]]:
        """``(key, vector)`` for each key with a sound row, streamed in chunks (missing keys are skipped).

        A row is sound when its checksum matches, its blob holds exactly ``dim`` float32 values (``dim``: the
        size the caller expects, or the size stored with the row) and its vector is finite and not all zero.
        Every other row is deleted and left out, with one warning per call naming the cache. The vectors are
        read-only views over the stored bytes.
        """
        dims = _dims_key(dimensions)
        for start in range(0, len(keys), _SELECT_CHUNK):
            chunk = list(keys[start : start + _SELECT_CHUNK])
            wanted = set(chunk)
            bad: Counter[str] = Counter()
            bad_keys: list[bytes] = []
            backfill: list[tuple[bytes, bytes]] = []
            for key, row_dim, blob, checksum in self._select(model, dims, chunk):
                if not isinstance(key, bytes) or key not in wanted:
                    continue  # cannot be one of ours (SQLite returned a row it should not have)
                problem, vec = _check_row(model, dims, key, row_dim, blob, checksum, dim)
                if problem is None:
                    assert vec is not None
                    if checksum is None:  # a row from before checksums: it passed the other checks
                        backfill.append((row_checksum(model, dims, key, int(row_dim), bytes(blob)), key))
                    yield key, vec
                elif problem == "size":
                    continue  # another size (a server that ignored `dimensions`): a miss, not damage
                else:
                    bad[problem] += 1
                    bad_keys.append(key)
            if backfill:
                self._write(
                    "UPDATE embeddings SET checksum = ? WHERE model = ? AND dimensions = ? AND key = ?",
                    [(c, model, dims, k) for c, k in backfill],
                )
            if bad_keys:
                self._write(
                    "DELETE FROM embeddings WHERE model = ? AND dimensions = ? AND key = ?",
                    [(model, dims, k) for k in bad_keys],
                )
                detail = ", ".join(f"{n} {what}" for what, n in sorted(bad.items()))
                logger.warning(
                    "Embedding cache %s: dropped %d damaged row(s) for %s (%s); they will be fetched again",
                    self.path,
                    len(bad_keys),
                    model,
                    detail,
                )

    def rows(
        self, model: str, dimensions: int | None, keys: Sequence[bytes]
    ) -> Iterator[tuple[bytes, int, bytes]]:
        """``(key, dim, float32 bytes)`` for each key with a sound row (see :meth:`vectors`)."""
        for key, vec in self.vectors(model, dimensions, keys):
            yield key, int(vec.shape[0]), vec.tobytes()

    def lookup(self, model: str, dimensions: int | None, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """The stored float32 bytes for each key with a sound row (missing or damaged keys are left out)."""
        return {key: blob for key, _dim, blob in self.rows(model, dimensions, keys)}

    def present(self, model: str, dimensions: int | None, keys: Sequence[bytes]) -> set[bytes]:
        """The keys that have a row (without reading or checking the vectors; for estimates)."""
        dims = _dims_key(dimensions)
        found: set[bytes] = set()
        for start in range(0, len(keys), _SELECT_CHUNK):
            chunk = list(keys[start : start + _SELECT_CHUNK])
            marks = ",".join("?" * len(chunk))
            with self._guard("reading it") as conn:
                found.update(
                    row[0]
                    for row in conn.execute(
                        f"SELECT key FROM embeddings WHERE model = ? AND dimensions = ? AND key IN ({marks})",
                        (model, dims, *chunk),
                    )
                )
        return found

    def get(self, model: str, dimensions: int | None, text: str) -> npt.NDArray[np.float32] | None:
        """The cached vector of ``text`` (a writable copy), or ``None``."""
        for _key, vec in self.vectors(model, dimensions, [text_key(text)]):
            return vec.copy()
        return None

    def __contains__(self, item: tuple[str, int | None, str]) -> bool:
        model, dimensions, text = item
        return self.get(model, dimensions, text) is not None

    # --- writes -------------------------------------------------------------------------------------------

    def _write(self, sql: str, params: Iterable[tuple[Any, ...]]) -> None:
        with self._guard("writing to it") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(sql, params)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def put(
        self, model: str, dimensions: int | None, keys: Sequence[bytes], vectors: npt.NDArray[np.floating[Any]]
    ) -> None:
        """Store ``vectors[i]`` under ``keys[i]`` and commit at once (existing entries are replaced). Non-finite
        or all-zero vectors are refused (:class:`~finetune_embed.InvalidEmbeddingError`): a cache only holds
        usable vectors."""
        if len(keys) != len(vectors):
            raise ConfigError(f"EmbeddingCache.put: {len(keys)} keys but {len(vectors)} vectors; pass one key per row")
        if not len(keys):
            return
        data = np.ascontiguousarray(vectors, dtype="<f4")
        if data.ndim != 2 or data.shape[1] < 1:
            raise ConfigError(f"EmbeddingCache.put: vectors must be a 2-D array (n, d), got shape {data.shape}")
        usable = np.isfinite(data).all(axis=1) & (data != 0).any(axis=1)
        if not usable.all():
            bad = np.flatnonzero(~usable).tolist()
            raise InvalidEmbeddingError(
                f"EmbeddingCache.put: row(s) {bad[:10]} are non-finite or all zero; a cache only stores usable "
                "vectors. Drop those rows.",
                indices=bad,
                result=None,
            )
        self.put_items(model, dimensions, ((key, data[i].tobytes()) for i, key in enumerate(keys)), int(data.shape[1]))

    def put_items(
        self, model: str, dimensions: int | None, items: Iterable[tuple[bytes, bytes]], dim: int
    ) -> None:
        """Store ``(key, float32 little-endian bytes)`` pairs in one transaction, committed at once, each with
        its checksum. ``items`` may be a generator: rows are streamed into SQLite, never all held in memory.
        The caller vouches that the vectors are finite and not all zero (as :meth:`put` checks)."""
        dims = _dims_key(dimensions)
        now = time.time()
        size = 4 * dim

        def rows() -> Iterator[tuple[Any, ...]]:
            for key, blob in items:
                if len(blob) != size:
                    raise ConfigError(f"EmbeddingCache.put_items: a vector has {len(blob)} bytes, not {size}")
                yield model, dims, key, dim, blob, now, row_checksum(model, dims, key, dim, blob)

        self._write(
            "INSERT OR REPLACE INTO embeddings (model, dimensions, key, dim, vector, created, checksum) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )

    def clear(self, model: str | None = None, dimensions: int | Literal["all"] | None = "all") -> int:
        """Delete cached vectors (all, one model's, or one model's at one ``dimensions``); returns how many."""
        with self._guard("deleting from it") as conn:
            if model is None:
                cur = conn.execute("DELETE FROM embeddings")
            elif dimensions == "all":
                cur = conn.execute("DELETE FROM embeddings WHERE model = ?", (model,))
            else:
                cur = conn.execute(
                    "DELETE FROM embeddings WHERE model = ? AND dimensions = ?", (model, _dims_key(dimensions))
                )
            return cur.rowcount

    # --- the Batch API journal -----------------------------------------------------------------------------

    def journal_add(
        self, batch_id: str, model: str, dimensions: int | None, lines: dict[str, list[bytes]], tokens: int
    ) -> None:
        """Remember a submitted batch (its lines' keys by ``custom_id``) so a rerun polls it instead of paying
        for it again."""
        payload = json.dumps({cid: [k.hex() for k in keys] for cid, keys in lines.items()})
        with self._guard("writing to it") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO batch_jobs VALUES (?, ?, ?, ?, ?, ?)",
                (batch_id, model, _dims_key(dimensions), tokens, payload, time.time()),
            )

    def journal_pending(self, model: str, dimensions: int | None) -> list[tuple[str, dict[str, list[bytes]], int]]:
        """Submitted batches not processed yet: ``(batch_id, lines, tokens)``, oldest first. An entry that does
        not parse (a damaged row) is logged and skipped."""
        with self._guard("reading it") as conn:
            rows = conn.execute(
                "SELECT batch_id, lines, tokens FROM batch_jobs WHERE model = ? AND dimensions = ? ORDER BY created",
                (model, _dims_key(dimensions)),
            ).fetchall()
        out: list[tuple[str, dict[str, list[bytes]], int]] = []
        for bid, lines, tokens in rows:
            try:
                parsed = {str(cid): [bytes.fromhex(k) for k in keys] for cid, keys in json.loads(lines).items()}
                out.append((str(bid), parsed, int(tokens)))
            except (TypeError, ValueError, AttributeError, RecursionError) as exc:
                logger.warning("Embedding cache %s: the journal entry of batch %r is damaged (%s); skipped",
                               self.path, bid, exc)
        return out

    def journal_remove(self, batch_id: str) -> None:
        """Forget a batch whose results are in the cache (or that cannot be used)."""
        with self._guard("writing to it") as conn:
            conn.execute("DELETE FROM batch_jobs WHERE batch_id = ?", (batch_id,))

    # --- housekeeping -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._guard("counting its rows") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def stats(self) -> dict[str, int]:
        """Number of vectors per ``"model"`` or ``"model@dimensions"``."""
        with self._guard("counting its rows") as conn:
            rows = conn.execute(
                "SELECT model, dimensions, COUNT(*) FROM embeddings GROUP BY model, dimensions"
            ).fetchall()
        return {(m if not d else f"{m}@{d}"): int(c) for m, d, c in rows}

    def close(self) -> None:
        """Close the database (checkpointing the WAL). Safe to call twice."""
        with self._lock:
            self._close_quietly()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- recovery -----------------------------------------------------------------------------------------

    @classmethod
    def salvage(cls, path: str | os.PathLike[str]) -> SalvageReport:
        """Recover a damaged cache file: move it aside (``<name>.damaged-<time>``, with its ``-wal`` / ``-shm``
        files) and copy every sound vector and every readable Batch API journal entry into a fresh cache at
        ``path``. Rows past a page SQLite cannot read are lost (``complete`` is then false); they are fetched
        again on the next run. Returns what was kept.
        """
        target = Path(path).expanduser()
        if not target.exists():
            raise EmbeddingCacheError(f"There is no embedding cache at {target} to salvage.", path=str(target))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        moved = target.with_name(f"{target.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(target) + suffix)
            if src.exists():
                os.replace(src, Path(str(moved) + suffix))
        vectors = journal = dropped = 0
        complete = True
        fresh = cls(target)
        try:
            try:
                old = sqlite3.connect(f"{moved.as_uri()}?mode=ro", uri=True, isolation_level=None)
                old.text_factory = _text
            except sqlite3.Error:
                return SalvageReport(str(target), str(moved), 0, 0, 0, False)
            try:
                columns = _columns(old, "embeddings")
                has_checksum = "checksum" in columns
                select = "SELECT model, dimensions, key, dim, vector" + (", checksum" if has_checksum else "")
                batch: list[tuple[bytes, bytes, str, int, int]] = []
                try:
                    for row in old.execute(select + " FROM embeddings"):
                        model, dims, key, dim, blob = row[:5]
                        checksum = row[5] if has_checksum else None
                        if not isinstance(model, str) or not isinstance(dims, int) or not isinstance(key, bytes):
                            dropped += 1
                            continue
                        problem, _vec = _check_row(model, dims, key, dim, blob, checksum, None)
                        if problem is not None:
                            dropped += 1
                            continue
                        batch.append((key, bytes(blob), model, dims, int(dim)))
                        if len(batch) >= 512:
                            vectors += _flush(fresh, batch)
                except sqlite3.Error:
                    complete = False
                vectors += _flush(fresh, batch)
                try:
                    for bid, model, dims, tokens, lines, created in old.execute("SELECT * FROM batch_jobs"):
                        with fresh._guard("writing to it") as conn:
                            conn.execute(
                                "INSERT OR REPLACE INTO batch_jobs VALUES (?, ?, ?, ?, ?, ?)",
                                (bid, model, dims, tokens, lines, created),
                            )
                        journal += 1
                except (sqlite3.Error, ValueError):
                    complete = False
            except sqlite3.Error:
                complete = False
            finally:
                old.close()
        finally:
            fresh.close()
        logger.warning(
            "Embedding cache %s salvaged: %d vectors and %d journal entries kept, %d damaged rows dropped%s; the "
            "damaged file is %s",
            target, vectors, journal, dropped, "" if complete else ", some pages were unreadable", moved,
        )
        return SalvageReport(str(target), str(moved), vectors, journal, dropped, complete)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}


def _flush(cache: EmbeddingCache, batch: list[tuple[bytes, bytes, str, int, int]]) -> int:
    """Write salvaged rows grouped by (model, dimensions, dim); empties ``batch``."""
    groups: dict[tuple[str, int, int], list[tuple[bytes, bytes]]] = {}
    for key, blob, model, dims, dim in batch:
        groups.setdefault((model, dims, dim), []).append((key, blob))
    for (model, dims, dim), items in groups.items():
        cache.put_items(model, dims or None, items, dim)
    n = len(batch)
    batch.clear()
    return n


def _check_row(
    model: str, dims: int, key: bytes, dim: Any, blob: Any, checksum: Any, expected: int | None
) -> tuple[str | None, npt.NDArray[np.float32] | None]:
    """``(None, vector)`` for a sound row, else ``(problem, None)``; ``"size"`` means a sound row of another
    size than ``expected`` (not damage)."""
    if not isinstance(blob, bytes) or isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        return "malformed", None
    if len(blob) != 4 * dim:
        return "truncated", None
    if checksum is not None and (
        not isinstance(checksum, bytes) or checksum != row_checksum(model, dims, key, dim, blob)
    ):
        return "checksum mismatch", None
    vec = np.frombuffer(blob, dtype="<f4")
    if not bool(np.isfinite(vec).all()):
        return "non-finite", None
    if not bool(vec.any()):
        return "all zero", None
    if expected is not None and dim != expected:
        return "size", None
    return None, vec
