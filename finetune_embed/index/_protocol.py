"""VectorIndex: the one API every search backend implements (in process, PostgreSQL, Chroma, Qdrant, Redis, ...).

Code written against :class:`VectorIndex` (the analysis functions in :mod:`finetune_embed.index`, your own)
runs on any backend. It is a :class:`typing.Protocol`: a backend implements it by having the methods, with no
base class to inherit; ``isinstance(obj, VectorIndex)`` checks that the methods are there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeAlias, overload, runtime_checkable

import numpy as np
import numpy.typing as npt

from ._filters import Where
from ._index import Item, SupportsEmbed
from ._matches import BatchMatches, Matches

__all__ = ["ItemBatch", "QueryMatrix", "QueryVector", "VectorIndex"]

QueryVector: TypeAlias = np.ndarray[tuple[int], np.dtype[Any]] | Sequence[float]
"""One query: a 1-D array or a list of floats (``search`` gives :class:`Matches`)."""
QueryMatrix: TypeAlias = np.ndarray[tuple[int, int], np.dtype[Any]] | Sequence[Sequence[float]]
"""Several queries, one per row (``search`` gives :class:`BatchMatches`)."""
ItemBatch: TypeAlias = tuple[list[str], npt.NDArray[np.float32], list[dict[str, Any]]]
"""``(ids, vectors, metadata)`` of consecutive items: what :meth:`VectorIndex.iter_items` yields."""


@runtime_checkable
class VectorIndex(Protocol):
    """What every backend offers: string ids, float32 vectors, JSON metadata, k-nearest search with filters.

    Implemented by :class:`~finetune_embed.index.EmbeddingIndex` (in process),
    :class:`~finetune_embed.index.pgvector.PgVectorIndex` and the vector-store adapters of
    :mod:`finetune_embed.stores` (see docs/vector-stores.md). Scores are similarities, higher is better:
    cosine similarity for ``metric="cosine"``, the inner product for ``"dot"``.

    ``search`` is typed with overloads: a matrix (or an array whose shape the type checker does not know, as
    ``Embedder.embed`` returns) gives :class:`BatchMatches`; a 1-D array or a list of floats gives
    :class:`Matches`. ``BatchMatches.dense()`` turns a batch into ``(n, k)`` id and score arrays.

    Example:
        >>> from finetune_embed.index import EmbeddingIndex, VectorIndex
        >>> def nearest(store: VectorIndex, query: list[float]) -> list[str]:
        ...     return store.search(query, k=2).ids
        >>> index = EmbeddingIndex(2)
        >>> index.add(["a", "b", "c"], [[1, 0], [0, 1], [1, 1]])
        >>> nearest(index, [1, 0.1]), isinstance(index, VectorIndex)
        (['a', 'c'], True)
    """

    @property
    def dim(self) -> int | None:
        """The vector dimension (``None`` until the first vectors arrive)."""
        ...

    @property
    def metric(self) -> Literal["cosine", "dot"]:
        """``"cosine"`` or ``"dot"``."""
        ...

    @property
    def model(self) -> str | None:
        """The embedding model the vectors come from, when recorded (``search_text`` checks it)."""
        ...

    def add(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items, all or none; an id already present raises :class:`~finetune_embed.DuplicateIdError`."""
        ...

    def upsert(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """Add new items and replace existing ones: the vector *and* the whole metadata (never merged)."""
        ...

    def delete(self, ids: str | Iterable[str]) -> int:
        """Remove items (unknown ids are ignored); returns how many were removed."""
        ...

    def get(self, item_id: str) -> Item:
        """The stored vector and the metadata of one item; raises :class:`~finetune_embed.UnknownIdError` for an
        unknown id."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, item_id: object) -> bool: ...

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
        """The ``k`` nearest items of one query (:class:`Matches`) or of each row of a matrix
        (:class:`BatchMatches`), best first, filtered by ``where`` inside the engine."""
        ...

    def search_by_id(
        self,
        item_id: str,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
        exclude_self: bool = True,
    ) -> Matches:
        """The ``k`` nearest items of a stored item (itself left out unless ``exclude_self`` is false)."""
        ...

    def search_text(
        self,
        text: str,
        embedder: SupportsEmbed,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
    ) -> Matches:
        """Embed ``text`` with ``embedder`` (its model must be the index's) and search."""
        ...

    def iter_items(self, batch_size: int = ...) -> Iterator[ItemBatch]:
        """Every item, ``batch_size`` at a time, as ``(ids, vectors, metadata)``."""
        ...

    def close(self) -> None:
        """Release connections and files (the data stays where the backend keeps it)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
