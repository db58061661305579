"""MilvusIndex: the :class:`~finetune_embed.VectorIndex` API on a Milvus collection: a Milvus server (standalone or
distributed), Milvus Lite (a local ``.db`` file) or Zilliz Cloud (a URI and a token).

One row per item (fields of the collection's schema):

- ``pk``: the primary key, a hash of the id (32 hex characters), so an id never has to be escaped into an
  expression and any id length works;
- ``id``: the id itself; ``vector``: the float32 vector (unit length for cosine);
- ``meta``: the metadata as exact JSON text (what reads return); ``filt``: the filter document of
  :mod:`._milvus_filters`; ``seq``: the write order (the writing client's clock in nanoseconds, strictly
  increasing within a process; an upsert keeps an item's place), by which ``iter_items`` pages.

The schema's description records the layout, the metric and the model; the index (``FLAT``, exact, or ``HNSW``)
is created with the collection, whose consistency level is ``Session``: a client reads its own writes.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, DuplicateIdError, EmbeddingIndexError, MissingDependencyError, UnknownIdError
from .._redact import MASK
from ..index._filters import Filter
from ..index._index import Item
from ..index._matches import Matches
from ..index._vectors import _shown
from ._base import Metric, StoreBase, check_ids, check_metric, last_occurrences, positive, reject_repeats
from ._milvus_filters import ENGINE, FILTER_FIELD, compile_filter, filter_document

try:
    from pymilvus import DataType, MilvusClient
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "finetune_embed.stores.MilvusIndex needs pymilvus: pip install 'finetune-embed[milvus]'",
        package="pymilvus",
        extra="milvus",
    ) from exc

__all__ = ["MilvusIndex"]

Index = Literal["flat", "hnsw"]

_LAYOUT = "finetune_embed.milvus/1"
_PROPERTY = "finetune_embed"  # the collection property recording the layout, metric, index and model
_METRICS: dict[str, Metric] = {"COSINE": "cosine", "IP": "dot"}
_MILVUS_METRIC = {"cosine": "COSINE", "dot": "IP"}
_INDEX_TYPES: dict[str, Index] = {"FLAT": "flat", "HNSW": "hnsw"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_MAX_TEXT = 65_535  # bytes in a VARCHAR field (the id and the metadata's JSON text)
_MAX_DIM = 32_768  # Milvus's limit for a float vector
_MAX_HITS = 16_384  # Milvus's limit for k (topk) and for offset + limit of a query
_WRITE_BYTES = 16 * 2**20  # rows per insert / upsert call: about this many bytes of vectors
_EXPR_IDS = 1_000  # primary keys per `pk in [...]` expression
_QUERY_BATCH = 256  # query vectors per search call
_SEQ_END = 2**63 - 1


def _pk(item_id: str) -> str:
    return hashlib.blake2b(item_id.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _pk_list(pks: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{p}"' for p in pks) + "]"


def _plain(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """pymilvus 2.5's result rows as plain dicts: its result lists fill some fields in lazily, by position, when a
    row is first indexed, so a list sorted or copied before that pairs rows with other rows' vectors."""
    return [dict(rows[i]) for i in range(len(rows))]


def _utf8(text: str, what: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{what} holds a string that is not valid Unicode ({exc.reason}); Milvus stores UTF-8 "
                          "text only.") from None


def _shown_uri(uri: str) -> str:
    """The URI as repr and messages show it: any user:password part replaced."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{MASK}@{host}{port}").geturl()


class MilvusIndex(StoreBase):
    """The :class:`~finetune_embed.VectorIndex` API on a Milvus collection.

    Args:
        collection: the collection name (letters, digits and ``_``, not starting with a digit; up to 255).
        uri: where Milvus is: ``http://host:19530`` (a Milvus server, standalone or distributed), a local file
            ending in ``.db`` (Milvus Lite, started by pymilvus inside this process), or a Zilliz Cloud endpoint
            ``https://...`` (with ``token``). Or
        client: a ``pymilvus.MilvusClient`` you made (used as it is and left open). Exactly one of the two.
        token: ``"user:password"`` or a Zilliz Cloud API key. Never shown: not in ``repr``, logs or our errors.
        db_name: the Milvus database (default: the server's ``default``).
        dim: the vector dimension (default: the collection's, else set by the first ``add`` / ``upsert``, which
            creates the collection).
        metric: ``"cosine"`` (vectors normalised when added; Milvus ``COSINE``) or ``"dot"`` (``IP``). Scores are
            what Milvus returns for them: the cosine similarity or the inner product. Default: the
            collection's, else ``"cosine"``.
        model: the embedding model the vectors come from (recorded when the collection is created; checked by
            :meth:`search_text`).
        index: ``"flat"`` (exact: every search scores every item; the default) or ``"hnsw"`` (approximate).
            Fixed when the collection is created; default for an existing one: its own.
        m, ef_construction: HNSW build parameters for a new collection (defaults 16 and 200).
        ef: HNSW candidates per query (at least ``k`` is used; default 1000). Settable later (:attr:`ef`). On
            10,000 random 384-d vectors (the hard case) recall@10 was 0.51 at 100, 0.94 at 500 and 0.994 at 1000
            once :meth:`flush` had built the index (see docs/vector-stores.md).
        create: create the collection when it does not exist (else :class:`~finetune_embed.ConfigError`).
        timeout: seconds connecting and each Milvus call may take (default: pymilvus's: 10 s to connect, no
            limit per call).

    Filters run inside Milvus as boolean expressions over the ``filt`` JSON field (see
    docs/vector-stores.md); every operator of the language is supported. Connection and server errors are
    pymilvus's ``MilvusException``.

    Example:
        >>> store = MilvusIndex("docs", uri="http://localhost:19530", dim=1536)  # doctest: +SKIP
        >>> store.add(["a", "b"], vectors, metadata=[{"lang": "en"}, {"lang": "fr"}])  # doctest: +SKIP
        >>> store.search(query, k=5, where={"lang": "en"}).ids  # doctest: +SKIP
    """

    _engine = ENGINE

    def __init__(
        self,
        collection: str = "embeddings",
        *,
        uri: str | None = None,
        client: MilvusClient | None = None,
        token: str | None = None,
        db_name: str | None = None,
        dim: int | None = None,
        metric: Metric | None = None,
        model: str | None = None,
        index: Index | None = None,
        m: int = 16,
        ef_construction: int = 200,
        ef: int = 1_000,
        create: bool = True,
        timeout: float | None = None,
    ) -> None:
        if not isinstance(collection, str) or not _NAME.match(collection):
            raise ConfigError(
                "Milvus collection names are 1 to 255 letters, digits and '_', not starting with a digit; got "
                f"{collection!r}."
            )
        if (uri is None) == (client is None):
            raise ConfigError("give exactly one of uri= (a Milvus server, Zilliz Cloud, or a Milvus Lite .db file) "
                              "and client=.")
        if client is not None and (token is not None or db_name is not None):
            raise ConfigError("token= and db_name= belong to the connection: set them on the MilvusClient you pass.")
        if metric is not None:
            check_metric(metric)
        if index is not None and index not in ("flat", "hnsw"):
            raise ConfigError(f"index must be 'flat' (exact) or 'hnsw' (approximate), got {index!r}.")
        positive("dim", dim)
        if dim is not None and dim > _MAX_DIM:
            raise ConfigError(f"Milvus float vectors have at most {_MAX_DIM} dimensions, got dim={dim}.")
        positive("m", m, 2)
        positive("ef_construction", ef_construction)
        positive("ef", ef)
        self._name = collection
        self._m, self._ef_construction, self._ef = m, ef_construction, ef
        self._timeout = timeout
        self._uri = "client" if uri is None else _shown_uri(str(uri))
        self._owns = client is None
        if client is None:
            client = self._connect(str(uri), token, db_name, timeout)
        self._client: MilvusClient | None = client
        self._dim: int | None = dim
        self._metric: Metric = metric or "cosine"
        self._model: str | None = model
        self._index: Index = index or "flat"
        self._exists = False
        self._deleted = False  # a delete this index made is not yet covered by a write's timestamp
        self._last_seq = 0
        try:
            self._open(dim, metric, model, index, create)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _connect(uri: str, token: str | None, db_name: str | None, timeout: float | None) -> MilvusClient:
        if not uri:
            raise ConfigError("uri is empty: give http://host:19530, https://<Zilliz endpoint> or a path ending in "
                              "'.db' (Milvus Lite).")
        parts = urlsplit(uri)
        secrets = [t for t in (token, parts.password) if t]
        if parts.username is not None or parts.password is not None:
            # credentials in the URI travel as the token instead, so that no connection name or message holds them
            user, password = unquote(parts.username or ""), unquote(parts.password or "")
            token = token or f"{user}:{password}"
            secrets += [password, quote(parts.password or "")]
            uri = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        # our own connection name: pymilvus would otherwise share one connection between clients of the same URI
        # and token (closing one closes the other's) and name it after an MD5 of the token in its log lines
        kwargs: dict[str, Any] = {"uri": uri, "alias": f"finetune_embed-{uuid.uuid4().hex}"}
        if token is not None:
            kwargs["token"] = token
        if db_name is not None:
            kwargs["db_name"] = db_name
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            return MilvusClient(**kwargs)
        except Exception as exc:  # pymilvus's messages may repeat what it was given: never the token
            text = str(exc)
            for secret in secrets:
                text = text.replace(secret, MASK)
            raise ConfigError(
                f"could not connect to Milvus at {_shown_uri(uri)}: {type(exc).__name__}: {text}"
            ) from None

    # --- opening ---------------------------------------------------------------------------------------------

    @property
    def _milvus(self) -> MilvusClient:
        if self._client is None:
            raise ConfigError(f"MilvusIndex({self._name!r}) is closed; open a new one.")
        return self._client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._timeout is not None:
            kwargs["timeout"] = self._timeout
        if self._deleted and method in ("query", "search"):
            # Milvus 2.3 answers a delete without a timestamp, so pymilvus's Session guarantee (the last write's
            # timestamp) does not cover it: read strongly until the next insert / upsert moves that timestamp on
            kwargs["consistency_level"] = "Strong"
        result = getattr(self._milvus, method)(*args, **kwargs)
        if method in ("insert", "upsert"):
            self._deleted = False
        return result

    def _open(self, dim: int | None, metric: Metric | None, model: str | None, index: Index | None,
              create: bool) -> None:
        if not self._call("has_collection", self._name):
            if not create:
                raise ConfigError(f"Milvus collection {self._name!r} does not exist; pass create=True to create it.")
            if dim is not None:
                self._create(dim)
            return
        info = self._call("describe_collection", self._name)
        try:
            recorded = json.loads((info.get("properties") or {}).get(_PROPERTY) or "")
        except ValueError:
            recorded = None
        if not isinstance(recorded, dict) or recorded.get("layout") != _LAYOUT:
            raise ConfigError(
                f"Milvus collection {self._name!r} was not created by finetune_embed (its property {_PROPERTY!r} "
                f"does not name the layout {_LAYOUT!r}), so its rows lack the fields our filters need. Copy the data "
                "into a new collection with MilvusIndex.add()."
            )
        fields = {f["name"]: f for f in info.get("fields", [])}
        stored_dim = int((fields.get("vector") or {}).get("params", {}).get("dim", 0)) or None
        stored_metric = _METRICS.get(str(recorded.get("metric_type")))
        stored_index = _INDEX_TYPES.get(str(recorded.get("index_type")))
        if stored_metric is None or stored_index is None:
            raise ConfigError(f"Milvus collection {self._name!r} records an unknown metric or index: {recorded!r}.")
        if metric is not None and metric != stored_metric:
            raise ConfigError(
                f"Milvus collection {self._name!r} was created with metric={stored_metric!r}; open it with that "
                f"metric (got {metric!r})."
            )
        if index is not None and index != stored_index:
            raise ConfigError(
                f"Milvus collection {self._name!r} was created with index={stored_index!r}; its index is fixed "
                f"(got {index!r}). Copy the items into a new collection to change it."
            )
        stored_model = recorded.get("model")
        if stored_model is not None and model is not None and stored_model != model:
            raise ConfigError(
                f"Milvus collection {self._name!r} holds {stored_model!r} embeddings, not {model!r}; vectors from "
                "different models cannot be compared."
            )
        self._check_dim(dim, stored_dim, self._name)
        self._dim, self._metric, self._index = stored_dim, stored_metric, stored_index
        self._model = stored_model if isinstance(stored_model, str) else model
        self._exists = True
        if stored_model is None and model is not None:
            self._call("alter_collection_properties", self._name, properties={_PROPERTY: self._record()})
        self._call("load_collection", self._name)

    def _record(self) -> str:
        """What the collection's property records: the layout, metric, index and model."""
        recorded = {"layout": _LAYOUT, "metric_type": _MILVUS_METRIC[self._metric], "index_type": self._index.upper()}
        if self._model is not None:
            recorded["model"] = self._model
        return json.dumps(recorded)

    def _create(self, dim: int) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                            description="finetune_embed MilvusIndex (see the property finetune_embed)")
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=32)
        schema.add_field("id", DataType.VARCHAR, max_length=_MAX_TEXT)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("meta", DataType.VARCHAR, max_length=_MAX_TEXT)
        schema.add_field(FILTER_FIELD, DataType.JSON)
        schema.add_field("seq", DataType.INT64)
        params = MilvusClient.prepare_index_params()
        build = {"M": self._m, "efConstruction": self._ef_construction} if self._index == "hnsw" else {}
        params.add_index(field_name="vector", index_type=self._index.upper(),
                         metric_type=_MILVUS_METRIC[self._metric], params=build)
        self._call("create_collection", self._name, schema=schema, consistency_level="Session",
                   properties={_PROPERTY: self._record()})
        # an empty collection's index is ready at once: pymilvus's wait for it would only sleep (0.5 s)
        self._call("create_index", self._name, params, sync=False)
        self._call("load_collection", self._name)
        self._dim = dim
        self._exists = True

    # --- properties and lifetime -----------------------------------------------------------------------------

    @property
    def client(self) -> MilvusClient:
        """The ``pymilvus.MilvusClient`` (for what this API does not cover)."""
        return self._milvus

    @property
    def name(self) -> str:
        """The collection name."""
        return self._name

    @property
    def index(self) -> Index:
        """``"flat"`` (exact) or ``"hnsw"`` (approximate)."""
        return self._index

    @property
    def ef(self) -> int:
        """HNSW candidates per query (at least ``k`` is used); settable."""
        return self._ef

    @ef.setter
    def ef(self, value: int) -> None:
        positive("ef", value)
        self._ef = value

    def __repr__(self) -> str:
        model = f", model={self._model!r}" if self._model else ""
        return (f"MilvusIndex(collection={self._name!r}, uri={self._uri!r}, dim={self._dim}, "
                f"metric={self._metric!r}, index={self._index!r}{model})")

    def close(self) -> None:
        """Close the connection if this index made it (a client you passed in stays open); the data stays."""
        client, self._client = self._client, None
        if client is not None and self._owns:
            client.close()

    def flush(self, timeout: float = 600.0) -> None:
        """Seal what was written and search it through the collection's index: call it after a bulk load into an
        ``index="hnsw"`` collection.

        Until rows are sealed into segments and indexed, a Milvus server searches them through its interim
        index for growing segments (IVF, ``nprobe`` 16 of 128 lists by default): recall@10 on 10,000 random 384-d
        vectors was 0.25 before ``flush()`` and 0.994 after it (``ef=1000``). ``"flat"`` collections are exact
        either way. This flushes, waits until the index covers every row (at most ``timeout`` seconds), then
        reloads the collection so that searches use the built index.

        Raises:
            EmbeddingIndexError: the index did not cover every row within ``timeout`` seconds.
        """
        if not self._exists:
            return
        self._call("flush", self._name)
        deadline = time.monotonic() + timeout
        while True:
            info = self._call("describe_index", self._name, "vector")
            done = int(info.get("indexed_rows", 0)) >= int(info.get("total_rows", 0))
            if done and int(info.get("pending_index_rows", 0)) == 0:
                break
            if time.monotonic() > deadline:
                raise EmbeddingIndexError(
                    f"Milvus collection {self._name!r}: the index covers {info.get('indexed_rows')} of "
                    f"{info.get('total_rows')} rows after {timeout} s; call flush() again to keep waiting."
                )
            time.sleep(0.2)
        self._call("release_collection", self._name)
        self._call("load_collection", self._name)

    def drop(self) -> None:
        """Delete the collection and everything in it."""
        if self._call("has_collection", self._name):
            self._call("drop_collection", self._name)
        self._exists = False
        self._dim = None

    def __enter__(self) -> MilvusIndex:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- reading ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """The number of items, counted by Milvus (``count(*)``: deleted rows are not counted)."""
        if not self._exists:
            return 0
        rows = self._call("query", self._name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, str) or not item_id or "\x00" in item_id or not self._exists:
            return False
        return bool(self._present([item_id]))

    def _query_pks(self, pks: Sequence[str], fields: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for a in range(0, len(pks), _EXPR_IDS):
            chunk = pks[a : a + _EXPR_IDS]
            rows += _plain(self._call("query", self._name, filter=f"pk in {_pk_list(chunk)}", output_fields=fields,
                                      limit=len(chunk)))
        return rows

    def _present(self, ids: Sequence[str]) -> list[str]:
        """The ids of ``ids`` that are stored, in the order given."""
        if not self._exists or not ids:
            return []
        found = {row["id"] for row in self._query_pks([_pk(i) for i in ids], ["id"])}
        return [i for i in ids if i in found]

    def get(self, item_id: str) -> Item:
        """The stored float32 vector (unit length, for cosine) and the metadata of ``item_id``.

        Raises:
            UnknownIdError: ``item_id`` is not in the collection.
        """
        (checked,) = check_ids(item_id, "item_id")
        rows = self._query_pks([_pk(checked)], ["id", "vector", "meta"]) if self._exists else []
        if not rows:
            raise UnknownIdError(f"id {item_id!r} is not in Milvus collection {self._name!r}.", ids=[item_id])
        row = rows[0]
        return Item(np.asarray(row["vector"], dtype=np.float32), json.loads(row["meta"]))

    def iter_items(
        self, batch_size: int = 1_000
    ) -> Iterator[tuple[list[str], npt.NDArray[np.float32], list[dict[str, Any]]]]:
        """Every item in the order written (an upsert keeps an item's place), ``batch_size`` at a time:
        ``(ids, vectors, metadata)``. Pages by ranges of the write order, so each item comes once; items written
        during the iteration may or may not be seen."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if not self._exists:
            return
        limit = min(_MAX_HITS, max(1_024, 2 * batch_size))
        pending = [(0, _SEQ_END)]  # ranges [low, high) of seq still to read, the next one last
        while pending:
            low, high = pending.pop()
            where = f"seq >= {low} and seq < {high}"
            probe = _plain(self._call("query", self._name, filter=where, output_fields=["seq"], limit=limit))
            if len(probe) >= limit and high - low > 1:  # perhaps more: split at the middle of what came back
                seqs = sorted(int(r["seq"]) for r in probe)
                middle = min(max(seqs[len(seqs) // 2], low + 1), high - 1)
                pending += [(middle, high), (low, middle)]
                continue
            if not probe:
                continue
            rows = _plain(self._call("query", self._name, filter=where, output_fields=["id", "vector", "meta", "seq"],
                                     limit=_MAX_HITS))
            rows.sort(key=lambda r: int(r["seq"]))
            for a in range(0, len(rows), batch_size):
                chunk = rows[a : a + batch_size]
                yield ([r["id"] for r in chunk],
                       np.asarray([r["vector"] for r in chunk], dtype=np.float32).reshape(len(chunk), -1),
                       [json.loads(r["meta"]) for r in chunk])

    # --- writing ---------------------------------------------------------------------------------------------

    def _records(self, ids: list[str], vectors: npt.ArrayLike, metadata: Any) -> list[dict[str, Any]]:
        rows = self._rows(ids, vectors)
        metas = self._metadata(ids, metadata)
        out: list[dict[str, Any]] = []
        for item_id, row, meta in zip(ids, rows, metas, strict=True):
            if _utf8(item_id, f"id {item_id!r}") > _MAX_TEXT:
                raise ConfigError(f"id {item_id[:40]!r}... is longer than Milvus's {_MAX_TEXT} bytes.")
            text = json.dumps(meta, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            if _utf8(text, f"metadata of id {item_id!r}") > _MAX_TEXT:
                raise ConfigError(
                    f"metadata of id {item_id!r} is {len(text.encode())} bytes as JSON; Milvus keeps at most "
                    f"{_MAX_TEXT} bytes in a text field. Keep large text elsewhere and store a reference."
                )
            out.append({"pk": _pk(item_id), "id": item_id, "vector": row.tolist(), "meta": text,
                        FILTER_FIELD: filter_document(meta, item_id)})
        return out

    def _number(self, records: list[dict[str, Any]], keep: dict[str, int] | None = None) -> None:
        """Give each record its place in the write order: the next numbers of this client's clock, or the place
        the item already has (``keep``: primary key -> seq)."""
        start = max(time.time_ns(), self._last_seq + 1)
        for j, record in enumerate(records):
            record["seq"] = (keep or {}).get(record["pk"], start + j)
        self._last_seq = start + len(records)

    def _ensure_collection(self, dim: int) -> None:
        if not self._exists:
            self._create(dim)

    def _write(self, method: str, records: list[dict[str, Any]]) -> None:
        per_call = max(1, _WRITE_BYTES // (4 * max(1, self._dim or 1)))
        for a in range(0, len(records), per_call):
            self._call(method, self._name, records[a : a + per_call])

    def add(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items (all are checked before any is sent).

        Raises:
            DuplicateIdError: an id already in the collection or repeated in ``ids`` (use :meth:`upsert`).
            DimensionMismatchError: vectors of the wrong dimension.
            InvalidVectorError: zero, NaN or infinite vectors.
            ConfigError: ids that are not non-empty strings; metadata JSON or Milvus cannot hold.
        """
        id_list = check_ids(ids)
        reject_repeats(id_list)
        records = self._records(id_list, vectors, metadata)
        if not id_list:
            return
        existing = self._present(id_list)
        if existing:
            raise DuplicateIdError(
                f"{len(existing)} ids are already in Milvus collection {self._name!r}: {_shown(existing)}; use "
                "upsert() to replace them.",
                ids=existing,
            )
        self._ensure_collection(len(records[0]["vector"]))
        self._number(records)
        self._write("insert", records)

    def upsert(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items and replace existing ones: the vector and the whole metadata. An id repeated in ``ids``
        takes its last occurrence."""
        id_list = check_ids(ids)
        records = self._records(id_list, vectors, metadata)
        if not id_list:
            return
        keep = last_occurrences(id_list)
        if len(keep) < len(records):
            records = [records[j] for j in keep]
        self._ensure_collection(len(records[0]["vector"]))
        pks = [r["pk"] for r in records]
        self._number(records, {r["pk"]: int(r["seq"]) for r in self._query_pks(pks, ["pk", "seq"])})
        self._write("upsert", records)

    def delete(self, ids: str | Iterable[str]) -> int:
        """Remove items (unknown ids are ignored); returns how many were removed."""
        wanted = list(dict.fromkeys(check_ids(ids)))
        present = self._present(wanted)
        pks = [_pk(i) for i in present]
        for a in range(0, len(pks), _EXPR_IDS):
            self._call("delete", self._name, filter=f"pk in {_pk_list(pks[a : a + _EXPR_IDS])}")
            self._deleted = True
        return len(present)

    # --- search ----------------------------------------------------------------------------------------------

    def _search_params(self, k: int) -> dict[str, Any]:
        params: dict[str, Any] = {"ef": max(self._ef, k)} if self._index == "hnsw" else {}
        return {"metric_type": _MILVUS_METRIC[self._metric], "params": params}

    def _search_rows(
        self, queries: npt.NDArray[np.float32], k: int, tree: Filter | None, excluded: list[str]
    ) -> list[Matches]:
        expression = compile_filter(tree)
        n = queries.shape[0]
        if not self._exists or n == 0:
            return [Matches() for _ in range(n)]
        if excluded:
            skip = f"pk not in {_pk_list(sorted({_pk(i) for i in excluded}))}"
            expression = skip if expression is None else f"({expression}) and {skip}"
        if k > _MAX_HITS:
            stored = len(self)
            if stored > _MAX_HITS:
                raise ConfigError(f"Milvus returns at most {_MAX_HITS} hits per query; k={k} is more (the "
                                  f"collection holds {stored} items). Use iter_items() to read everything.")
            k = _MAX_HITS
        out: list[Matches] = []
        for a in range(0, n, _QUERY_BATCH):
            chunk = queries[a : a + _QUERY_BATCH]
            got = self._call("search", self._name, data=chunk.tolist(), anns_field="vector", limit=k,
                             filter=expression or "", output_fields=["id", "meta"],
                             search_params=self._search_params(k))
            for a_query in range(len(got)):
                hits = _plain(got[a_query])
                scores = np.asarray([h["distance"] for h in hits], dtype=np.float64)
                if self._metric == "cosine":  # float32 arithmetic can end just past the ends
                    scores = np.clip(scores, -1.0, 1.0)
                out.append(Matches(ids=[h["entity"]["id"] for h in hits], scores=scores.astype(np.float32),
                                   metadata=[json.loads(h["entity"]["meta"]) for h in hits]))
        return out
