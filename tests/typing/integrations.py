"""Type-checked usage of the LangChain / LlamaIndex adapters (``mypy --strict tests/typing``); never executed."""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from finetune_embed import AsyncEmbedder, Client, Embedder, EmbeddingIndex
from finetune_embed.integrations.langchain import LangChainEmbeddings, LangChainVectorStore
from finetune_embed.integrations.llamaindex import LlamaIndexEmbedding


def langchain_side() -> None:
    embeddings: Embeddings = LangChainEmbeddings(Embedder(Client()), AsyncEmbedder())
    from_env = LangChainEmbeddings(model="text-embedding-3-large", dimensions=256)
    vector: list[float] = from_env.embed_query("q")
    index = EmbeddingIndex.build(["a", "b"], embeddings)  # a LangChain Embeddings builds an index too
    store: VectorStore = LangChainVectorStore(index, embeddings, text_key="text")
    docs: list[Document] = store.similarity_search("a", k=2, filter={"year": {"$gte": 2020}})
    scored: list[tuple[Document, float]] = store.similarity_search_with_score("a")
    del vector, docs, scored


def llamaindex_side() -> None:
    embed_model = LlamaIndexEmbedding(Embedder(Client(), dimensions=512), embed_batch_size=512)
    vector: list[float] = embed_model.get_text_embedding("x")
    name: str = embed_model.model_name
    del vector, name
