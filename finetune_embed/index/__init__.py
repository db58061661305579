"""Exact in-process vector search over embeddings, and the cookbook's use cases on top of it.

>>> import numpy as np
>>> index = EmbeddingIndex(3)
>>> index.add(["a", "b"], [[1, 0, 0], [0, 1, 0]], metadata=[{"lang": "en"}, {"lang": "fr"}])
>>> index.search([1, 0.2, 0], k=1).ids
['a']

See docs/search.md.
"""

from __future__ import annotations

from ._filters import Condition, Where, compile_where, parse_filter, parse_where
from ._index import EmbeddingIndex, Item, SupportsEmbed, SupportsEmbedDocuments
from ._matches import BatchMatches, DenseMatches, Match, Matches
from ._ops import (
    Classification,
    KMeansResult,
    SimilarityStats,
    kmeans,
    knn_classify,
    mmr,
    outlier_scores,
    recommend,
    similarity_distribution,
    zero_shot_classify,
)
from ._protocol import VectorIndex

__all__ = [
    "BatchMatches",
    "Classification",
    "Condition",
    "DenseMatches",
    "EmbeddingIndex",
    "Item",
    "KMeansResult",
    "Match",
    "Matches",
    "SimilarityStats",
    "SupportsEmbed",
    "SupportsEmbedDocuments",
    "VectorIndex",
    "Where",
    "compile_where",
    "kmeans",
    "knn_classify",
    "mmr",
    "outlier_scores",
    "parse_filter",
    "parse_where",
    "recommend",
    "similarity_distribution",
    "zero_shot_classify",
]
