"""Vector-store adapters: the :class:`~finetune_embed.VectorIndex` API over external vector databases.

Each adapter needs its engine's client library, installed with an extra (``pip install
"finetune-embed[chroma]"``), and is imported only when first used, so ``import finetune_embed.stores`` costs
nothing. See docs/vector-stores.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._chroma import ChromaIndex as ChromaIndex
    from ._copy import CopyResult as CopyResult
    from ._copy import copy as copy
    from ._milvus import MilvusIndex as MilvusIndex
    from ._qdrant import QdrantIndex as QdrantIndex
    from ._redis import RedisIndex as RedisIndex
    from ._typesense import TypesenseIndex as TypesenseIndex

__all__ = ["ChromaIndex", "CopyResult", "MilvusIndex", "QdrantIndex", "RedisIndex", "TypesenseIndex", "copy"]

# one line per adapter: public name -> the module that defines it
_LAZY: dict[str, str] = {
    "ChromaIndex": "._chroma",
    "MilvusIndex": "._milvus",  # a Milvus server, Milvus Lite or Zilliz Cloud (extra: milvus)
    "QdrantIndex": "._qdrant",
    "RedisIndex": "._redis",  # Redis with RediSearch, one server or a Redis Cluster (extra: redis)
    "TypesenseIndex": "._typesense",  # Typesense, one node or a Raft cluster (extra: typesense)
    "copy": "._copy",  # moving data between any two backends (no extra)
    "CopyResult": "._copy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
