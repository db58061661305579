"""TypesenseIndex: the :class:`~finetune_embed.VectorIndex` API on a Typesense collection (one node or a Raft cluster).

A store ``name`` is two collections: ``name`` holds one document per item (``id``, the vector ``v``, the metadata
as JSON text ``m`` and the filter fields of :mod:`._typesense_filters`), ``name__fe_meta`` one document recording
the dimension, the metric and the model (Typesense 0.24 collections have no metadata of their own).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, cast

import httpx
import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, DuplicateIdError, MissingDependencyError, UnknownIdError
from .._logging import get_logger
from ..index._filters import Filter
from ..index._index import Item
from ..index._matches import Matches
from ..index._vectors import _shown
from ._base import Metric, StoreBase, check_ids, check_metric, last_occurrences, positive, reject_repeats
from ._typesense_filters import ENGINE, compile_filter, document_fields, id_token
from ._typesense_sync import Check, NodeWait, absent, count_is, node_urls, present

try:
    from typesense.client import Client
    from typesense.exceptions import ObjectAlreadyExists, ObjectNotFound
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "finetune_embed.stores.TypesenseIndex needs the typesense client: pip install 'finetune-embed[typesense]'",
        package="typesense",
        extra="typesense",
    ) from exc

__all__ = ["TypesenseIndex"]

_log = get_logger("stores.typesense")

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_META_SUFFIX = "__fe_meta"
_LAYOUT = 1
_DISTANCES: dict[Metric, str] = {"cosine": "cosine", "dot": "ip"}
_WRITE_BATCH = 1_000  # documents per import request
_PAGE = 250  # Typesense's largest per_page
_SEARCHES = 50  # searches per multi_search request (the server's default limit_multi_searches)
_FLAT = 2_147_483_647  # flat_search_cutoff: rank every filtered document exactly (Typesense's largest value)


def _vector_text(row: npt.NDArray[np.float32]) -> str:
    # float32 values written as the float64 that equals them: Typesense reads back the same float32
    return "[" + ",".join(repr(float(x)) for x in row) + "]"


def _client_for(nodes: str | Sequence[str], api_key: str | None, timeout: float) -> Client:
    urls = [nodes] if isinstance(nodes, str) else list(nodes)
    if not urls or not all(isinstance(u, str) and re.fullmatch(r"https?://[^/\s:]+:\d+(/\S*)?", u) for u in urls):
        raise ConfigError(
            "nodes must be a Typesense node URL with its port, such as 'http://127.0.0.1:8108', or a list of them "
            f"(the nodes of a cluster), or a typesense.Client; got {nodes!r}."
        )
    key = api_key if api_key is not None else os.environ.get("TYPESENSE_API_KEY")
    if not key:
        raise ConfigError(
            "Typesense needs an API key: pass api_key=... or set TYPESENSE_API_KEY (the server's --api-key, or a "
            "key made with it)."
        )
    config = {
        "nodes": urls,
        "api_key": key,
        "connection_timeout_seconds": timeout,
        "num_retries": max(3, len(urls) + 1),  # a cluster: every node gets a turn before a request fails
        "retry_interval_seconds": 0.2,
        "healthcheck_interval_seconds": 2,
    }
    return Client(cast(Any, config))


class TypesenseIndex(StoreBase):
    """The :class:`~finetune_embed.VectorIndex` API on a Typesense collection, on one node or a Raft cluster.

    Args:
        nodes: a node URL (``"http://127.0.0.1:8108"``), the URLs of a cluster's nodes (requests go to one and
            move to the next when a node fails; a write sent to a follower is forwarded to the leader), or a
            ``typesense.Client`` you made (left as it is).
        collection: the store's name: letters, digits, ``_``, ``-`` and ``.`` (up to 100). It is the Typesense
            collection of the items; ``<collection>__fe_meta`` records the dimension, metric and model.
        api_key: the key (default: the ``TYPESENSE_API_KEY`` environment variable). Never shown in a repr, a log
            line or an error.
        dim: the vector dimension. Creates the collection up front; otherwise the first ``add`` / ``upsert`` sets
            it, or the existing store's (another raises :class:`~finetune_embed.DimensionMismatchError`).
        metric: ``"cosine"`` (vectors normalised when added; Typesense's ``cosine``) or ``"dot"`` (``ip``).
            Default: the store's, else ``"cosine"``. Scores are ``1 - vector_distance``: the cosine similarity or
            the inner product.
        model: the embedding model of the vectors (recorded; :meth:`search_text` checks it).
        exact: ``True`` (the default): Typesense ranks every document that passes the filter (its flat search,
            ``flat_search_cutoff``), so results are exact. ``False``: its HNSW index, asked for ``candidates``
            neighbours per query (recall grows with it; see docs/vector-stores.md).
        candidates: nearest neighbours the HNSW search collects per query before the best ``k`` are kept
            (``vector_query``'s ``k``; Typesense 0.24 takes no ``ef``). At least ``k`` is used.
        create: create the store when missing; with ``False`` a missing store raises
            :class:`~finetune_embed.ConfigError`.
        timeout: seconds a request may take (a cluster's client moves to the next node after it).
        read_your_writes: on a cluster (more than one node URL, or a client with several nodes), each write
            returns only once every node that answers has applied it, so the next read sees it whichever node
            serves it (Typesense answers a read from the receiving node's own data, and followers apply a write a
            moment after the leader acknowledges it). ``False``: writes return on the leader's acknowledgement and
            reads may trail them. No effect on one node.
        replication_timeout: seconds a write waits for the nodes (``read_your_writes``); a node still behind then
            raises :class:`~finetune_embed.ReplicationLagError` (the write itself is stored).

    Filters run inside Typesense (``filter_by``); a range with a string bound raises
    :class:`~finetune_embed.UnsupportedFilterError`. Connection and server errors are the ``typesense`` client's
    exceptions.

    Example:
        >>> store = TypesenseIndex("http://127.0.0.1:8108", "docs", api_key=key, dim=1536)  # doctest: +SKIP
        >>> store.add(["a", "b"], vectors, metadata=[{"lang": "en"}, {"lang": "fr"}])  # doctest: +SKIP
        >>> store.search(query, k=5, where={"lang": "en"}).ids  # doctest: +SKIP
    """

    _engine = ENGINE

    def __init__(
        self,
        nodes: str | Sequence[str] | Client,
        collection: str = "embeddings",
        *,
        api_key: str | None = None,
        dim: int | None = None,
        metric: Metric | None = None,
        model: str | None = None,
        exact: bool = True,
        candidates: int = 800,
        create: bool = True,
        timeout: float = 10.0,
        read_your_writes: bool = True,
        replication_timeout: float = 30.0,
    ) -> None:
        if not isinstance(collection, str) or not _NAME.fullmatch(collection) or collection.endswith(_META_SUFFIX):
            raise ConfigError(
                f"collection must be 1-100 letters, digits, '_', '-' or '.', not ending in {_META_SUFFIX!r} (the "
                f"store's bookkeeping collection); got {collection!r}."
            )
        if metric is not None:
            check_metric(metric)
        if dim is not None:
            positive("dim", dim)
        if not isinstance(exact, bool):
            raise ConfigError(f"exact must be True or False, got {exact!r}.")
        self.exact = exact
        self.candidates = positive("candidates", candidates)
        for label, seconds in (("timeout", timeout), ("replication_timeout", replication_timeout)):
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
                raise ConfigError(f"{label} must be a positive number of seconds, got {seconds!r}.")
        if not isinstance(read_your_writes, bool):
            raise ConfigError(f"read_your_writes must be True or False, got {read_your_writes!r}.")
        self._name = collection
        self._meta_name = collection + _META_SUFFIX
        if isinstance(nodes, Client):
            self._client, self._timeout = nodes, float(nodes.config.connection_timeout_seconds or timeout)
        else:
            self._client, self._timeout = _client_for(nodes, api_key, float(timeout)), float(timeout)
        urls = node_urls(self._client.config)
        self._nodes_wait = (
            NodeWait(urls, self._client.config.api_key, timeout=float(replication_timeout),
                     request_timeout=self._timeout)
            if read_your_writes and len(urls) > 1 else None
        )  # fmt: skip
        self._numeric_fields: set[str] = set()
        self._open(dim, metric, model, create)

    # --- opening and creating ----------------------------------------------------------------------------------

    def _open(self, dim: int | None, metric: Metric | None, model: str | None, create: bool) -> None:
        stored = self._read_meta()
        if stored is None:
            try:
                self._client.collections[self._name].retrieve()
            except ObjectNotFound:
                pass
            else:
                raise ConfigError(
                    f"Typesense collection {self._name!r} was not created by finetune_embed (there is no "
                    f"{self._meta_name!r} beside it), so its documents lack the fields our filters need. Copy the "
                    "data into a new store with TypesenseIndex.add()."
                )
            if not create:
                raise ConfigError(f"Typesense holds no store {self._name!r}; pass create=True to create it.")
            self._dim, self._metric, self._model = dim, metric or "cosine", model
            if dim is not None:
                self._create()
            return
        self._check_dim(dim, int(stored["dim"]), self._name)
        if metric is not None and metric != stored["metric"]:
            raise ConfigError(
                f"Typesense store {self._name!r} was created with metric={stored['metric']!r}; open it with that "
                f"metric (got {metric!r})."
            )
        if model is not None and stored.get("model") and model != stored["model"]:
            raise ConfigError(
                f"Typesense store {self._name!r} holds {stored['model']!r} embeddings, not {model!r}; vectors from "
                "different models cannot be compared."
            )
        self._dim, self._metric, self._model = int(stored["dim"]), stored["metric"], stored.get("model") or model
        self._refresh_fields()
        if self._model != stored.get("model"):
            self._write_meta()

    def _read_meta(self) -> dict[str, Any] | None:
        try:
            return dict(self._client.collections[self._meta_name].documents["store"].retrieve())
        except ObjectNotFound:
            return None

    def _write_meta(self) -> None:
        doc = {"id": "store", "layout": _LAYOUT, "dim": self._dim, "metric": self._metric, "model": self._model or ""}
        self._client.collections[self._meta_name].documents.upsert(doc)  # type: ignore[arg-type]
        self._settle("the store's new model", present(self._meta_path, "model", self._model or ""))

    @property
    def _meta_path(self) -> str:
        return f"/collections/{self._meta_name}/documents/store"

    def _settle(self, what: str, *checks: Check) -> None:
        """On a cluster with ``read_your_writes``: wait until every node has applied the write (see
        :mod:`._typesense_sync`)."""
        if self._nodes_wait is not None:
            self._nodes_wait.until(f"{what} (store {self._name!r})", *checks)

    def _create(self) -> None:
        """Create the item collection (a vector field, the filter fields) and record the store in its bookkeeping
        collection. Another process creating the same store at the same moment is fine when it asks for the same
        dimension and metric; otherwise the second one raises."""
        assert self._dim is not None
        schema = {
            "name": self._name,
            "fields": [
                {"name": "v", "type": "float[]", "num_dim": self._dim, "vec_dist": _DISTANCES[self._metric]},
                {"name": "t", "type": "string[]"},
                {"name": "n_.*", "type": "int64", "optional": True},
            ],
        }
        try:
            self._client.collections.create(schema)  # type: ignore[arg-type]
            _log.info("created Typesense collection %s (dim=%d, %s)", self._name, self._dim, self._metric)
        except ObjectAlreadyExists:  # created by another process since we looked: it must agree
            fields = self._client.collections[self._name].retrieve().get("fields") or []
            vector: dict[str, Any] = next((dict(f) for f in fields if f.get("name") == "v"), {})
            self._check_dim(self._dim, int(vector.get("num_dim") or 0) or None, self._name)
            if vector.get("vec_dist", "cosine") != _DISTANCES[self._metric]:
                raise ConfigError(
                    f"Typesense store {self._name!r} was just created by another writer with vec_dist "
                    f"{vector.get('vec_dist')!r}, not for metric={self._metric!r}."
                ) from None
        try:
            self._client.collections.create(
                {"name": self._meta_name, "fields": [{"name": "layout", "type": "int32"}]}
            )
        except ObjectAlreadyExists:
            pass
        doc = {"id": "store", "layout": _LAYOUT, "dim": self._dim, "metric": self._metric, "model": self._model or ""}
        try:
            self._client.collections[self._meta_name].documents.create(doc)  # type: ignore[arg-type]
        except ObjectAlreadyExists:  # the other writer recorded the same store
            pass
        self._settle("its creation", present(f"/collections/{self._name}"), present(self._meta_path))

    def _refresh_fields(self) -> None:
        """Learn which numeric filter fields (``n_...``) the collection has now (another writer may add some)."""
        fields = self._client.collections[self._name].retrieve().get("fields") or []
        self._numeric_fields = {str(f["name"]) for f in fields if str(f.get("name", "")).startswith("n_")} - {"n_.*"}

    # --- properties and lifetime -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The store's name (its item collection)."""
        return self._name

    @property
    def client(self) -> Client:
        """The ``typesense.Client`` (for what this API does not cover)."""
        return self._client

    def __repr__(self) -> str:
        model = f", model={self._model!r}" if self._model else ""
        mode = "exact" if self.exact else f"hnsw, candidates={self.candidates}"
        return f"TypesenseIndex(collection={self._name!r}, dim={self._dim}, metric={self._metric!r}{model}, {mode})"

    def close(self) -> None:
        """Nothing to release: the client opens a connection per request. The data stays in Typesense."""

    def __enter__(self) -> TypesenseIndex:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def drop(self) -> None:
        """Delete the store: its item collection and its bookkeeping collection."""
        for name in (self._name, self._meta_name):
            try:
                self._client.collections[name].delete()
            except ObjectNotFound:
                pass
        self._settle("its deletion", absent(f"/collections/{self._name}"), absent(f"/collections/{self._meta_name}"))
        self._numeric_fields.clear()

    # --- reading -----------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        if self._dim is None:
            return 0
        try:
            return int(self._client.collections[self._name].retrieve().get("num_documents", 0))
        except ObjectNotFound:
            return 0

    def _find(self, ids: Sequence[str], fields: str) -> dict[str, dict[str, Any]]:
        """The stored documents of ``ids`` (those that exist), with ``fields``."""
        found: dict[str, dict[str, Any]] = {}
        if self._dim is None or not ids:
            return found
        searches = [
            {"collection": self._name, "q": "*", "per_page": _PAGE, "include_fields": fields,
             "filter_by": "t:=[" + ",".join(id_token(i) for i in ids[a : a + _PAGE]) + "]"}
            for a in range(0, len(ids), _PAGE)
        ]  # fmt: skip
        for result in self._multi_search(searches, missing_ok=True):
            for hit in result.get("hits") or []:
                found[hit["document"]["id"]] = hit["document"]
        return found

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, str) or not item_id or "\x00" in item_id:
            return False
        return item_id in self._find([item_id], "id")

    def get(self, item_id: str) -> Item:
        """The stored float32 vector (unit length, for cosine) and the metadata of ``item_id``.

        Raises:
            UnknownIdError: ``item_id`` is not in the store.
        """
        (checked,) = check_ids(item_id, "item_id")
        doc = self._find([checked], "id,v,m").get(checked)
        if doc is None:
            raise UnknownIdError(f"id {item_id!r} is not in Typesense store {self._name!r}.", ids=[item_id])
        return Item(np.asarray(doc["v"], dtype=np.float32), json.loads(doc["m"]))

    def iter_items(
        self, batch_size: int = 1_000
    ) -> Iterator[tuple[list[str], npt.NDArray[np.float32], list[dict[str, Any]]]]:
        """Every item in insertion order, ``batch_size`` at a time: ``(ids, vectors, metadata)``, streamed from
        Typesense's export endpoint (items written meanwhile may or may not appear)."""
        positive("batch_size", batch_size)
        if self._dim is None:
            return
        ids: list[str] = []
        rows: list[list[float]] = []
        metas: list[dict[str, Any]] = []
        for line in self._export_lines():
            doc = json.loads(line)
            ids.append(doc["id"])
            rows.append(doc["v"])
            metas.append(json.loads(doc["m"]))
            if len(ids) == batch_size:
                yield ids, np.asarray(rows, dtype=np.float32).reshape(len(ids), -1), metas
                ids, rows, metas = [], [], []
        if ids:
            yield ids, np.asarray(rows, dtype=np.float32).reshape(len(ids), -1), metas

    def _export_lines(self) -> Iterator[str]:
        """The export's JSON lines, streamed (the client's ``export`` reads the whole collection into one string).
        Each node is tried in turn until one answers; when none does, the last one's ``httpx`` error is raised."""
        config = self._client.config
        last: Exception | None = None
        for node in config.nodes:
            url = f"{node.protocol}://{node.host}:{node.port}{node.path}/collections/{self._name}/documents/export"
            headers = {"X-TYPESENSE-API-KEY": config.api_key}
            try:
                with httpx.stream("GET", url, params={"include_fields": "id,v,m"}, headers=headers,
                                  timeout=self._timeout) as response:  # fmt: skip
                    if response.status_code == 404:
                        return
                    response.raise_for_status()
                    for line in response.iter_lines():
                        if line.strip():
                            yield line
                return
            except httpx.TransportError as exc:  # this node is down: the next one
                last = exc
        assert last is not None
        raise last  # every node failed: the last node's error, as the client's other calls raise theirs

    # --- writing -----------------------------------------------------------------------------------------------

    def _prepare(
        self, ids: list[str], vectors: npt.ArrayLike, metadata: Any
    ) -> tuple[npt.NDArray[np.float32], list[dict[str, Any]]]:
        rows = self._rows(ids, vectors)
        metas = self._metadata(ids, metadata)
        return rows, metas

    def _ensure_created(self, dim: int) -> None:
        if self._dim is None:
            self._dim = dim
            try:
                self._create()
            except BaseException:
                self._dim = None
                raise

    def _documents(
        self, ids: list[str], rows: npt.NDArray[np.float32], metas: list[dict[str, Any]], tag: str | None
    ) -> list[str]:
        """The import lines; ``tag`` (a token of this write call, on a cluster) joins each document's ``t``."""
        lines = []
        for item_id, row, meta in zip(ids, rows, metas, strict=True):
            fields = document_fields(item_id, meta)
            if tag is not None:
                fields["t"] = [*fields["t"], tag]
            self._numeric_fields.update(name for name in fields if name.startswith("n_"))
            text = json.dumps(meta, ensure_ascii=False, allow_nan=False)
            head = json.dumps({"id": item_id, "m": text, **fields}, ensure_ascii=False, allow_nan=False)
            lines.append(head[:-1] + ',"v":' + _vector_text(row) + "}")
        return lines

    def _write(self, ids: list[str], rows: npt.NDArray[np.float32], metas: list[dict[str, Any]], action: str) -> None:
        """Import the items; on a cluster with ``read_your_writes``, each document carries a token of this call
        (``w`` + random hex: never equal to a filter token, which is hex only), and the call returns once every node
        holds all of them."""
        tag = None if self._nodes_wait is None else "w" + secrets.token_hex(10)
        self._import(self._documents(ids, rows, metas, tag), action)
        if tag is not None:
            self._settle(f"the {action} of {len(ids)} items", count_is(self._name, [f"t:={tag}"], len(ids)))

    def _import(self, lines: list[str], action: str) -> None:
        documents = self._client.collections[self._name].documents
        for a in range(0, len(lines), _WRITE_BATCH):
            reply = documents.import_("\n".join(lines[a : a + _WRITE_BATCH]), cast(Any, {"action": action}))
            failed = [json.loads(r) for r in str(reply).splitlines() if r.strip()]
            failed = [r for r in failed if not r.get("success")]
            if failed:
                exists = [r for r in failed if "already exists" in str(r.get("error", ""))]
                if exists and len(exists) == len(failed):
                    ids = [json.loads(r.get("document", "{}")).get("id", "?") for r in exists]
                    raise DuplicateIdError(
                        f"ids already in Typesense store {self._name!r} (added by another writer since the check): "
                        f"{_shown(ids)}; the other items of this call were written. Use upsert to replace them.",
                        ids=ids,
                    )
                raise ConfigError(
                    f"Typesense refused {len(failed)} documents of store {self._name!r}; the first: "
                    f"{failed[0].get('error')}"
                )

    def add(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items: every check (ids, vectors, metadata, ids already stored) runs before anything is written.

        Raises:
            DuplicateIdError: an id repeats, or is already in the store (use :meth:`upsert`).
            DimensionMismatchError, InvalidVectorError, ConfigError: bad vectors, ids or metadata.
        """
        id_list = check_ids(ids)
        reject_repeats(id_list)
        rows, metas = self._prepare(id_list, vectors, metadata)
        if not id_list:
            return
        present = list(self._find(id_list, "id"))
        if present:
            raise DuplicateIdError(
                f"ids already in Typesense store {self._name!r}: {_shown(present)}; use upsert to replace them.",
                ids=present,
            )
        self._ensure_created(int(rows.shape[1]))
        self._write(id_list, rows, metas, "create")

    def upsert(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items and replace existing ones: the vector and the whole metadata (Typesense's ``upsert``
        replaces the document). An id repeated in one call keeps its last entry. Items are written 1,000 per
        request; if a request fails, the ones before it are stored and the same ``upsert`` again completes it."""
        id_list = check_ids(ids)
        rows, metas = self._prepare(id_list, vectors, metadata)
        if not id_list:
            return
        keep = last_occurrences(id_list)
        if len(keep) < len(id_list):
            id_list, rows, metas = [id_list[j] for j in keep], rows[keep], [metas[j] for j in keep]
        self._ensure_created(int(rows.shape[1]))
        self._write(id_list, rows, metas, "upsert")

    def delete(self, ids: str | Iterable[str]) -> int:
        """Remove items (unknown ids are ignored); returns how many were removed."""
        wanted = list(dict.fromkeys(check_ids(ids)))
        if self._dim is None or not wanted:
            return 0
        removed = 0
        documents = self._client.collections[self._name].documents
        pages = [wanted[a : a + _PAGE] for a in range(0, len(wanted), _PAGE)]
        clauses = ["t:=[" + ",".join(id_token(i) for i in page) + "]" for page in pages]
        for clause in clauses:
            reply = documents.delete({"filter_by": clause})
            removed += int(reply.get("num_deleted", 0))
        if removed:
            self._settle(f"the deletion of {removed} items", count_is(self._name, clauses, 0))
        return removed

    # --- search ------------------------------------------------------------------------------------------------

    def _has_field(self, name: str) -> bool:
        if self._dim is None:
            return False
        if name not in self._numeric_fields:  # another writer may have added it: look again
            self._refresh_fields()
        return name in self._numeric_fields

    def _multi_search(self, searches: list[dict[str, Any]], *, missing_ok: bool = False) -> list[dict[str, Any]]:
        """The results of ``searches``, 50 per request; with ``missing_ok`` a collection that is not there (yet: a
        cluster node that has not applied its creation) gives no hits."""
        results: list[dict[str, Any]] = []
        for a in range(0, len(searches), _SEARCHES):
            reply: Any = self._client.multi_search.perform(cast(Any, {"searches": searches[a : a + _SEARCHES]}), {})
            for found in reply["results"]:
                result = dict(found)
                if missing_ok and result.get("code") == 404:
                    result = {"hits": []}
                if "error" in result:
                    raise ConfigError(f"Typesense refused a search of store {self._name!r}: {result['error']}")
                results.append(dict(result))
        return results

    def _search_rows(
        self, queries: npt.NDArray[np.float32], k: int, tree: Filter | None, excluded: list[str]
    ) -> list[Matches]:
        n = queries.shape[0]
        filter_by = compile_filter(tree, self._has_field, exclude=excluded, always=self.exact)
        if self._dim is None or n == 0:
            return [Matches() for _ in range(n)]
        pages = -(-k // _PAGE)
        per_page = min(k, _PAGE)
        reach = k if self.exact else max(k, self.candidates)
        options = f", flat_search_cutoff:{_FLAT}" if self.exact else ""
        searches = []
        for row in queries:
            vector_query = f"v:({_vector_text(row)}, k:{max(reach, per_page * pages)}{options})"
            for page in range(1, pages + 1):
                search = {"collection": self._name, "q": "*", "vector_query": vector_query, "per_page": per_page,
                          "page": page, "include_fields": "id,m"}  # fmt: skip
                if filter_by is not None:
                    search["filter_by"] = filter_by
                searches.append(search)
        results = self._multi_search(searches)
        out = []
        for i in range(n):
            hits = [hit for result in results[i * pages : (i + 1) * pages] for hit in result.get("hits") or []][:k]
            scores = np.asarray([1.0 - float(hit["vector_distance"]) for hit in hits], dtype=np.float64)
            if self._metric == "cosine":
                scores = np.clip(scores, -1.0, 1.0)
            out.append(
                Matches(
                    ids=[hit["document"]["id"] for hit in hits],
                    scores=scores.astype(np.float32),
                    metadata=[json.loads(hit["document"]["m"]) for hit in hits],
                )
            )
        return out
