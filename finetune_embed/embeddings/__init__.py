"""Embeddings: embed any number of texts fast, within the API's limits, never losing or paying twice.

* :class:`Embedder` (sync, safe inside Jupyter's running event loop) and :class:`AsyncEmbedder` (asyncio).
* :class:`EmbeddingCache`: the persistent SQLite cache keyed on (model, dimensions, sha256(text)).
* :class:`EmbeddingResult`, :class:`Pieces`, :class:`EmbeddingStats`, :class:`EmbeddingEstimate`: what calls return.

>>> from finetune_embed.embeddings import Embedder
>>> from finetune_embed.testing import FakeOpenAI
>>> Embedder(FakeOpenAI().client(), dimensions=256, cache=False).embed(["a", "b", "a"]).shape
(3, 256)
"""

from __future__ import annotations

from ._async import AsyncEmbedder
from ._batch_api import BatchAPIError, BatchTimeoutError
from ._cache import EmbeddingCache, default_cache_path, text_key
from ._embedder import Embedder
from ._plan import split_by_tokens
from ._types import (
    EmbeddingEstimate,
    EmbeddingResult,
    EmbeddingStats,
    InvalidEmbeddingError,
    InvalidEmbeddingWarning,
    Pieces,
)

__all__ = [
    "AsyncEmbedder",
    "BatchAPIError",
    "BatchTimeoutError",
    "Embedder",
    "EmbeddingCache",
    "EmbeddingEstimate",
    "EmbeddingResult",
    "EmbeddingStats",
    "InvalidEmbeddingError",
    "InvalidEmbeddingWarning",
    "Pieces",
    "default_cache_path",
    "split_by_tokens",
    "text_key",
]
