"""Our :class:`~finetune_embed.Embedder` as a LlamaIndex embedding model (``BaseEmbedding``).

Needs the ``llamaindex`` extra (``pip install 'finetune-embed[llamaindex]'``: ``llama-index-core``); without it,
importing this module raises :class:`~finetune_embed.MissingDependencyError`. See docs/integrations.md.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import MissingDependencyError
from ..embeddings import AsyncEmbedder, Embedder
from ._pair import EmbedderPair

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr
except ImportError as exc:
    raise MissingDependencyError(
        "finetune_embed.integrations.llamaindex needs llama-index-core: pip install 'finetune-embed[llamaindex]'",
        package="llama-index-core",
        extra="llamaindex",
    ) from exc

__all__ = ["LlamaIndexEmbedding"]


class LlamaIndexEmbedding(BaseEmbedding):
    """A :class:`~finetune_embed.Embedder` as a LlamaIndex ``BaseEmbedding`` (``Settings.embed_model = ...``).

    LlamaIndex hands it ``embed_batch_size`` texts at a time (default here: 2048, the API's most per request);
    the embedder still sizes its own requests by tokens, paces them and caches the vectors. Queries and
    documents are embedded alike (OpenAI's embedding models take no query / document instruction).

    Args:
        embedder, async_embedder, model, dimensions: as for
            :class:`~finetune_embed.integrations.langchain.LangChainEmbeddings`: the sync embedder, the async one
            (default: the sync one in a worker thread), or neither (both built from the environment).
        embed_batch_size: texts per call LlamaIndex makes.

    Example:
        >>> from finetune_embed import Embedder
        >>> from finetune_embed.testing import FakeOpenAI
        >>> emb = LlamaIndexEmbedding(Embedder(FakeOpenAI().client(), dimensions=8, cache=False))
        >>> emb.model_name, len(emb.get_text_embedding("hello"))
        ('text-embedding-3-small', 8)
    """

    _pair: EmbedderPair = PrivateAttr()

    def __init__(
        self,
        embedder: Embedder | None = None,
        async_embedder: AsyncEmbedder | None = None,
        *,
        model: str | None = None,
        dimensions: int | None = None,
        embed_batch_size: int = 2048,
        **kwargs: Any,
    ) -> None:
        pair = EmbedderPair("LlamaIndexEmbedding", embedder, async_embedder, model, dimensions)
        super().__init__(model_name=pair.model, embed_batch_size=embed_batch_size, **kwargs)
        self._pair = pair

    @classmethod
    def class_name(cls) -> str:
        return "FinetuneEmbedEmbedding"

    @property
    def embedder(self) -> Embedder | None:
        """The sync embedder."""
        return self._pair.embedder

    @property
    def async_embedder(self) -> AsyncEmbedder | None:
        """The async embedder (``None``: async calls run the sync one in a worker thread)."""
        return self._pair.async_embedder

    @property
    def dimensions(self) -> int | None:
        """The requested vector size (``None``: the model's own)."""
        return self._pair.dimensions

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._pair.embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._pair.aembed([query]))[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._pair.embed([text])[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._pair.aembed([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._pair.embed(list(texts))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._pair.aembed(list(texts))
