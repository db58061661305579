"""AsyncPgVectorIndex: the PgVectorIndex API as coroutines, for asyncio applications."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, Self, overload

import numpy as np
import numpy.typing as npt

from ..._exceptions import ConfigError
from .._filters import Where
from .._index import Item
from .._matches import BatchMatches, Matches
from ._index import PgVectorIndex

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["AsyncPgVectorIndex"]


class SupportsAsyncEmbed(Protocol):
    """An :class:`~finetune_embed.AsyncEmbedder` or anything with ``async embed(texts) -> (n, dim) array``."""

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class AsyncPgVectorIndex:
    """A :class:`PgVectorIndex` for asyncio: the same methods as coroutines, each run in a worker thread so the
    event loop never blocks on the database.

    Open it with ``await AsyncPgVectorIndex.open(pool, table, ...)`` on a ``psycopg_pool.ConnectionPool``: each
    call borrows its own connection, so concurrent coroutines (``asyncio.gather``) query in parallel. On a single
    connection string the calls are safe too, but the connection runs them one at a time. The keyword arguments
    are :class:`PgVectorIndex`'s (``dim``, ``metric``, ``storage``, ``hnsw``, ``ef_search``, ``replica``, ...).

    Example:
        >>> index = await AsyncPgVectorIndex.open(pool, "docs", dim=1536)  # doctest: +SKIP
        >>> hits = await asyncio.gather(*(index.search(q, k=5) for q in queries))  # doctest: +SKIP
    """

    def __init__(self, index: PgVectorIndex) -> None:
        if not isinstance(index, PgVectorIndex):
            raise ConfigError(f"AsyncPgVectorIndex wraps a PgVectorIndex, got {type(index).__name__}.")
        self.sync = index
        """The underlying :class:`PgVectorIndex` (its properties: ``dim``, ``metric``, ``ef_search``, ...)."""

    @classmethod
    async def open(
        cls,
        conninfo: str | psycopg.Connection[Any] | ConnectionPool[Any],
        table: str = "embeddings",
        **options: Any,
    ) -> Self:
        """Open (or create) the table without blocking the event loop."""
        return cls(await asyncio.to_thread(PgVectorIndex, conninfo, table, **options))

    def __repr__(self) -> str:
        return f"Async{self.sync!r}"

    @property
    def dim(self) -> int | None:
        """The vector dimension (``None`` until known)."""
        return self.sync.dim

    @property
    def metric(self) -> str:
        """``"cosine"`` or ``"dot"``."""
        return self.sync.metric

    async def aclose(self) -> None:
        """Close the connection(s) the index opened."""
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- writing -------------------------------------------------------------------------------------------------

    async def add(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """:meth:`PgVectorIndex.add`."""
        await asyncio.to_thread(self.sync.add, ids, vectors, metadata)

    async def upsert(
        self,
        ids: str | Sequence[str],
        vectors: npt.ArrayLike,
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        """:meth:`PgVectorIndex.upsert`."""
        await asyncio.to_thread(self.sync.upsert, ids, vectors, metadata)

    async def delete(self, ids: str | Iterable[str]) -> int:
        """:meth:`PgVectorIndex.delete`."""
        return await asyncio.to_thread(self.sync.delete, ids)

    # --- reading -------------------------------------------------------------------------------------------------

    async def get(self, item_id: str) -> Item:
        """:meth:`PgVectorIndex.get`."""
        return await asyncio.to_thread(self.sync.get, item_id)

    async def contains(self, item_id: str) -> bool:
        """``item_id in index``."""
        return await asyncio.to_thread(self.sync.__contains__, item_id)

    async def count(self, *, estimate: bool = False) -> int:
        """:meth:`PgVectorIndex.count` (``len(index)`` with ``estimate=False``)."""
        return await asyncio.to_thread(lambda: self.sync.count(estimate=estimate))

    async def iter_items(
        self, batch_size: int = 5_000
    ) -> AsyncIterator[tuple[list[str], npt.NDArray[np.float32], list[dict[str, Any]]]]:
        """:meth:`PgVectorIndex.iter_items`, one page per worker-thread call."""
        pages = self.sync.iter_items(batch_size)
        done = object()
        while True:
            page = await asyncio.to_thread(next, pages, done)
            if page is done:
                return
            assert isinstance(page, tuple)
            yield page

    # --- search --------------------------------------------------------------------------------------------------

    @overload
    async def search(
        self,
        queries: np.ndarray[tuple[int, int], np.dtype[Any]] | Sequence[Sequence[float]],
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
    ) -> BatchMatches: ...

    @overload
    async def search(
        self,
        queries: np.ndarray[tuple[int], np.dtype[Any]] | Sequence[float],
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
    ) -> Matches: ...

    @overload
    async def search(
        self,
        queries: npt.ArrayLike,
        k: int = ...,
        *,
        where: Where | None = ...,
        exclude: Collection[str] | None = ...,
    ) -> Matches | BatchMatches: ...

    async def search(
        self,
        queries: npt.ArrayLike,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
    ) -> Matches | BatchMatches:
        """:meth:`PgVectorIndex.search`: one vector gives :class:`Matches`, a matrix :class:`BatchMatches`."""
        return await asyncio.to_thread(lambda: self.sync.search(queries, k, where=where, exclude=exclude))

    async def search_by_id(
        self,
        item_id: str,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
        exclude_self: bool = True,
    ) -> Matches:
        """:meth:`PgVectorIndex.search_by_id`."""
        return await asyncio.to_thread(
            lambda: self.sync.search_by_id(item_id, k, where=where, exclude=exclude, exclude_self=exclude_self)
        )

    async def search_text(
        self,
        text: str,
        embedder: SupportsAsyncEmbed,
        k: int = 10,
        *,
        where: Where | None = None,
        exclude: Collection[str] | None = None,
    ) -> Matches:
        """Embed ``text`` with an :class:`~finetune_embed.AsyncEmbedder` (its model must be the table's) and
        search."""
        model = getattr(embedder, "model", None)
        if self.sync.model and model and model != self.sync.model:
            raise ConfigError(
                f"the table holds {self.sync.model!r} embeddings but the embedder uses {model!r}; vectors from "
                "different models cannot be compared."
            )
        vectors = np.asarray(await embedder.embed([text]), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != 1:
            raise ConfigError(f"embedder.embed([text]) must return a (1, dim) array, got shape {vectors.shape}.")
        found = await self.search(vectors[0], k, where=where, exclude=exclude)
        assert isinstance(found, Matches)
        return found

    # --- indexes -------------------------------------------------------------------------------------------------

    async def create_hnsw_index(self, m: int = 16, ef_construction: int = 64, *, concurrently: bool = False) -> None:
        """:meth:`PgVectorIndex.create_hnsw_index`."""
        await asyncio.to_thread(lambda: self.sync.create_hnsw_index(m, ef_construction, concurrently=concurrently))

    async def create_ivfflat_index(self, lists: int | None = None, *, concurrently: bool = False) -> None:
        """:meth:`PgVectorIndex.create_ivfflat_index`."""
        await asyncio.to_thread(lambda: self.sync.create_ivfflat_index(lists, concurrently=concurrently))
