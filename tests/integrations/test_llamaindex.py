"""LlamaIndexEmbedding: our Embedder as a LlamaIndex BaseEmbedding, used by LlamaIndex itself end to end."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pytest

from finetune_embed import AsyncEmbedder, ConfigError, Embedder
from finetune_embed.testing import FakeOpenAI

from .conftest import require

require("llama_index.core", "llamaindex")

from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402

from finetune_embed.integrations.llamaindex import LlamaIndexEmbedding  # noqa: E402

TEXTS = ["the cat sat", "a dog ran", "fish swim", "birds fly", "the cat sat"]


def test_vectors_are_the_embedders_sync_and_async() -> None:
    fake = FakeOpenAI()
    embedder = Embedder(fake.client(), dimensions=32, cache=False)
    emb = LlamaIndexEmbedding(embedder, AsyncEmbedder(fake.async_client(), dimensions=32, cache=False),
                              embed_batch_size=2)
    assert isinstance(emb, BaseEmbedding)
    assert emb.model_name == "text-embedding-3-small"
    assert emb.dimensions == 32
    want = embedder.embed(TEXTS)
    np.testing.assert_array_equal(np.array(emb.get_text_embedding_batch(TEXTS), dtype=np.float32), want)
    np.testing.assert_array_equal(np.array(emb.get_query_embedding("fish swim"), dtype=np.float32), want[2])
    np.testing.assert_array_equal(np.array(emb.get_text_embedding("a dog ran"), dtype=np.float32), want[1])

    async def run() -> tuple[list[list[float]], list[float]]:
        return await emb.aget_text_embedding_batch(TEXTS), await emb.aget_query_embedding("birds fly")

    batch, query = asyncio.run(run())
    np.testing.assert_array_equal(np.array(batch, dtype=np.float32), want)
    np.testing.assert_array_equal(np.array(query, dtype=np.float32), want[3])


def test_async_with_sync_embedder_only() -> None:
    embedder = Embedder(FakeOpenAI().client(), dimensions=8, cache=False)
    emb = LlamaIndexEmbedding(embedder)
    got = asyncio.run(emb.aget_query_embedding("x"))
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), embedder.embed(["x"])[0])


def test_llamaindex_retrieves_with_it() -> None:
    """LlamaIndex's own in-memory VectorStoreIndex, embedding with ours, finds the right node."""
    from llama_index.core import Document, VectorStoreIndex

    fake = FakeOpenAI()
    emb = LlamaIndexEmbedding(Embedder(fake.client(), dimensions=64, cache=False))
    docs = [Document(text=t, doc_id=f"d{i}") for i, t in enumerate(TEXTS[:4])]
    index = VectorStoreIndex.from_documents(docs, embed_model=emb)
    nodes = index.as_retriever(similarity_top_k=1).retrieve("fish swim")
    assert [n.node.get_content() for n in nodes] == ["fish swim"]
    assert nodes[0].score == pytest.approx(1.0, abs=1e-5)


def test_typed_errors() -> None:
    fake = FakeOpenAI()
    with pytest.raises(ConfigError, match="cannot be compared"):
        LlamaIndexEmbedding(Embedder(fake.client(), model="text-embedding-3-large", cache=False),
                            AsyncEmbedder(fake.async_client(), cache=False))
    only_async = LlamaIndexEmbedding(async_embedder=AsyncEmbedder(fake.async_client(), cache=False))
    with pytest.raises(ConfigError, match="only an AsyncEmbedder"):
        only_async.get_text_embedding("x")
    skipping = LlamaIndexEmbedding(Embedder(fake.client(), empty_inputs="skip", cache=False))
    with pytest.raises(ConfigError, match="empty_inputs='skip'"):
        skipping.get_text_embedding_batch(["a", " ", "b"])


def test_key_never_in_repr_or_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-llama-secret-456")
    emb = LlamaIndexEmbedding(model="text-embedding-3-large", dimensions=256)
    assert emb.model_name == "text-embedding-3-large"
    assert emb.dimensions == 256
    for text in (repr(emb), str(emb), str(emb.to_payload()), emb.model_dump_json()):
        assert "sk-llama" not in text


def test_missing_llamaindex_is_a_typed_error() -> None:
    code = (
        "import sys; sys.modules['llama_index.core.base.embeddings.base'] = None\n"
        "from finetune_embed import MissingDependencyError\n"
        "try:\n"
        "    import finetune_embed.integrations.llamaindex\n"
        "except MissingDependencyError as e:\n"
        "    print(e.package, e.extra)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["llama-index-core", "llamaindex"]
