"""EmbeddingIndex.build and search_text take a LangChain Embeddings as well as our Embedder."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_embed import ConfigError, Embedder, InvalidArgumentError
from finetune_embed.index import EmbeddingIndex, SupportsEmbedDocuments
from finetune_embed.testing import FakeOpenAI

from .conftest import require

require("langchain_core", "langchain")

from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402

from finetune_embed.integrations.langchain import LangChainEmbeddings  # noqa: E402


def test_build_with_a_langchain_embeddings() -> None:
    embeddings = DeterministicFakeEmbedding(size=12)
    assert isinstance(embeddings, SupportsEmbedDocuments)
    texts = ["north", "south", "east"]
    index = EmbeddingIndex.build(texts, embeddings)
    assert index.dim == 12
    assert index.ids == ["0", "1", "2"]
    assert index.model is None
    want = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(index.vectors, want, atol=1e-6)
    hit = index.search_text("south", embeddings, k=1)
    assert hit.ids == ["1"]
    assert hit.metadata == [{"text": "south"}]


def test_build_with_our_embedder_behind_langchain_records_the_model() -> None:
    lc = LangChainEmbeddings(Embedder(FakeOpenAI().client(), dimensions=24, cache=False))
    index = EmbeddingIndex.build(["a", "b"], lc)
    assert index.model == "text-embedding-3-small"
    assert index.dim == 24
    assert index.search_text("b", lc, k=1).ids == ["1"]


def test_build_with_no_texts() -> None:
    index = EmbeddingIndex.build([], DeterministicFakeEmbedding(size=4))
    assert len(index) == 0
    assert index.dim is None


class _Nothing:
    model = "m"


class _EmptyRows:
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return []


def test_anything_that_embeds_nothing_is_a_typed_error() -> None:
    with pytest.raises(InvalidArgumentError, match="embeds nothing") as caught:
        EmbeddingIndex.build(["a"], _Nothing())  # type: ignore[arg-type]
    assert caught.value.argument == "embedder"
    with pytest.raises(ConfigError, match=r"returned shape \(0,\) for 1 texts"):
        EmbeddingIndex.build(["a"], _EmptyRows())
