"""LangChain adapters: our :class:`~finetune_embed.Embedder` as a LangChain ``Embeddings`` and any
:class:`~finetune_embed.index.VectorIndex` backend as a LangChain ``VectorStore``.

Needs the ``langchain`` extra (``pip install 'finetune-embed[langchain]'``: ``langchain-core``); without it,
importing this module raises :class:`~finetune_embed.MissingDependencyError`. Both classes pass LangChain's own
standard test suites (``langchain-tests``). See docs/integrations.md.
"""

from __future__ import annotations

from ..._exceptions import MissingDependencyError

try:
    import langchain_core  # noqa: F401
except ImportError as exc:
    raise MissingDependencyError(
        "finetune_embed.integrations.langchain needs langchain-core: pip install 'finetune-embed[langchain]'",
        package="langchain-core",
        extra="langchain",
    ) from exc

from ._embeddings import LangChainEmbeddings
from ._vectorstore import LangChainVectorStore

__all__ = ["LangChainEmbeddings", "LangChainVectorStore"]
