"""ChromaIndex: the :class:`~finetune_embed.VectorIndex` API over a Chroma collection (embedded or a server).

Records: the id, the float32 vector (unit length for cosine) and the flattened metadata of
:mod:`._chroma_layout`. The collection's own metadata records the layout, the metric, the dimension and the
model. Chroma always searches an HNSW graph (``hnsw:space`` ``cosine`` or ``ip``); see :class:`ChromaIndex`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import httpx
import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, DuplicateIdError, MissingDependencyError, UnknownIdError
from ..index._filters import Filter
from ..index._index import Item
from ..index._matches import Matches
from ..index._vectors import _shown
from ._base import Metric, StoreBase, check_ids, check_metric, last_occurrences, positive, reject_repeats
from ._chroma_filters import ENGINE, to_chroma_where
from ._chroma_layout import flatten, restore

try:
    import chromadb
    from chromadb.config import Settings
    from chromadb.errors import NotFoundError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "finetune_embed.stores.ChromaIndex needs chromadb: pip install 'finetune-embed[chroma]'",
        package="chromadb",
        extra="chroma",
    ) from exc

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.collection_configuration import CreateCollectionConfiguration
    from chromadb.api.models.Collection import Collection

__all__ = ["ChromaIndex"]

_LAYOUT = "fe:layout"
_LAYOUT_VERSION = 1
_SPACES: dict[str, Metric] = {"cosine": "cosine", "ip": "dot"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


def _check_name(name: str) -> str:
    ok = isinstance(name, str) and _NAME.match(name) is not None and ".." not in name
    if ok:
        try:
            ipaddress.IPv4Address(name)
            ok = False
        except ValueError:
            pass
    if not ok:
        raise ConfigError(
            f"Chroma collection names have 3 to 512 characters from a-z, A-Z, 0-9, '.', '_' and '-', start and end "
            f"with a letter or digit, hold no '..' and are not an IPv4 address; got {name!r}."
        )
    return name


def _client_for(path: str | None, url: str | None) -> ClientAPI:
    settings = Settings(anonymized_telemetry=False)
    if path is not None:
        return chromadb.PersistentClient(path=str(path), settings=settings)
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"url must look like http://host:port (a Chroma server), got {url!r}.")
    port = parts.port or (443 if parts.scheme == "https" else 8000)
    return chromadb.HttpClient(host=parts.hostname, port=port, ssl=parts.scheme == "https", settings=settings)


def _close_client(client: ClientAPI) -> None:
    """``client.close()``, and the HTTP connection pools of an HTTP client: chromadb 1.5 stops the client's
    systems but leaves their pools' sockets open (an HTTP client's systems are never shared with another client:
    each gets its own identifier)."""
    servers = [getattr(holder, "_server", None) for holder in (client, getattr(client, "_admin_client", None))]
    close = getattr(client, "close", None)  # chromadb's Client has it, its ClientAPI protocol does not
    if callable(close):
        close()
    for server in servers:
        session = getattr(server, "_session", None)
        if isinstance(session, httpx.Client):
            session.close()


class ChromaIndex(StoreBase):
    """The :class:`~finetune_embed.VectorIndex` API on a Chroma collection.

    Args:
        collection: the collection name (3–512 characters: letters, digits, ``.``, ``_``, ``-``).
        path: a folder for an embedded Chroma (``chromadb.PersistentClient``), or
        url: a Chroma server, ``http://host:port`` (``chroma run --path DIR --port 8000``), or
        client: any chromadb client you made (Chroma Cloud, headers, an ``EphemeralClient``), used as it is
            and left open. Exactly one of ``path``, ``url`` and ``client``.
        dim: the vector dimension (default: the collection's, else set by the first ``add`` / ``upsert``).
        metric: ``"cosine"`` (vectors normalised when added; Chroma space ``cosine``) or ``"dot"`` (space
            ``ip``). Scores are ``1 - distance``: the cosine similarity or the inner product. Default: the
            collection's, else ``"cosine"``.
        model: the embedding model the vectors come from (recorded; :meth:`search_text` checks it).
        create: create the collection when it does not exist (else :class:`~finetune_embed.ConfigError`).
        ef_search: HNSW candidates per query, a setting of the collection (Chroma's default 100). Setting it
            changes the collection for every client. Higher: slower and closer to exact; at least the
            number of items in the collection, the search visits every item the graph reaches (in the tests:
            the exact answer).
        ef_construction, max_neighbors: HNSW build settings for a new collection (Chroma's defaults 100, 16).

    Chroma has no exact mode: every search goes through its HNSW graph, with the ``where`` filter applied
    inside the search (so ``k`` hits come back when ``k`` items match). Writes are checked before anything is
    sent and go out in batches of Chroma's maximum size; another client writing the same ids at the same time
    can race with the duplicate check of :meth:`add` and the metadata replacement of :meth:`upsert`.

    Example:
        >>> store = ChromaIndex("docs", path="chroma-data", dim=1536)  # doctest: +SKIP
        >>> store.add(["a", "b"], vectors, metadata=[{"lang": "en"}, {"lang": "fr"}])  # doctest: +SKIP
        >>> store.search(query, k=5, where={"lang": "en"}).ids  # doctest: +SKIP
    """

    _engine = ENGINE

    def __init__(
        self,
        collection: str = "embeddings",
        *,
        path: str | None = None,
        url: str | None = None,
        client: ClientAPI | None = None,
        dim: int | None = None,
        metric: Metric | None = None,
        model: str | None = None,
        create: bool = True,
        ef_search: int | None = None,
        ef_construction: int | None = None,
        max_neighbors: int | None = None,
    ) -> None:
        self._name = _check_name(collection)
        if sum(x is not None for x in (path, url, client)) != 1:
            raise ConfigError("give exactly one of path= (embedded Chroma), url= (a Chroma server) and client=.")
        if metric is not None:
            check_metric(metric)
        positive("dim", dim)
        positive("ef_search", ef_search)
        positive("ef_construction", ef_construction)
        positive("max_neighbors", max_neighbors, 2)
        self._owns = client is None
        self._client: ClientAPI = client if client is not None else _client_for(path, url)
        try:
            self._collection = self._open(dim, metric, model, create, ef_search, ef_construction, max_neighbors)
        except BaseException:
            self.close()
            raise
        self._batch = max(1, int(self._client.get_max_batch_size()))

    def _open(
        self,
        dim: int | None,
        metric: Metric | None,
        model: str | None,
        create: bool,
        ef_search: int | None,
        ef_construction: int | None,
        max_neighbors: int | None,
    ) -> Collection:
        try:
            col = self._client.get_collection(self._name, embedding_function=None)
        except NotFoundError:
            if not create:
                raise ConfigError(
                    f"Chroma collection {self._name!r} does not exist; pass create=True to create it."
                ) from None
            self._dim, self._metric, self._model = dim, metric or "cosine", model
            hnsw: dict[str, Any] = {"space": "cosine" if self._metric == "cosine" else "ip"}
            for key, value in (("ef_search", ef_search), ("ef_construction", ef_construction),
                               ("max_neighbors", max_neighbors)):
                if value is not None:
                    hnsw[key] = value
            return self._client.create_collection(
                self._name,
                configuration=cast("CreateCollectionConfiguration", {"hnsw": hnsw}),
                metadata=self._own_metadata(),
            )  # Chroma records its default embedding function, which is never called: every call passes vectors
        info = dict(col.metadata or {})
        if info.get(_LAYOUT) != _LAYOUT_VERSION:
            raise ConfigError(
                f"Chroma collection {self._name!r} was not created by finetune_embed (its metadata has no "
                f"{_LAYOUT!r}), so its records lack the JSON copy and type keys our filters need. Copy the data "
                "into a new collection with ChromaIndex.add()."
            )
        space = (col.configuration.get("hnsw") or {}).get("space")
        stored_metric = _SPACES.get(str(space))
        if stored_metric is None:
            raise ConfigError(f"Chroma collection {self._name!r} uses space {space!r}; ChromaIndex reads cosine / ip.")
        if metric is not None and metric != stored_metric:
            raise ConfigError(
                f"Chroma collection {self._name!r} was created with metric={stored_metric!r}; open it with that "
                f"metric (got {metric!r})."
            )
        stored_model = info.get("fe:model")
        if stored_model is not None and model is not None and stored_model != model:
            raise ConfigError(
                f"Chroma collection {self._name!r} holds {stored_model!r} embeddings, not {model!r}; vectors from "
                "different models cannot be compared."
            )
        stored_dim = info.get("fe:dim")
        self._check_dim(dim, stored_dim if isinstance(stored_dim, int) else None, self._name)
        self._metric = stored_metric
        self._dim = stored_dim if isinstance(stored_dim, int) else dim
        self._model = stored_model if isinstance(stored_model, str) else model
        if self._dim != stored_dim or self._model != stored_model:
            col.modify(metadata=self._own_metadata())
        if ef_search is not None and (col.configuration.get("hnsw") or {}).get("ef_search") != ef_search:
            col.modify(configuration={"hnsw": {"ef_search": ef_search}})
        return col

    def _own_metadata(self) -> dict[str, str | int]:
        meta: dict[str, str | int] = {_LAYOUT: _LAYOUT_VERSION, "fe:metric": self._metric}
        if self._dim is not None:
            meta["fe:dim"] = self._dim
        if self._model is not None:
            meta["fe:model"] = self._model
        return meta

    # --- properties and lifetime -----------------------------------------------------------------------------

    @property
    def collection(self) -> Collection:
        """The chromadb ``Collection`` (for what this API does not cover)."""
        return self._collection

    @property
    def name(self) -> str:
        """The collection name."""
        return self._name

    @property
    def ef_search(self) -> int | None:
        """HNSW candidates per query, as the collection is configured now."""
        value = (self._collection.configuration.get("hnsw") or {}).get("ef_search")
        return value if isinstance(value, int) else None

    def __repr__(self) -> str:
        model = f", model={self._model!r}" if self._model else ""
        return f"ChromaIndex(collection={self._name!r}, dim={self._dim}, metric={self._metric!r}{model})"

    def close(self) -> None:
        """Close the client if this index made it (a client you passed in stays open); the data stays."""
        if self._owns and getattr(self, "_client", None) is not None:
            _close_client(self._client)
            self._owns = False

    def __enter__(self) -> ChromaIndex:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- reading ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._collection.count())

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, str) or not item_id or "\x00" in item_id:
            return False
        return bool(self._collection.get(ids=[item_id], include=[])["ids"])

    def _present(self, ids: Sequence[str]) -> list[str]:
        found: list[str] = []
        for a in range(0, len(ids), self._batch):
            found += self._collection.get(ids=list(ids[a : a + self._batch]), include=[])["ids"]
        return found

    def get(self, item_id: str) -> Item:
        """The stored float32 vector (unit length, for cosine) and the metadata of ``item_id``.

        Raises:
            UnknownIdError: ``item_id`` is not in the collection.
        """
        (checked,) = check_ids(item_id, "item_id")
        got = self._collection.get(ids=[checked], include=["embeddings", "metadatas"])
        if not got["ids"]:
            raise UnknownIdError(f"id {item_id!r} is not in Chroma collection {self._name!r}.", ids=[item_id])
        vectors = got["embeddings"]
        metas = got["metadatas"]
        assert vectors is not None
        assert metas is not None
        return Item(np.asarray(vectors[0], dtype=np.float32), restore(metas[0]))

    def iter_items(
        self, batch_size: int = 1_000
    ) -> Iterator[tuple[list[str], npt.NDArray[np.float32], list[dict[str, Any]]]]:
        """Every item in insertion order, ``batch_size`` at a time: ``(ids, vectors, metadata)`` (pages by
        offset: writes during the iteration may shift it)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        size = min(batch_size, self._batch)
        offset = 0
        while True:
            got = self._collection.get(limit=size, offset=offset, include=["embeddings", "metadatas"])
            ids = list(got["ids"])
            if ids:
                vectors = got["embeddings"]
                metas = got["metadatas"]
                assert vectors is not None
                assert metas is not None
                yield ids, np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1), [restore(m) for m in metas]
            if len(ids) < size:
                return
            offset += len(ids)

    # --- writing ---------------------------------------------------------------------------------------------

    def _prepare(
        self, ids: list[str], vectors: npt.ArrayLike, metadata: Any
    ) -> tuple[npt.NDArray[np.float32], list[dict[str, Any]], list[dict[str, Any]]]:
        rows = self._rows(ids, vectors)
        metas = self._metadata(ids, metadata)
        return rows, metas, [flatten(m, i) for m, i in zip(metas, ids, strict=True)]

    def _ensure_dim(self, dim: int) -> None:
        if self._dim is None:
            self._dim = dim
            self._collection.modify(metadata=self._own_metadata())

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
            ConfigError: ids that are not non-empty strings; metadata JSON cannot hold.
        """
        id_list = check_ids(ids)
        reject_repeats(id_list)
        rows, _, records = self._prepare(id_list, vectors, metadata)
        if not id_list:
            return
        existing = self._present(id_list)
        if existing:
            raise DuplicateIdError(
                f"{len(existing)} ids are already in Chroma collection {self._name!r}: {_shown(existing)}; use "
                "upsert() to replace them.",
                ids=existing,
            )
        self._ensure_dim(rows.shape[1])
        for a in range(0, len(id_list), self._batch):
            b = a + self._batch
            self._collection.add(ids=id_list[a:b], embeddings=rows[a:b], metadatas=records[a:b])  # type: ignore[arg-type]

    def upsert(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items and replace existing ones: the vector and the whole metadata (Chroma's own upsert
        merges metadata; here keys that are gone are removed). An id repeated in ``ids`` takes its last
        occurrence."""
        id_list = check_ids(ids)
        rows, _, records = self._prepare(id_list, vectors, metadata)
        if not id_list:
            return
        keep = last_occurrences(id_list)
        if len(keep) < len(id_list):
            id_list, rows, records = [id_list[j] for j in keep], rows[keep], [records[j] for j in keep]
        self._ensure_dim(rows.shape[1])
        for a in range(0, len(id_list), self._batch):
            b = a + self._batch
            chunk_ids, chunk_records = id_list[a:b], records[a:b]
            old = self._collection.get(ids=chunk_ids, include=["metadatas"])
            old_keys = {i: set(m or {}) for i, m in zip(old["ids"], old["metadatas"] or [], strict=True)}
            payload: list[dict[str, Any]] = []
            for item_id, record in zip(chunk_ids, chunk_records, strict=True):
                gone = old_keys.get(item_id, set()) - set(record)
                payload.append({**record, **dict.fromkeys(gone)})  # None removes a key in Chroma
            self._collection.upsert(ids=chunk_ids, embeddings=rows[a:b], metadatas=payload)  # type: ignore[arg-type]

    def delete(self, ids: str | Iterable[str]) -> int:
        """Remove items (unknown ids are ignored); returns how many were removed."""
        wanted = list(dict.fromkeys(check_ids(ids)))
        present = self._present(wanted)
        for a in range(0, len(present), self._batch):
            self._collection.delete(ids=present[a : a + self._batch])
        return len(present)

    # --- search ----------------------------------------------------------------------------------------------

    def _search_rows(
        self, queries: npt.NDArray[np.float32], k: int, tree: Filter | None, excluded: list[str]
    ) -> list[Matches]:
        where = to_chroma_where(tree)
        n = queries.shape[0]
        if self._dim is None or n == 0:
            return [Matches() for _ in range(n)]
        skip = set(excluded)
        # excluded ids are dropped from a longer list: the engine cannot exclude ids, and k hits still come back
        fetch = k + len(skip)
        out: list[Matches] = []
        for a in range(0, n, self._batch):
            got = self._collection.query(
                query_embeddings=queries[a : a + self._batch],
                n_results=fetch,
                where=where,
                include=["distances", "metadatas"],
            )
            distances, metas = got["distances"], got["metadatas"]
            assert distances is not None
            assert metas is not None
            for ids_i, dist_i, meta_i in zip(got["ids"], distances, metas, strict=True):
                keep = [j for j, item_id in enumerate(ids_i) if item_id not in skip][:k]
                scores = 1.0 - np.asarray([dist_i[j] for j in keep], dtype=np.float64)
                if self._metric == "cosine":  # float32 distances can end just past the ends: -1e-7 for itself
                    scores = np.clip(scores, -1.0, 1.0)
                out.append(
                    Matches(
                        ids=[ids_i[j] for j in keep],
                        scores=scores.astype(np.float32),
                        metadata=[restore(meta_i[j]) for j in keep],
                    )
                )
        return out
