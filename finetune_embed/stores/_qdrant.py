"""QdrantIndex: the :class:`~finetune_embed.VectorIndex` API over a Qdrant collection (server, Cloud or the
client's local mode).

Points: ``uuid5`` of the string id, the float32 vector (unit length for cosine), the payload of
:mod:`._qdrant_layout`. The collection's metadata records the layout, the metric and the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, DuplicateIdError, MissingDependencyError, UnknownIdError
from ..index._filters import Filter
from ..index._index import Item
from ..index._matches import Matches
from ..index._vectors import _shown
from ._base import Metric, StoreBase, check_ids, check_metric, last_occurrences, reject_repeats

try:
    from qdrant_client import QdrantClient
    from qdrant_client.http import models
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError(
        "finetune_embed.stores.QdrantIndex needs qdrant-client: pip install 'finetune-embed[qdrant]'",
        package="qdrant-client",
        extra="qdrant",
    ) from exc

from ._qdrant_filters import ENGINE, to_qdrant_filter
from ._qdrant_layout import ID_KEY, JSON_KEY, SEQ_KEY, payload, point_id, restore

__all__ = ["QdrantIndex"]

_LAYOUT = "fe_layout"
_LAYOUT_VERSION = 1
_DISTANCES: dict[Metric, models.Distance] = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT}
_READ = [ID_KEY, JSON_KEY]
_BATCH = 1_000


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    return value


class QdrantIndex(StoreBase):
    """The :class:`~finetune_embed.VectorIndex` API on a Qdrant collection.

    Args:
        collection: the collection name.
        url: a Qdrant server or Qdrant Cloud cluster, ``http://host:6333`` (with ``api_key`` for Cloud), or
        path: a folder for the client's local mode (a pure-Python re-implementation of Qdrant, one process at a
            time; fine for tests and small data), or
        client: any ``QdrantClient`` you made, used as it is and left open. Exactly one of the three.
        api_key: the API key for ``url`` (never shown in a repr, log line or error).
        dim: the vector dimension (default: the collection's, else set by the first ``add`` / ``upsert``, which
            creates the collection).
        metric: ``"cosine"`` (vectors normalised when added; distance ``Cosine``) or ``"dot"`` (``Dot``); the
            score is Qdrant's: the cosine similarity or the inner product. Default: the collection's, else
            ``"cosine"``.
        model: the embedding model the vectors come from (recorded; :meth:`search_text` checks it).
        create: create the collection when it does not exist (else :class:`~finetune_embed.ConfigError`).
        exact: search exactly (Qdrant's ``exact=True``: a full scan of the filtered points). Default ``False``:
            through Qdrant's HNSW index once a segment is indexed (small collections are scanned exactly anyway).
        hnsw_ef: HNSW candidates per query (Qdrant's default: the collection's ``ef_construct``, 100).

    String ids become ``uuid5`` point ids (the original id is kept in the payload), so the collection is also
    readable by other Qdrant tools. Writes are checked before anything is sent; another client writing the same
    ids at the same time can race with the duplicate check of :meth:`add`.

    Example:
        >>> store = QdrantIndex("docs", url="http://localhost:6333", dim=1536)  # doctest: +SKIP
        >>> store.add(["a", "b"], vectors, metadata=[{"lang": "en"}, {"lang": "fr"}])  # doctest: +SKIP
        >>> store.search(query, k=5, where={"lang": "en"}).ids  # doctest: +SKIP
    """

    _engine = ENGINE

    def __init__(
        self,
        collection: str = "embeddings",
        *,
        url: str | None = None,
        path: str | None = None,
        client: QdrantClient | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        metric: Metric | None = None,
        model: str | None = None,
        create: bool = True,
        exact: bool = False,
        hnsw_ef: int | None = None,
    ) -> None:
        if not isinstance(collection, str) or not collection or len(collection) > 255 or any(
            c in collection for c in "/\\\x00"
        ):
            raise ConfigError(
                f"Qdrant collection names are 1 to 255 characters without '/', '\\' or NUL; got {collection!r}."
            )
        if sum(x is not None for x in (url, path, client)) != 1:
            raise ConfigError("give exactly one of url= (a Qdrant server or Cloud), path= (local mode) and client=.")
        if metric is not None:
            check_metric(metric)
        _positive("dim", dim)
        self._name = collection
        self.exact = bool(exact)
        self.hnsw_ef = _positive("hnsw_ef", hnsw_ef)
        self._owns = client is None
        if client is not None:
            self._client = client
        elif path is not None:
            self._client = QdrantClient(path=str(path))
        else:
            self._client = QdrantClient(url=url, api_key=api_key)
        try:
            self._open(dim, metric, model, create)
        except BaseException:
            self.close()
            raise

    def _open(self, dim: int | None, metric: Metric | None, model: str | None, create: bool) -> None:
        if not self._client.collection_exists(self._name):
            if not create:
                raise ConfigError(f"Qdrant collection {self._name!r} does not exist; pass create=True to create it.")
            self._exists = False
            self._dim, self._metric, self._model = dim, metric or "cosine", model
            if dim is not None:
                self._create(dim)
            return
        self._exists = True
        info = self._client.get_collection(self._name).config
        meta = dict(info.metadata or {})
        if meta.get(_LAYOUT) != _LAYOUT_VERSION:
            raise ConfigError(
                f"Qdrant collection {self._name!r} was not created by finetune_embed (its metadata has no "
                f"{_LAYOUT!r}), so its points lack the payload layout our filters need. Copy the data into a new "
                "collection with QdrantIndex.add()."
            )
        params = info.params.vectors
        if not isinstance(params, models.VectorParams):
            raise ConfigError(f"Qdrant collection {self._name!r} has named vectors; QdrantIndex reads one vector.")
        stored_metric: Metric = "cosine" if params.distance == models.Distance.COSINE else "dot"
        if params.distance not in _DISTANCES.values():
            raise ConfigError(f"Qdrant collection {self._name!r} uses distance {params.distance}; QdrantIndex reads "
                              "Cosine and Dot.")
        if metric is not None and metric != stored_metric:
            raise ConfigError(
                f"Qdrant collection {self._name!r} was created with metric={stored_metric!r}; open it with that "
                f"metric (got {metric!r})."
            )
        stored_model = meta.get("fe_model")
        if stored_model is not None and model is not None and stored_model != model:
            raise ConfigError(
                f"Qdrant collection {self._name!r} holds {stored_model!r} embeddings, not {model!r}; vectors from "
                "different models cannot be compared."
            )
        self._check_dim(dim, params.size, self._name)
        self._dim, self._metric = int(params.size), stored_metric
        self._model = stored_model if isinstance(stored_model, str) else model
        if self._model != stored_model:
            self._client.update_collection(self._name, metadata=self._own_metadata())

    def _own_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {_LAYOUT: _LAYOUT_VERSION, "fe_metric": self._metric}
        if self._model is not None:
            meta["fe_model"] = self._model
        return meta

    def _create(self, dim: int) -> None:
        self._client.create_collection(
            self._name,
            vectors_config=models.VectorParams(size=dim, distance=_DISTANCES[self._metric]),
            metadata=self._own_metadata(),
        )
        if not self.local:  # order_by needs an integer index on a server (local mode scans without one)
            self._client.create_payload_index(self._name, SEQ_KEY, field_schema=models.PayloadSchemaType.INTEGER)
        self._dim, self._exists = dim, True

    # --- properties and lifetime -----------------------------------------------------------------------------

    @property
    def client(self) -> QdrantClient:
        """The ``QdrantClient`` in use."""
        return self._client

    @property
    def name(self) -> str:
        """The collection name."""
        return self._name

    @property
    def local(self) -> bool:
        """Whether the client runs in local mode (``path=`` or ``":memory:"``), where every search is exact."""
        options = self._client.init_options
        return bool(options.get("path")) or options.get("location") == ":memory:"

    def __repr__(self) -> str:
        model = f", model={self._model!r}" if self._model else ""
        mode = "exact" if self.exact else "hnsw"
        return f"QdrantIndex(collection={self._name!r}, dim={self._dim}, metric={self._metric!r}{model}, {mode})"

    def close(self) -> None:
        """Close the client if this index made it (a client you passed in stays open); the data stays."""
        if self._owns and getattr(self, "_client", None) is not None:
            self._client.close()
            self._owns = False

    def __enter__(self) -> QdrantIndex:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- reading ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        if not self._exists:
            return 0
        return int(self._client.count(self._name, exact=True).count)

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, str) or not item_id or "\x00" in item_id or not self._exists:
            return False
        return bool(self._client.retrieve(self._name, [point_id(item_id)], with_payload=False, with_vectors=False))

    def _present(self, ids: Sequence[str]) -> list[str]:
        if not self._exists:
            return []
        found: list[str] = []
        for a in range(0, len(ids), _BATCH):
            points = self._client.retrieve(
                self._name, [point_id(i) for i in ids[a : a + _BATCH]], with_payload=[ID_KEY], with_vectors=False
            )
            found += [str((p.payload or {})[ID_KEY]) for p in points]
        return found

    def get(self, item_id: str) -> Item:
        """The stored float32 vector (unit length, for cosine) and the metadata of ``item_id``.

        Raises:
            UnknownIdError: ``item_id`` is not in the collection.
        """
        (checked,) = check_ids(item_id, "item_id")
        points = (
            self._client.retrieve(self._name, [point_id(checked)], with_payload=_READ, with_vectors=True)
            if self._exists
            else []
        )
        if not points:
            raise UnknownIdError(f"id {item_id!r} is not in Qdrant collection {self._name!r}.", ids=[item_id])
        return Item(np.asarray(points[0].vector, dtype=np.float32), restore(points[0].payload))

    def iter_items(
        self, batch_size: int = 1_000
    ) -> Iterator[tuple[list[str], npt.NDArray[np.float32], list[dict[str, Any]]]]:
        """Every item in insertion order, ``batch_size`` at a time: ``(ids, vectors, metadata)`` (pages by the
        ``fe_seq`` field: writes during the iteration may shift it)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if not self._exists:
            return
        start = 0
        while True:
            points, _ = self._client.scroll(
                self._name,
                limit=batch_size,
                order_by=models.OrderBy(key=SEQ_KEY, start_from=start),
                with_payload=[*_READ, SEQ_KEY],
                with_vectors=True,
            )
            if points:
                yield (
                    [str((p.payload or {})[ID_KEY]) for p in points],
                    np.asarray([p.vector for p in points], dtype=np.float32).reshape(len(points), -1),
                    [restore(p.payload) for p in points],
                )
            if len(points) < batch_size:
                return
            start = int((points[-1].payload or {})[SEQ_KEY]) + 1

    # --- writing ---------------------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        if not self._exists:
            return 0
        last, _ = self._client.scroll(
            self._name, limit=1, order_by=models.OrderBy(key=SEQ_KEY, direction=models.Direction.DESC),
            with_payload=[SEQ_KEY], with_vectors=False,
        )
        return int((last[0].payload or {})[SEQ_KEY]) + 1 if last else 0

    def _points(
        self, ids: list[str], vectors: npt.ArrayLike, metadata: Any, seqs: dict[str, int] | None = None
    ) -> list[models.PointStruct]:
        """The points to write; ``seqs`` keeps the insertion position of ids already stored."""
        rows = self._rows(ids, vectors)
        metas = self._metadata(ids, metadata)
        kept = seqs or {}
        following = self._next_seq()
        positions: list[int] = []
        for item_id in ids:
            if item_id in kept:
                positions.append(kept[item_id])
            else:
                positions.append(following)
                following += 1
        payloads = [payload(i, m, seq) for i, m, seq in zip(ids, metas, positions, strict=True)]
        if not self._exists and ids:
            self._create(rows.shape[1])
        return [
            models.PointStruct(id=point_id(i), vector=row.tolist(), payload=p)
            for i, row, p in zip(ids, rows, payloads, strict=True)
        ]

    def _write(self, points: list[models.PointStruct]) -> None:
        for a in range(0, len(points), _BATCH):
            self._client.upsert(self._name, points=points[a : a + _BATCH], wait=True)

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
        self._rows(id_list, vectors)  # every check before the duplicate lookup and the collection's creation
        existing = self._present(id_list)
        if existing:
            raise DuplicateIdError(
                f"{len(existing)} ids are already in Qdrant collection {self._name!r}: {_shown(existing)}; use "
                "upsert() to replace them.",
                ids=existing,
            )
        self._write(self._points(id_list, vectors, metadata))

    def upsert(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items and replace existing ones: the vector and the whole payload. An id repeated in ``ids``
        takes its last occurrence."""
        id_list = check_ids(ids)
        self._rows(id_list, vectors)  # every check before the lookups
        keep = last_occurrences(id_list)
        seqs = self._seqs([id_list[j] for j in keep])
        points = self._points(id_list, vectors, metadata, seqs)
        self._write([points[j] for j in keep])

    def _seqs(self, ids: Sequence[str]) -> dict[str, int]:
        """The insertion positions of those ``ids`` already stored."""
        if not self._exists:
            return {}
        found: dict[str, int] = {}
        for a in range(0, len(ids), _BATCH):
            points = self._client.retrieve(
                self._name, [point_id(i) for i in ids[a : a + _BATCH]], with_payload=[ID_KEY, SEQ_KEY],
                with_vectors=False,
            )
            found.update({str((p.payload or {})[ID_KEY]): int((p.payload or {})[SEQ_KEY]) for p in points})
        return found

    def delete(self, ids: str | Iterable[str]) -> int:
        """Remove items (unknown ids are ignored); returns how many were removed."""
        present = self._present(list(dict.fromkeys(check_ids(ids))))
        for a in range(0, len(present), _BATCH):
            selector = models.PointIdsList(points=[point_id(i) for i in present[a : a + _BATCH]])
            self._client.delete(self._name, points_selector=selector, wait=True)
        return len(present)

    # --- search ----------------------------------------------------------------------------------------------

    def _search_rows(
        self, queries: npt.NDArray[np.float32], k: int, tree: Filter | None, excluded: list[str]
    ) -> list[Matches]:
        condition = to_qdrant_filter(tree, [point_id(i) for i in dict.fromkeys(excluded)])
        n = queries.shape[0]
        if not self._exists or n == 0:
            return [Matches() for _ in range(n)]
        params = None
        if not self.local:  # local mode always scans exactly (and warns about search parameters)
            params = models.SearchParams(exact=self.exact, hnsw_ef=max(self.hnsw_ef, k) if self.hnsw_ef else None)
        out: list[Matches] = []
        for a in range(0, n, _BATCH):
            requests = [
                models.QueryRequest(query=row.tolist(), limit=k, filter=condition, params=params, with_payload=_READ)
                for row in queries[a : a + _BATCH]
            ]
            for response in self._client.query_batch_points(self._name, requests=requests):
                points = response.points
                scores = np.asarray([p.score for p in points], dtype=np.float32)
                if self._metric == "cosine":  # float32 rounding can end just past the ends
                    scores = np.clip(scores, -1.0, 1.0)
                out.append(
                    Matches(
                        ids=[str((p.payload or {})[ID_KEY]) for p in points],
                        scores=scores,
                        metadata=[restore(p.payload) for p in points],
                    )
                )
        return out
