"""A persistent embedding cache: SQLite, keyed on (model, dimensions, sha256 of the text), float32 blobs.

Where it lives by default: ``$FINETUNE_EMBED_CACHE_DIR/embeddings.sqlite`` if that variable is set, else
``$XDG_CACHE_HOME/finetune_embed/embeddings.sqlite``, else ``~/.cache/finetune_embed/embeddings.sqlite``
(see :func:`default_cache_path`).

The database runs in WAL mode and every :meth:`EmbeddingCache.put` is its own committed transaction, so
vectors written before a crash or a ``kill -9`` are there on the next run. One connection serves all threads,
behind a lock; several processes may share the file (SQLite serialises their writes).

Texts are not stored, only their SHA-256, so the cache holds no readable copy of the corpus. A vector costs
``4 * dimensions`` bytes plus SQLite's page overhead: about 8.8 kB on disk for 1536 dimensions (measured).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError
from .._logging import get_logger

__all__ = ["EmbeddingCache", "default_cache_path", "text_key"]

logger = get_logger("embeddings")

_SCHEMA_VERSION = 1
_SELECT_CHUNK = 500  # keys per SELECT ... IN (...), under SQLite's parameter limit


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


class EmbeddingCache:
    """Embeddings already paid for, on disk.

    **Parameters:**

    * ``path`` - the SQLite file (created with its folder); default :func:`default_cache_path`.
      ``":memory:"`` keeps the cache in memory for this object's life.

    Vectors are stored per ``(model, dimensions, sha256(text))``: changing the model or ``dimensions`` never
    returns a stale vector. ``dimensions=None`` (the model's default size) is its own key.

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
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"Cannot create the embedding cache folder {self.path.parent}: {exc}. Pass cache=<path> "
                    "somewhere writable, set FINETUNE_EMBED_CACHE_DIR, or pass cache=False."
                ) from exc
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._setup()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"Cannot open the embedding cache {self.path}: {exc}. If the file is not an embedding cache "
                "or is damaged, move it away (it only holds vectors that can be fetched again)."
            ) from exc

    def _setup(self) -> None:
        conn = self._conn
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
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
        row = conn.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if row is None:
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(_SCHEMA_VERSION),))
        elif int(row[0]) != _SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"unknown cache schema version {row[0]}")

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    # --- reads --------------------------------------------------------------------------------------------

    def rows(
        self, model: str, dimensions: int | None, keys: Sequence[bytes]
    ) -> Iterator[tuple[bytes, int, bytes]]:
        """``(key, dim, float32 bytes)`` for each key present, streamed in chunks (missing keys are skipped)."""
        dims = _dims_key(dimensions)
        for start in range(0, len(keys), _SELECT_CHUNK):
            chunk = list(keys[start : start + _SELECT_CHUNK])
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT key, dim, vector FROM embeddings WHERE model = ? AND dimensions = ? "
                    f"AND key IN ({marks})",
                    (model, dims, *chunk),
                ).fetchall()
            yield from rows

    def lookup(self, model: str, dimensions: int | None, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """The stored float32 bytes for each key that is present (missing keys are left out)."""
        return {key: blob for key, _dim, blob in self.rows(model, dimensions, keys)}

    def present(self, model: str, dimensions: int | None, keys: Sequence[bytes]) -> set[bytes]:
        """The keys that have a vector (without reading the vectors)."""
        dims = _dims_key(dimensions)
        found: set[bytes] = set()
        for start in range(0, len(keys), _SELECT_CHUNK):
            chunk = list(keys[start : start + _SELECT_CHUNK])
            marks = ",".join("?" * len(chunk))
            with self._lock:
                found.update(
                    row[0]
                    for row in self._conn.execute(
                        f"SELECT key FROM embeddings WHERE model = ? AND dimensions = ? AND key IN ({marks})",
                        (model, dims, *chunk),
                    )
                )
        return found

    def get(self, model: str, dimensions: int | None, text: str) -> npt.NDArray[np.float32] | None:
        """The cached vector of ``text``, or ``None``."""
        found = self.lookup(model, dimensions, [text_key(text)])
        if not found:
            return None
        return np.frombuffer(next(iter(found.values())), dtype="<f4").astype(np.float32)

    def __contains__(self, item: tuple[str, int | None, str]) -> bool:
        model, dimensions, text = item
        return self.get(model, dimensions, text) is not None

    # --- writes -------------------------------------------------------------------------------------------

    def put(
        self, model: str, dimensions: int | None, keys: Sequence[bytes], vectors: npt.NDArray[np.floating[Any]]
    ) -> None:
        """Store ``vectors[i]`` under ``keys[i]`` and commit at once (existing entries are replaced)."""
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys but {len(vectors)} vectors")
        if not len(keys):
            return
        data = np.ascontiguousarray(vectors, dtype="<f4")
        self.put_items(model, dimensions, ((key, data[i].tobytes()) for i, key in enumerate(keys)), int(data.shape[1]))

    def put_items(
        self, model: str, dimensions: int | None, items: Iterable[tuple[bytes, bytes]], dim: int
    ) -> None:
        """Store ``(key, float32 little-endian bytes)`` pairs in one transaction, committed at once. ``items``
        may be a generator: rows are streamed into SQLite, never all held in memory."""
        dims = _dims_key(dimensions)
        now = time.time()
        rows = ((model, dims, key, dim, blob, now) for key, blob in items)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO embeddings (model, dimensions, key, dim, vector, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def clear(self, model: str | None = None, dimensions: int | Literal["all"] | None = "all") -> int:
        """Delete cached vectors (all, one model's, or one model's at one ``dimensions``); returns how many."""
        with self._lock:
            if model is None:
                cur = self._conn.execute("DELETE FROM embeddings")
            elif dimensions == "all":
                cur = self._conn.execute("DELETE FROM embeddings WHERE model = ?", (model,))
            else:
                cur = self._conn.execute(
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
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO batch_jobs VALUES (?, ?, ?, ?, ?, ?)",
                (batch_id, model, _dims_key(dimensions), tokens, payload, time.time()),
            )

    def journal_pending(self, model: str, dimensions: int | None) -> list[tuple[str, dict[str, list[bytes]], int]]:
        """Submitted batches not processed yet: ``(batch_id, lines, tokens)``, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT batch_id, lines, tokens FROM batch_jobs WHERE model = ? AND dimensions = ? ORDER BY created",
                (model, _dims_key(dimensions)),
            ).fetchall()
        return [
            (bid, {cid: [bytes.fromhex(k) for k in keys] for cid, keys in json.loads(lines).items()}, int(tokens))
            for bid, lines, tokens in rows
        ]

    def journal_remove(self, batch_id: str) -> None:
        """Forget a batch whose results are in the cache (or that cannot be used)."""
        with self._lock:
            self._conn.execute("DELETE FROM batch_jobs WHERE batch_id = ?", (batch_id,))

    # --- housekeeping -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def stats(self) -> dict[str, int]:
        """Number of vectors per ``"model"`` or ``"model@dimensions"``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT model, dimensions, COUNT(*) FROM embeddings GROUP BY model, dimensions"
            ).fetchall()
        return {(m if not d else f"{m}@{d}"): int(c) for m, d, c in rows}

    def close(self) -> None:
        """Close the database (checkpointing the WAL)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
