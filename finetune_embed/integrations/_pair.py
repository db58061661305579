"""A sync Embedder and / or an AsyncEmbedder of one model: what the ecosystem adapters embed with."""

from __future__ import annotations

import asyncio

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError
from ..embeddings import AsyncEmbedder, Embedder

__all__ = ["EmbedderPair"]


def _rows(vectors: npt.NDArray[np.float32], texts: list[str], model: str, owner: str) -> list[list[float]]:
    """One list of floats per text, or a typed error when the embedder left rows out."""
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ConfigError(
            f"the {model} embedder returned {vectors.shape[0] if vectors.ndim else 0} vectors for {len(texts)} "
            f"texts; {owner} needs one vector per text: do not use empty_inputs='skip' here (use 'error', 'zero' "
            "or 'nan')."
        )
    rows: list[list[float]] = vectors.tolist()
    return rows


class EmbedderPair:
    """Checks the embedders given to an adapter and embeds with the right one.

    Neither given: both are built from the environment with ``model`` / ``dimensions``. Only the sync one: async
    calls run it in a worker thread. Only the async one: sync calls are a :class:`ConfigError`.
    """

    def __init__(
        self,
        owner: str,
        embedder: Embedder | None,
        async_embedder: AsyncEmbedder | None,
        model: str | None,
        dimensions: int | None,
    ) -> None:
        if embedder is not None and not isinstance(embedder, Embedder):
            raise ConfigError(f"embedder must be a finetune_embed.Embedder, got {type(embedder).__name__}.")
        if async_embedder is not None and not isinstance(async_embedder, AsyncEmbedder):
            raise ConfigError(
                f"async_embedder must be a finetune_embed.AsyncEmbedder, got {type(async_embedder).__name__}."
            )
        if (embedder or async_embedder) is not None and (model is not None or dimensions is not None):
            raise ConfigError(f"pass model= and dimensions= to the Embedder itself, not to {owner}, when you pass one.")
        if embedder is not None and async_embedder is not None and (
            (embedder.model, embedder.dimensions) != (async_embedder.model, async_embedder.dimensions)
        ):
            raise ConfigError(
                f"embedder ({embedder.model}, dimensions={embedder.dimensions}) and async_embedder "
                f"({async_embedder.model}, dimensions={async_embedder.dimensions}) would produce vectors that "
                "cannot be compared; give both the same model and dimensions."
            )
        if embedder is None and async_embedder is None:
            name = model or "text-embedding-3-small"
            embedder = Embedder(model=name, dimensions=dimensions)
            async_embedder = AsyncEmbedder(model=name, dimensions=dimensions)
        self.owner = owner
        self.embedder = embedder
        self.async_embedder = async_embedder
        source = embedder or async_embedder
        assert source is not None
        self.model: str = source.model
        self.dimensions: int | None = source.dimensions

    def embed(self, texts: list[str]) -> list[list[float]]:
        if self.embedder is None:
            raise ConfigError(
                f"this {self.owner} has only an AsyncEmbedder: use its async methods, or pass embedder=Embedder(...) "
                "too."
            )
        return _rows(self.embedder.embed(texts), texts, self.model, self.owner)

    async def aembed(self, texts: list[str]) -> list[list[float]]:
        if self.async_embedder is not None:
            vectors = await self.async_embedder.embed(texts)
            return _rows(vectors, texts, self.model, self.owner)
        return await asyncio.to_thread(self.embed, texts)
