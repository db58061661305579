"""Adapters for the two big LLM ecosystems, each an optional extra imported only when used.

* :mod:`finetune_embed.integrations.langchain` (``pip install 'finetune-embed[langchain]'``):
  :class:`~finetune_embed.integrations.langchain.LangChainEmbeddings` (our :class:`~finetune_embed.Embedder` as a
  LangChain ``Embeddings``) and :class:`~finetune_embed.integrations.langchain.LangChainVectorStore` (any
  :class:`~finetune_embed.index.VectorIndex` backend as a LangChain ``VectorStore``).
* :mod:`finetune_embed.integrations.llamaindex` (``pip install 'finetune-embed[llamaindex]'``):
  :class:`~finetune_embed.integrations.llamaindex.LlamaIndexEmbedding` (our embedder as a LlamaIndex
  ``BaseEmbedding``).

See docs/integrations.md.
"""
