"""Any VectorIndex backend (in process, PostgreSQL, Chroma, Qdrant, Redis, ...) as a LangChain ``VectorStore``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from ..._exceptions import ConfigError, InvalidArgumentError, UnknownIdError
from ...index import EmbeddingIndex, Matches, VectorIndex, Where, mmr

__all__ = ["LangChainVectorStore"]


def _reject(kwargs: dict[str, Any], method: str, takes: str) -> None:
    """Keywords a method does not know are an error, never silently ignored."""
    if kwargs:
        raise InvalidArgumentError(
            f"LangChainVectorStore.{method} got unknown keyword(s) {', '.join(sorted(kwargs))}; it takes {takes}.",
            argument=sorted(kwargs)[0],
        )


def _where(kwargs: dict[str, Any], method: str) -> Where | None:
    """The ``filter`` keyword: our where language (see docs/vector-stores.md)."""
    where: Where | None = kwargs.pop("filter", None)
    _reject(kwargs, method, "k and filter= (a where filter, see docs/vector-stores.md)")
    return where


def _ids(ids: Sequence[str | None] | None, n: int) -> list[str]:
    """The given ids (a missing one gets a random UUID), or ``n`` random UUIDs."""
    if ids is None:
        return [str(uuid.uuid4()) for _ in range(n)]
    if len(ids) != n:
        raise InvalidArgumentError(f"got {n} texts but {len(ids)} ids.", argument="ids")
    return [str(uuid.uuid4()) if i is None else i for i in ids]


class LangChainVectorStore(VectorStore):
    """A :class:`~finetune_embed.index.VectorIndex` (any backend) as a LangChain ``VectorStore``.

    Each LangChain ``Document`` is one item: its ``id`` is the item's id, its ``metadata`` the item's metadata,
    and its ``page_content`` is stored in the metadata under ``text_key`` (``"text"``, as
    :meth:`EmbeddingIndex.build <finetune_embed.index.EmbeddingIndex.build>` stores it), so an index built by
    this library can be wrapped as it is. Adding a document whose id exists replaces it (vector and metadata).

    ``filter=`` in the search methods takes our where language (``{"year": {"$gte": 2010}}``), compiled to the
    backend's engine. Scores are the backend's similarities (higher is better: cosine similarity for
    ``metric="cosine"``); relevance scores (``similarity_search_with_relevance_scores``, LangChain's ``[0, 1]``
    scale) are ``(1 + cosine similarity) / 2``.

    Args:
        index: the backend; it keeps its own connection, close it yourself (or use ``with store.index:``).
        embedding: any LangChain ``Embeddings`` (e.g. :class:`LangChainEmbeddings`) of the index's vectors.
        text_key: the metadata key holding each document's text.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from finetune_embed.index import EmbeddingIndex
        >>> store = LangChainVectorStore(EmbeddingIndex(), DeterministicFakeEmbedding(size=8))
        >>> store.add_texts(["apples", "pears"], [{"n": 1}, {"n": 2}], ids=["a", "p"])
        ['a', 'p']
        >>> [d.id for d in store.similarity_search("pears", k=1, filter={"n": {"$gte": 2}})]
        ['p']
    """

    def __init__(self, index: VectorIndex, embedding: Embeddings, *, text_key: str = "text") -> None:
        if not isinstance(index, VectorIndex):
            raise ConfigError(
                f"index must be a finetune_embed VectorIndex (EmbeddingIndex, PgVectorIndex, a store adapter), "
                f"got {type(index).__name__}."
            )
        if not isinstance(embedding, Embeddings):
            raise ConfigError(f"embedding must be a LangChain Embeddings, got {type(embedding).__name__}.")
        if not isinstance(text_key, str) or not text_key:
            raise ConfigError(f"text_key must be a non-empty string, got {text_key!r}.")
        self.index = index
        self.embedding = embedding
        self.text_key = text_key

    def __repr__(self) -> str:
        return f"LangChainVectorStore(index={self.index!r}, embedding={type(self.embedding).__name__})"

    @property
    def embeddings(self) -> Embeddings:
        """The LangChain ``Embeddings`` that embeds texts and queries."""
        return self.embedding

    # --- writing ------------------------------------------------------------------------------------------------

    def _items(
        self, texts: list[str], metadatas: Sequence[Mapping[str, Any] | None] | None, ids: Sequence[str | None] | None
    ) -> tuple[list[str], list[dict[str, Any]]]:
        if metadatas is not None and len(metadatas) != len(texts):
            raise InvalidArgumentError(f"got {len(texts)} texts but {len(metadatas)} metadatas.", argument="metadatas")
        metas: list[dict[str, Any]] = []
        for i, text in enumerate(texts):
            meta = dict(metadatas[i] or {}) if metadatas is not None else {}
            if self.text_key in meta:
                raise ConfigError(
                    f"the metadata of text {i} has the key {self.text_key!r}, where this store keeps the text; "
                    f"rename that key, or create the store with another text_key=."
                )
            if not isinstance(text, str):
                raise InvalidArgumentError(f"text {i} is a {type(text).__name__}, not a str.", argument="texts")
            meta[self.text_key] = text
            metas.append(meta)
        return _ids(ids, len(texts)), metas

    def _vectors(self, rows: list[list[float]], n: int) -> npt.NDArray[np.float32]:
        vectors = np.asarray(rows, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != n:
            raise ConfigError(
                f"{type(self.embedding).__name__}.embed_documents returned {len(rows)} vectors for {n} texts; "
                "it must return one vector per text."
            )
        return vectors

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed ``texts`` and store them; an existing id is replaced. Returns the ids (random UUIDs where none
        were given)."""
        _reject(kwargs, "add_texts", "texts, metadatas and ids")
        text_list = list(texts)
        id_list, metas = self._items(text_list, metadatas, ids)
        if not text_list:
            return []
        vectors = self._vectors(self.embedding.embed_documents(text_list), len(text_list))
        self.index.upsert(id_list, vectors, metas)
        return id_list

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """:meth:`add_texts` with the embeddings' async method; the backend's write runs in a worker thread."""
        _reject(kwargs, "aadd_texts", "texts, metadatas and ids")
        text_list = list(texts)
        id_list, metas = self._items(text_list, metadatas, ids)
        if not text_list:
            return []
        vectors = self._vectors(await self.embedding.aembed_documents(text_list), len(text_list))
        await asyncio.to_thread(self.index.upsert, id_list, vectors, metas)
        return id_list

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Remove the documents with these ids (unknown ids are ignored)."""
        _reject(kwargs, "delete", "ids")
        if ids is None:
            raise InvalidArgumentError(
                "delete needs the ids to remove; to empty a store, delete the ids from store.index.iter_items().",
                argument="ids",
            )
        self.index.delete(list(ids))
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """:meth:`delete` in a worker thread."""
        return await asyncio.to_thread(self.delete, ids, **kwargs)

    # --- reading ------------------------------------------------------------------------------------------------

    def _document(self, item_id: str, metadata: Mapping[str, Any]) -> Document:
        meta = dict(metadata)
        text = meta.pop(self.text_key, None)
        if not isinstance(text, str):
            raise ConfigError(
                f"item {item_id!r} has no text under the metadata key {self.text_key!r}; create the store with "
                "text_key= naming the key that holds the text."
            )
        return Document(page_content=text, metadata=meta, id=item_id)

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in that order; unknown ids are left out."""
        found = []
        for item_id in ids:
            try:
                item = self.index.get(item_id)
            except UnknownIdError:
                continue
            found.append(self._document(item_id, item.metadata))
        return found

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """:meth:`get_by_ids` in a worker thread."""
        return await asyncio.to_thread(self.get_by_ids, ids)

    def _scored(self, matches: Matches) -> list[tuple[Document, float]]:
        return [(self._document(m.id, m.metadata), m.score) for m in matches]

    def _search(self, vector: Sequence[float], k: int, where: Where | None) -> list[tuple[Document, float]]:
        found = self.index.search(np.asarray(vector, dtype=np.float32).reshape(-1), k, where=where)
        assert isinstance(found, Matches)
        return self._scored(found)

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` documents nearest to a vector, with their similarity (higher is better)."""
        return self._search(embedding, k, _where(kwargs, "similarity_search_with_score_by_vector"))

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` documents nearest to ``query``, with their similarity (higher is better)."""
        where = _where(kwargs, "similarity_search_with_score")
        return self._search(self.embedding.embed_query(query), k, where)

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents nearest to ``query``, best first; ``filter=`` narrows them inside the engine."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents nearest to a vector."""
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)]

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """:meth:`similarity_search_with_score`: the query embedded asynchronously, the search in a thread."""
        where = _where(kwargs, "asimilarity_search_with_score")
        vector = await self.embedding.aembed_query(query)
        return await asyncio.to_thread(self._search, vector, k, where)

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """:meth:`similarity_search`, asynchronously."""
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        """:meth:`similarity_search_by_vector` in a worker thread."""
        where = _where(kwargs, "asimilarity_search_by_vector")
        return [doc for doc, _ in await asyncio.to_thread(self._search, embedding, k, where)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self.index.metric != "cosine":
            raise ConfigError(
                "relevance scores in [0, 1] need metric='cosine'; with 'dot' use similarity_search_with_score."
            )
        return lambda score: (1.0 + score) / 2.0  # cosine similarity [-1, 1] onto LangChain's [0, 1]

    # --- maximal marginal relevance -------------------------------------------------------------------------------

    def _mmr(self, vector: Sequence[float], k: int, fetch_k: int, lambda_mult: float, where: Where | None) -> list[
        Document
    ]:
        picked = mmr(self.index, np.asarray(vector, dtype=np.float32), k, lambda_=lambda_mult, fetch_k=fetch_k,
                     where=where)
        return [doc for doc, _ in self._scored(picked)]

    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """``k`` documents near the vector yet unlike each other, picked from the ``fetch_k`` nearest."""
        return self._mmr(embedding, k, fetch_k, lambda_mult, _where(kwargs, "max_marginal_relevance_search"))

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """``k`` documents near ``query`` yet unlike each other, picked from the ``fetch_k`` nearest."""
        where = _where(kwargs, "max_marginal_relevance_search")
        return self._mmr(self.embedding.embed_query(query), k, fetch_k, lambda_mult, where)

    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """:meth:`max_marginal_relevance_search`: the query embedded asynchronously, the rest in a thread."""
        where = _where(kwargs, "amax_marginal_relevance_search")
        vector = await self.embedding.aembed_query(query)
        return await asyncio.to_thread(self._mmr, vector, k, fetch_k, lambda_mult, where)

    async def amax_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        """:meth:`max_marginal_relevance_search_by_vector` in a worker thread."""
        where = _where(kwargs, "amax_marginal_relevance_search_by_vector")
        return await asyncio.to_thread(self._mmr, embedding, k, fetch_k, lambda_mult, where)

    # --- construction -----------------------------------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> Self:
        """A store holding ``texts``: in a new in-process :class:`EmbeddingIndex` unless ``index=`` names a
        backend; ``text_key=`` as in the constructor."""
        index: VectorIndex = kwargs.pop("index", None) or EmbeddingIndex()
        text_key: str = kwargs.pop("text_key", "text")
        _reject(kwargs, "from_texts", "texts, embedding, metadatas, ids, index= and text_key=")
        store = cls(index, embedding, text_key=text_key)
        store.add_texts(texts, metadatas, ids=ids)
        return store
