"""Our Embedder (and AsyncEmbedder) behind LangChain's ``Embeddings`` interface."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from ...embeddings import AsyncEmbedder, Embedder
from .._pair import EmbedderPair

__all__ = ["LangChainEmbeddings"]


class LangChainEmbeddings(Embeddings):
    """A :class:`~finetune_embed.Embedder` as a LangChain ``Embeddings``: batching, pacing, retries, the cache and
    the never-pay-twice guarantees of the embedder, behind ``embed_documents`` / ``embed_query`` and their async
    twins.

    Args:
        embedder: the embedder for the sync methods. Default: ``Embedder(model=model, dimensions=dimensions)``
            with the client from the environment (``OPENAI_API_KEY``, or Azure's variables).
        async_embedder: the embedder for ``aembed_documents`` / ``aembed_query``. Default: when ``embedder`` is
            given, the async methods run it in a worker thread; otherwise an ``AsyncEmbedder`` of ``model`` from
            the environment.
        model, dimensions: only when neither embedder is given (otherwise they come from the embedders).

    Both embedders must produce comparable vectors (same model and dimensions), else :class:`ConfigError`; so
    must every text give a vector (``empty_inputs="skip"`` is refused when it would drop one).

    Example:
        >>> from finetune_embed import Embedder
        >>> from finetune_embed.testing import FakeOpenAI
        >>> emb = LangChainEmbeddings(Embedder(FakeOpenAI().client(), dimensions=8, cache=False))
        >>> len(emb.embed_query("hello")), len(emb.embed_documents(["a", "b"]))
        (8, 2)
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        async_embedder: AsyncEmbedder | None = None,
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> None:
        self._pair = EmbedderPair("LangChainEmbeddings", embedder, async_embedder, model, dimensions)

    @property
    def embedder(self) -> Embedder | None:
        """The sync embedder."""
        return self._pair.embedder

    @property
    def async_embedder(self) -> AsyncEmbedder | None:
        """The async embedder (``None``: the async methods run the sync one in a worker thread)."""
        return self._pair.async_embedder

    @property
    def model(self) -> str:
        """The embedding model (on Azure: the deployment)."""
        return self._pair.model

    @property
    def dimensions(self) -> int | None:
        """The requested vector size (``None``: the model's own)."""
        return self._pair.dimensions

    def __repr__(self) -> str:
        dims = f", dimensions={self.dimensions}" if self.dimensions else ""
        return f"LangChainEmbeddings(model={self.model!r}{dims})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector (a list of floats) per text, in order."""
        return self._pair.embed(list(texts))

    def embed_query(self, text: str) -> list[float]:
        """The vector of one query text."""
        return self._pair.embed([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, from the AsyncEmbedder (or the sync embedder in a worker thread)."""
        return await self._pair.aembed(list(texts))

    async def aembed_query(self, text: str) -> list[float]:
        """The vector of one query text, asynchronously."""
        return (await self._pair.aembed([text]))[0]
