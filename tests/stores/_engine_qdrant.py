"""Qdrant for the conformance suite: the client's local mode (a Python re-implementation of Qdrant;
``test_qdrant_edge.py`` checks its answers against Qdrant's real engine, qdrant-edge-py).

Each store gets its own in-memory client: local mode on a folder writes every point to SQLite one by one (13 s
for the suite's 600 points on a busy machine). ``reopen`` opens a new QdrantIndex on the same client, so the
collection's recorded metric, dimension and model are read back; reopening a folder in another client is
tested in ``test_qdrant.py``."""

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
    from qdrant_client import QdrantClient

    clients: list[QdrantClient] = []

    def create(dim: int | None, metric: str) -> VectorIndex:
        client = QdrantClient(":memory:")
        clients.append(client)
        return QdrantIndex(unique_name("q"), client=client, dim=dim, metric=metric, exact=True)  # type: ignore[arg-type]

    def reopen(store: VectorIndex) -> VectorIndex:
        assert isinstance(store, QdrantIndex)
        store.close()  # leaves the client open: it was passed in
        return QdrantIndex(store.name, client=store.client, create=False, exact=True)

    def close_clients() -> None:
        for client in clients:
            client.close()

    backend = Backend(name, "qdrant", True, create, reopen, unsupported=STRING_RANGES)
    backend.cleanup.append(close_clients)
    return backend
