"""Stores named by URL-like strings (the CLI's ``SRC`` and ``DST``), opened as :class:`~finetune_embed.VectorIndex`.

One line of :data:`SCHEMES` per scheme: the function that opens it, the pip extra its client needs and the
client packages whose exceptions mean "the engine said no" (the CLI prints those as one line). Clients are
imported only when their scheme is used; a missing one raises :class:`~finetune_embed.MissingDependencyError`
naming the extra. Passwords, tokens and keys in a name never appear in what is printed: see :func:`shown`.

=====================================================  ========================================================
name                                                   store
=====================================================  ========================================================
``file:./idx``, ``file:///abs/idx``                    an ``EmbeddingIndex`` directory (``save`` / ``load``)
``postgresql://user:pw@host:5432/db?table=docs``       ``PgVectorIndex`` (other query keys go to libpq)
``chroma:./dir?collection=docs``                       ``ChromaIndex``, embedded (a folder)
``chroma+http://host:8000?collection=docs``            ``ChromaIndex`` on a server (``chroma+https`` too)
``qdrant://host:6333?collection=docs&api_key=K``        ``QdrantIndex`` on a server or Cloud (``qdrant+https``)
``qdrant:./dir?collection=docs``                       ``QdrantIndex`` in the client's local mode (a folder)
``redis://:pw@host:6379/0?name=docs``                  ``RedisIndex`` (``rediss``; a cluster node works too)
``milvus://user:pw@host:19530?collection=docs``        ``MilvusIndex`` on a server (``milvus+https`` for TLS and
                                                       Zilliz Cloud; ``&token=`` an API key, ``&db=`` a database)
``milvus:./data.db?collection=docs``                   ``MilvusIndex`` on Milvus Lite (a ``.db`` file)
``typesense://h1:8108,h2:8108?collection=docs&api_key=K`` ``TypesenseIndex``: one node or a cluster's nodes
=====================================================  ========================================================

The store inside the engine defaults to ``embeddings`` (the adapters' default).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .._exceptions import ConfigError, MissingDependencyError
from ..index._protocol import VectorIndex

__all__ = [
    "SCHEMES",
    "Opened",
    "Request",
    "Scheme",
    "check_name",
    "engine_packages",
    "open_store",
    "scrub",
    "secrets_of",
    "shown",
]

_MASK = "***"
_SECRET_KEYS = ("pass", "token", "key", "secret")  # query keys whose values are masked (password, api_key, ...)


def _nothing() -> None:
    """Most stores write as they go: nothing is left to do at the end."""


@dataclass
class Opened:
    """An open store; ``finish`` makes the copy durable where the store is not written as it goes (a ``file:``
    index is saved there, atomically)."""

    store: VectorIndex
    finish: Callable[[], None] = field(default_factory=lambda: _nothing)


@dataclass(frozen=True)
class Request:
    """What the caller wants: ``create`` a missing store (a destination) with the source's ``dim``, ``metric`` and
    ``model``, or open an existing one (a source)."""

    create: bool
    dim: int | None = None
    metric: str | None = None
    model: str | None = None


Opener = Callable[[str, Request], Opened]


@dataclass(frozen=True)
class Scheme:
    """How one scheme opens: ``opener(name, request)``; the pip ``extra``; the client ``packages`` (top-level
    module names) whose exceptions are the engine's answers."""

    opener: Opener
    extra: str | None
    packages: tuple[str, ...] = ()
    example: str = ""


# --- helpers ------------------------------------------------------------------------------------------------------


def _query(name: str, parts: SplitResult, store_key: str) -> tuple[str, list[tuple[str, str]]]:
    """The store name from ``?<store_key>=`` (default ``embeddings``) and the other query pairs."""
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    store = [v for k, v in pairs if k == store_key]
    if len(store) > 1 or (store and not store[0]):
        raise ConfigError(f"{shown(name)}: give ?{store_key}=NAME once, with a name.")
    return (store[0] if store else "embeddings"), [(k, v) for k, v in pairs if k != store_key]


def _no_query(name: str, parts: SplitResult, store_key: str) -> str:
    store, rest = _query(name, parts, store_key)
    if rest:
        keys = ", ".join(sorted({k for k, _ in rest}))
        raise ConfigError(f"{shown(name)}: unknown query key(s) {keys}; this scheme takes only ?{store_key}=NAME.")
    return store


def _without_query(parts: SplitResult, scheme: str, rest: list[tuple[str, str]]) -> str:
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), ""))


def _local_path(name: str, scheme: str) -> tuple[Path, SplitResult]:
    """``scheme:relative/or/absolute`` or ``scheme:///absolute`` (percent-escapes decoded in the second form)."""
    rest = name[len(scheme) + 1 :]
    parts = urlsplit(f"x:{rest}")
    if rest.startswith("//"):
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"{shown(name)}: a {scheme}: name is a local folder; give {scheme}:///path or {scheme}:path."
            )
        path = unquote(parts.path)
    else:
        path = rest.split("?", 1)[0]
    if not path:
        raise ConfigError(f"{shown(name)}: no folder given; e.g. {scheme}:./data.")
    return Path(path), parts


def _import(module: str, scheme: str) -> Any:
    """The module of an adapter; its client library missing is a :class:`MissingDependencyError` naming the extra."""
    try:
        return importlib.import_module(module)
    except MissingDependencyError:
        raise
    except ImportError as exc:
        extra = SCHEMES[scheme].extra
        missing = getattr(exc, "name", None) or module
        raise MissingDependencyError(
            f"{scheme}: stores need {missing}: pip install 'finetune-embed[{extra}]'",
            package=missing,
            extra=extra,
        ) from None


# --- one opener per engine ----------------------------------------------------------------------------------------


def _open_file(name: str, want: Request) -> Opened:
    from ..index import EmbeddingIndex

    path, parts = _local_path(name, "file")
    if parts.query:
        raise ConfigError(f"{shown(name)}: a file: name takes no query.")
    if not want.create:
        return Opened(EmbeddingIndex.load(path))
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file; a file: destination is a folder (an EmbeddingIndex is saved there).")
    if path.is_dir() and any(path.iterdir()):
        index = EmbeddingIndex.load(path)  # an index of an earlier copy (anything else is an IndexFileError)
    else:
        index = EmbeddingIndex(want.dim, metric=want.metric or "cosine", model=want.model)  # type: ignore[arg-type]

    def finish() -> None:
        if index.dim is not None:  # an empty source gives no index to save
            index.save(path)

    return Opened(index, finish)


def _open_postgres(name: str, want: Request) -> Opened:
    parts = urlsplit(name)
    table, rest = _query(name, parts, "table")
    module = _import("finetune_embed.index.pgvector", parts.scheme)
    conninfo = _without_query(parts, parts.scheme, rest)
    store = module.PgVectorIndex(
        conninfo, table, dim=want.dim, metric=want.metric, model=want.model, create=want.create
    )
    return Opened(store)


def _open_chroma(name: str, want: Request) -> Opened:
    module = _import("finetune_embed.stores._chroma", "chroma")
    if name.startswith("chroma+http"):
        parts = urlsplit(name)
        collection = _no_query(name, parts, "collection")
        if not parts.hostname:
            raise ConfigError(f"{shown(name)}: no host; e.g. chroma+http://127.0.0.1:8000?collection=docs.")
        url = urlunsplit((parts.scheme.removeprefix("chroma+"), parts.netloc, "", "", ""))
        where: dict[str, Any] = {"url": url}
    else:
        path, parts = _local_path(name, "chroma")
        collection = _no_query(name, parts, "collection")
        if not want.create and not path.is_dir():
            raise ConfigError(f"{shown(name)}: no Chroma folder at {path}.")
        where = {"path": str(path)}
    store = module.ChromaIndex(
        collection, dim=want.dim, metric=want.metric, model=want.model, create=want.create, **where
    )
    return Opened(store)


def _open_qdrant(name: str, want: Request) -> Opened:
    module = _import("finetune_embed.stores._qdrant", "qdrant")
    if name.startswith(("qdrant://", "qdrant+https://")):
        parts = urlsplit(name)
        collection, rest = _query(name, parts, "collection")
        keys = dict(rest)
        unknown = sorted(set(keys) - {"api_key"})
        if unknown:
            raise ConfigError(
                f"{shown(name)}: unknown query key(s) {', '.join(unknown)}; qdrant takes ?collection= and ?api_key=."
            )
        if not parts.hostname:
            raise ConfigError(f"{shown(name)}: no host; e.g. qdrant://127.0.0.1:6333?collection=docs.")
        http = "https" if parts.scheme == "qdrant+https" else "http"
        where: dict[str, Any] = {"url": urlunsplit((http, parts.netloc, "", "", "")), "api_key": keys.get("api_key")}
    else:
        path, parts = _local_path(name, "qdrant")
        collection = _no_query(name, parts, "collection")
        if not want.create and not path.is_dir():
            raise ConfigError(f"{shown(name)}: no Qdrant folder at {path}.")
        where = {"path": str(path)}
    store = module.QdrantIndex(collection, dim=want.dim, metric=want.metric, model=want.model, create=want.create,
                               **where)
    return Opened(store)


def _open_typesense(name: str, want: Request) -> Opened:
    """``typesense://host:8108?collection=docs&api_key=K``; a cluster's nodes separated by commas
    (``typesense://h1:8108,h2:8108,h3:8108``); without ``api_key`` the adapter reads ``TYPESENSE_API_KEY``."""
    module = _import("finetune_embed.stores._typesense", "typesense")
    parts = urlsplit(name)
    collection, rest = _query(name, parts, "collection")
    keys = dict(rest)
    unknown = sorted(set(keys) - {"api_key"})
    if unknown:
        raise ConfigError(
            f"{shown(name)}: unknown query key(s) {', '.join(unknown)}; typesense takes ?collection= and ?api_key=."
        )
    http = "https" if parts.scheme == "typesense+https" else "http"
    hosts = [h for h in parts.netloc.split(",") if h]
    if not hosts or "@" in parts.netloc:
        raise ConfigError(f"{shown(name)}: give host:port (or several, comma-separated); e.g. typesense://127.0.0.1:8108.")
    nodes = [f"{http}://{host}" for host in hosts]
    store = module.TypesenseIndex(
        nodes if len(nodes) > 1 else nodes[0],
        collection,
        api_key=keys.get("api_key"),
        dim=want.dim,
        metric=want.metric,
        model=want.model,
        create=want.create,
    )
    return Opened(store)


def _open_redis(name: str, want: Request) -> Opened:
    parts = urlsplit(name)
    store_name, rest = _query(name, parts, "name")
    module = _import("finetune_embed.stores._redis", parts.scheme)
    store = module.RedisIndex(
        _without_query(parts, parts.scheme, rest),
        store_name,
        dim=want.dim,
        metric=want.metric,
        model=want.model,
        create=want.create,
    )
    return Opened(store)


def _open_milvus(name: str, want: Request) -> Opened:
    module = _import("finetune_embed.stores._milvus", "milvus")
    parts = urlsplit(name)
    if parts.netloc:  # milvus://host:port or milvus+https://endpoint: a server or Zilliz Cloud
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(query) - {"collection", "token", "db"})
        if unknown:
            raise ConfigError(f"{shown(name)}: unknown query key(s) {', '.join(unknown)}; this scheme takes "
                              "?collection=NAME, &token=KEY and &db=NAME.")
        scheme = "https" if parts.scheme == "milvus+https" else "http"
        uri = urlunsplit((scheme, parts.netloc, "", "", ""))
        collection = query.get("collection") or "embeddings"
        where: dict[str, Any] = {"uri": uri, "token": query.get("token") or None, "db_name": query.get("db") or None}
    else:  # milvus:./file.db: Milvus Lite
        path, parts = _local_path(name, "milvus")
        collection = _no_query(name, parts, "collection")
        if path.suffix != ".db":
            raise ConfigError(f"{shown(name)}: a Milvus Lite file ends in .db; e.g. milvus:./data.db?collection=docs.")
        if not want.create and not path.exists():
            raise ConfigError(f"{shown(name)}: no Milvus Lite file at {path}.")
        where = {"uri": str(path)}
    store = module.MilvusIndex(
        collection, dim=want.dim, metric=want.metric, model=want.model, create=want.create, **where
    )
    return Opened(store)


# scheme -> how it opens; an adapter adds its line here (and its opener above)
SCHEMES: dict[str, Scheme] = {
    "file": Scheme(_open_file, None, (), "file:./my-index"),
    "postgresql": Scheme(_open_postgres, "pgvector", ("psycopg", "psycopg_pool"), "postgresql://user@host/db?table=docs"),
    "postgres": Scheme(_open_postgres, "pgvector", ("psycopg", "psycopg_pool"), "postgres://user@host/db?table=docs"),
    "chroma": Scheme(_open_chroma, "chroma", ("chromadb", "httpx"), "chroma:./chroma-data?collection=docs"),
    "chroma+http": Scheme(_open_chroma, "chroma", ("chromadb", "httpx"), "chroma+http://host:8000?collection=docs"),
    "chroma+https": Scheme(_open_chroma, "chroma", ("chromadb", "httpx"), "chroma+https://host?collection=docs"),
    "qdrant": Scheme(_open_qdrant, "qdrant", ("qdrant_client", "httpx", "grpc"), "qdrant://host:6333?collection=docs"),
    "qdrant+https": Scheme(_open_qdrant, "qdrant", ("qdrant_client", "httpx", "grpc"), "qdrant+https://host?collection=docs"),
    "redis": Scheme(_open_redis, "redis", ("redis",), "redis://host:6379?name=docs"),
    "rediss": Scheme(_open_redis, "redis", ("redis",), "rediss://host:6380?name=docs"),
    "milvus": Scheme(_open_milvus, "milvus", ("pymilvus", "grpc"), "milvus://host:19530?collection=docs"),
    "milvus+https": Scheme(_open_milvus, "milvus", ("pymilvus", "grpc"), "milvus+https://endpoint?collection=docs"),
    "typesense": Scheme(_open_typesense, "typesense", ("typesense", "requests", "httpx"), "typesense://host:8108?collection=docs"),
    "typesense+https": Scheme(_open_typesense, "typesense", ("typesense", "requests", "httpx"), "typesense+https://host:443?collection=docs"),
}


def check_name(name: str) -> str:
    """The scheme of ``name``; :class:`ConfigError` when it names no known kind of store."""
    return _scheme_of(name)


def _scheme_of(name: str) -> str:
    head, sep, _ = name.partition(":")
    scheme = head.lower()
    if not sep or scheme not in SCHEMES:
        known = ", ".join(f"{s}:" for s in SCHEMES)
        raise ConfigError(
            f"{shown(name)!r} names no store: start it with one of {known} (e.g. file:./my-index, "
            "postgresql://user@host/db?table=docs)."
        )
    return scheme


def open_store(
    name: str, *, create: bool, dim: int | None = None, metric: str | None = None, model: str | None = None
) -> Opened:
    """Open the store ``name``: an existing one (``create=False``, a source), or one that is created when missing
    with ``dim``, ``metric`` and ``model`` (a destination; an existing one must match them).

    Raises:
        ConfigError: an unknown scheme or a malformed name (the message shows it with secrets masked).
        MissingDependencyError: the scheme's client library is not installed (``.extra`` names the extra).
    """
    scheme = _scheme_of(name)
    return SCHEMES[scheme].opener(name, Request(create, dim, metric, model))


def engine_packages(name: str) -> tuple[str, ...]:
    """The client packages whose exceptions are the engine's answers, for the store ``name``."""
    head = name.partition(":")[0].lower()
    entry = SCHEMES.get(head)
    return entry.packages if entry is not None else ()


def secrets_of(name: str) -> list[str]:
    """The secrets in a name: the URL's password and the values of query keys such as ``password``, ``token``,
    ``api_key`` (raw and percent-decoded), so that a message quoting them can be scrubbed."""
    found: list[str] = []
    parts = urlsplit(name)
    userinfo = parts.netloc.rpartition("@")[0]
    if ":" in userinfo:
        password = userinfo.partition(":")[2]
        found += [password, unquote(password)]
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if value and _is_secret(key):
            found += [value, quote(value, safe="")]
    return sorted({s for s in found if s}, key=len, reverse=True)


def _is_secret(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_KEYS)


def shown(name: str) -> str:
    """``name`` as it may be printed: a password and secret query values (``password=``, ``token=``, ``api_key=``)
    replaced by ``***``; a name without them is returned as it is."""
    parts = urlsplit(name)
    userinfo, at, host = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{_MASK}{at}{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret_query = any(value and _is_secret(key) for key, value in pairs)
    if netloc == parts.netloc and not secret_query:
        return name
    query = parts.query
    if secret_query:
        query = "&".join(
            f"{key}={_MASK if value and _is_secret(key) else quote(value, safe='')}" for key, value in pairs
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(message: str, *names: str) -> str:
    """``message`` with every secret of ``names`` masked wherever it stands as a whole token (a client's error may
    quote the URL or the password it was given)."""
    for name in names:
        for secret in secrets_of(name):
            message = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", _MASK, message)
    return message
