"""The chat response cache: SQLite, one row per request key, a checksum per row.

Where it lives by default: ``chat.sqlite`` next to the embedding cache (``$FINETUNE_EMBED_CACHE_DIR``, else
``$XDG_CACHE_HOME/finetune_embed``, else ``~/.cache/finetune_embed``; see :func:`default_chat_cache_path`).

* **Key**: the SHA-256 of the server and the canonical JSON of the request's model, messages, tools and sampling
  parameters (:meth:`ChatRequest.key`); the request itself is not stored.
* **Value**: the response body (JSON) and the seconds the request took, with a 16-byte checksum over key, model,
  body and latency. A row that fails its checksum (a flipped bit, a truncated write from another tool) is
  dropped with a warning naming the cache and fetched again; a file SQLite cannot read is a typed
  :class:`~finetune_embed.CacheFileError` that says how to recover. Nothing unverified is ever returned.
* **Atomic**: every :meth:`ChatCache.put` is its own committed transaction (WAL journal), so each answer is on
  disk the moment it arrives; a crash or ``kill -9`` loses at most the request in flight.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._exceptions import CacheFileError, ConfigError
from .._logging import get_logger

__all__ = ["ChatCache", "default_chat_cache_path"]

logger = get_logger("chat")

_SCHEMA_VERSION = 1
_CHECKSUM_BYTES = 16


def default_chat_cache_path() -> Path:
    """``chat.sqlite`` in ``$FINETUNE_EMBED_CACHE_DIR``, ``$XDG_CACHE_HOME/finetune_embed`` or
    ``~/.cache/finetune_embed``."""
    folder = os.environ.get("FINETUNE_EMBED_CACHE_DIR")
    if folder:
        return Path(folder).expanduser() / "chat.sqlite"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "finetune_embed" / "chat.sqlite"


def _checksum(key: bytes, model: str, body: bytes, latency: float) -> bytes:
    h = hashlib.sha256()
    for part in (key, model.encode("utf-8", "surrogatepass"), body, struct.pack("<d", latency)):
        h.update(struct.pack("<Q", len(part)))
        h.update(part)
    return h.digest()[:_CHECKSUM_BYTES]


class ChatCache:
    """Chat responses already paid for, on disk.

    **Parameters:**

    * ``path`` - the SQLite file (created with its folder); default :func:`default_chat_cache_path`.
      ``":memory:"`` keeps the cache in memory for this object's life.

    One connection serves all threads, behind a lock; several processes may share the file.

    >>> cache = ChatCache(":memory:")
    >>> cache.put(b"k" * 32, "gpt-4o-mini", {"choices": []}, latency=0.5)
    >>> cache.get(b"k" * 32)
    ({'choices': []}, 0.5)
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path: Path | str = (
            default_chat_cache_path() if path is None else (path if path == ":memory:" else Path(path).expanduser())
        )
        if isinstance(self.path, Path):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"Cannot create the chat cache folder {self.path.parent}: {exc}. Pass cache=<path> somewhere "
                    "writable, set FINETUNE_EMBED_CACHE_DIR, or pass cache=False."
                ) from exc
            if self.path.exists() and not self.path.is_file():
                raise CacheFileError(
                    f"The chat cache {self.path} is not a file; pass cache=<path to a file>.", path=str(self.path)
                )
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        with self._guard("open"):
            conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None)
            try:
                self._setup(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    # --- plumbing -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn SQLite's errors about the file into :class:`CacheFileError` (locks and busy files excepted)."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "locked" in text or "busy" in text:
                raise CacheFileError(
                    f"The chat cache {self.path} stayed locked by another process for 30 s ({exc}); try again, or "
                    "pass cache=<another path>.",
                    path=str(self.path),
                ) from exc
            raise self._damaged(what, exc) from exc
        except sqlite3.DatabaseError as exc:
            raise self._damaged(what, exc) from exc

    def _damaged(self, what: str, exc: BaseException) -> CacheFileError:
        return CacheFileError(
            f"Cannot {what} the chat cache {self.path}: {exc}. The file is damaged or is not a chat cache. Move it "
            "away (it only holds answers that can be asked for again, at their price) or pass cache=<another path>.",
            path=str(self.path),
        )

    def _setup(self, conn: sqlite3.Connection) -> None:
        if self.path != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS chat_responses ("
            " key BLOB PRIMARY KEY, model TEXT NOT NULL, body BLOB NOT NULL, latency REAL NOT NULL,"
            " created REAL NOT NULL, checksum BLOB NOT NULL) WITHOUT ROWID"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS chat_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = conn.execute("SELECT value FROM chat_meta WHERE name = 'schema'").fetchone()
        if row is None:
            conn.execute("INSERT OR IGNORE INTO chat_meta VALUES ('schema', ?)", (str(_SCHEMA_VERSION),))
            return
        try:
            version = int(row[0])
        except (TypeError, ValueError):
            version = -1
        if version != _SCHEMA_VERSION:
            raise CacheFileError(
                f"The chat cache {self.path} has schema version {row[0]!r}; this version of finetune_embed reads "
                f"version {_SCHEMA_VERSION}. Upgrade finetune_embed, or pass cache=<another path>.",
                path=str(self.path),
            )

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ConfigError(f"The chat cache {self.path} is closed.")
        return self._conn

    def __repr__(self) -> str:
        return f"ChatCache({str(self.path)!r})"

    # --- reads and writes ---------------------------------------------------------------------------------

    def get(self, key: bytes) -> tuple[dict[str, Any], float] | None:
        """The stored ``(response body, latency)`` for ``key``, or ``None``. A row that fails its checksum is
        deleted (with a warning) and reported as missing."""
        with self._lock, self._guard("read"):
            row = self._db.execute(
                "SELECT model, body, latency, checksum FROM chat_responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        model, body, latency, checksum = row
        ok = (
            isinstance(model, str)
            and isinstance(body, bytes)
            and isinstance(latency, float)
            and isinstance(checksum, bytes)
            and _checksum(key, model, body, latency) == checksum
        )
        parsed: Any = None
        if ok:
            try:
                parsed = json.loads(body)
            except ValueError:
                ok = False
        if not ok or not isinstance(parsed, dict):
            logger.warning(
                "The chat cache %s holds a damaged entry (checksum mismatch); it was dropped and will be asked for "
                "again",
                self.path,
            )
            self.delete(key)
            return None
        return parsed, float(latency)

    def put(self, key: bytes, model: str, body: dict[str, Any], *, latency: float) -> None:
        """Store a response (replacing any entry under ``key``) and commit at once."""
        blob = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        latency = float(latency)
        row = (key, model, blob, latency, time.time(), _checksum(key, model, blob, latency))
        with self._lock, self._guard("write to"):
            self._db.execute(
                "INSERT OR REPLACE INTO chat_responses (key, model, body, latency, created, checksum) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )

    def delete(self, key: bytes) -> None:
        """Forget one entry."""
        with self._lock, self._guard("write to"):
            self._db.execute("DELETE FROM chat_responses WHERE key = ?", (key,))

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) is not None

    def clear(self, model: str | None = None) -> int:
        """Delete every entry (or one model's); returns how many."""
        with self._lock, self._guard("write to"):
            if model is None:
                cur = self._db.execute("DELETE FROM chat_responses")
            else:
                cur = self._db.execute("DELETE FROM chat_responses WHERE model = ?", (model,))
            return cur.rowcount

    def __len__(self) -> int:
        with self._lock, self._guard("read"):
            return int(self._db.execute("SELECT COUNT(*) FROM chat_responses").fetchone()[0])

    def stats(self) -> dict[str, int]:
        """Number of stored responses per model."""
        with self._lock, self._guard("read"):
            rows = self._db.execute("SELECT model, COUNT(*) FROM chat_responses GROUP BY model").fetchall()
        return {str(m): int(c) for m, c in rows}

    def close(self) -> None:
        """Close the database (checkpointing the WAL)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ChatCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
