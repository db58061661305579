"""Qdrant for the conformance suite: the client's local mode in a temp folder (a Python re-implementation of
Qdrant; ``test_qdrant_edge.py`` checks its answers against Qdrant's real engine, qdrant-edge-py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from finetune_embed.index import VectorIndex

if TYPE_CHECKING:
    from .conftest import Backend

STRING_RANGES = frozenset({"$gt:string", "$gte:string", "$lt:string", "$lte:string"})


def qdrant_backend(name: str, tmp: Path) -> Backend:
    """The Backend for ``qdrant``: local mode (always an exact scan), one folder per store."""
    from .conftest import Backend, unavailable, unique_name

    try:
        from finetune_embed.stores import QdrantIndex
    except ImportError as exc:
        unavailable(f"qdrant-client is not installed ({exc}); pip install 'finetune-embed[qdrant]'")
        raise
    places: dict[int, tuple[str, str]] = {}

    def create(dim: int | None, metric: str) -> VectorIndex:
        collection = unique_name("q")
        folder = str(tmp / collection)
        store = QdrantIndex(collection, path=folder, dim=dim, metric=metric, exact=True)  # type: ignore[arg-type]
        places[id(store)] = (collection, folder)
        return store

    def reopen(store: VectorIndex) -> VectorIndex:
        collection, folder = places[id(store)]
        store.close()
        again = QdrantIndex(collection, path=folder, create=False, exact=True)
        places[id(again)] = (collection, folder)
        return again

    return Backend(name, "qdrant", True, create, reopen, unsupported=STRING_RANGES)
