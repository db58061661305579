"""LangChainEmbeddings: LangChain's own standard suites (unit and integration, against FakeOpenAI), and ours."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from finetune_embed import AsyncEmbedder, ConfigError, Embedder, MissingDependencyError
from finetune_embed.testing import FakeOpenAI

from .conftest import require

require("langchain_tests", "langchain")

from langchain_tests.integration_tests import EmbeddingsIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import EmbeddingsUnitTests  # noqa: E402

from finetune_embed.integrations.langchain import LangChainEmbeddings  # noqa: E402


class TestUnitStandard(EmbeddingsUnitTests):
    """LangChain's unit suite: construction from parameters and from the environment."""

    @property
    def embeddings_class(self) -> type[LangChainEmbeddings]:
        return LangChainEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"embedder": Embedder(FakeOpenAI().client(), dimensions=64, cache=False)}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"OPENAI_API_KEY": "sk-from-the-environment"},
            {"model": "text-embedding-3-large", "dimensions": 256},
            {"model": "text-embedding-3-large", "dimensions": 256},
        )


class TestIntegrationStandard(EmbeddingsIntegrationTests):
    """LangChain's integration suite against FakeOpenAI: an Embedder and an AsyncEmbedder."""

    @property
    def embeddings_class(self) -> type[LangChainEmbeddings]:
        return LangChainEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        fake = FakeOpenAI()
        return {
            "embedder": Embedder(fake.client(), dimensions=64, cache=False),
            "async_embedder": AsyncEmbedder(fake.async_client(), dimensions=64, cache=False),
        }


class TestIntegrationStandardSyncOnly(EmbeddingsIntegrationTests):
    """The same suite with only a sync Embedder: the async methods run it in a worker thread."""

    @property
    def embeddings_class(self) -> type[LangChainEmbeddings]:
        return LangChainEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"embedder": Embedder(FakeOpenAI().client(), model="text-embedding-3-large", cache=False)}


def test_vectors_are_the_embedders() -> None:
    """embed_documents / embed_query / the async twins give exactly the Embedder's vectors, in order."""
    fake = FakeOpenAI()
    embedder = Embedder(fake.client(), dimensions=32, cache=False)
    lc = LangChainEmbeddings(embedder, AsyncEmbedder(fake.async_client(), dimensions=32, cache=False))
    texts = ["alpha", "beta", "gamma", "alpha"]
    want = embedder.embed(texts)
    np.testing.assert_array_equal(np.array(lc.embed_documents(texts), dtype=np.float32), want)
    np.testing.assert_array_equal(np.array(lc.embed_query("beta"), dtype=np.float32), want[1])

    import asyncio

    got = asyncio.run(lc.aembed_documents(texts))
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), want)
    assert lc.model == "text-embedding-3-small"
    assert lc.dimensions == 32
    assert repr(lc) == "LangChainEmbeddings(model='text-embedding-3-small', dimensions=32)"


async def test_async_with_sync_embedder_only() -> None:
    embedder = Embedder(FakeOpenAI().client(), dimensions=16, cache=False)
    lc = LangChainEmbeddings(embedder)
    np.testing.assert_array_equal(np.array(await lc.aembed_query("x"), dtype=np.float32), embedder.embed(["x"])[0])


def test_sync_with_async_embedder_only_is_a_typed_error() -> None:
    lc = LangChainEmbeddings(async_embedder=AsyncEmbedder(FakeOpenAI().async_client(), cache=False))
    with pytest.raises(ConfigError, match="only an AsyncEmbedder"):
        lc.embed_query("x")


def test_embedders_of_different_models_are_refused() -> None:
    fake = FakeOpenAI()
    with pytest.raises(ConfigError, match="cannot be compared"):
        LangChainEmbeddings(
            Embedder(fake.client(), dimensions=64, cache=False),
            AsyncEmbedder(fake.async_client(), dimensions=32, cache=False),
        )


def test_model_with_an_embedder_is_ambiguous() -> None:
    with pytest.raises(ConfigError, match="to the Embedder itself"):
        LangChainEmbeddings(Embedder(FakeOpenAI().client(), cache=False), model="text-embedding-3-large")


def test_wrong_types_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"must be a finetune_embed\.Embedder"):
        LangChainEmbeddings(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"must be a finetune_embed\.AsyncEmbedder"):
        LangChainEmbeddings(async_embedder=Embedder(FakeOpenAI().client(), cache=False))  # type: ignore[arg-type]


def test_skip_policy_would_lose_rows() -> None:
    """empty_inputs='skip' drops rows; LangChain needs one per text: a typed error, never misaligned vectors."""
    lc = LangChainEmbeddings(Embedder(FakeOpenAI().client(), empty_inputs="skip", cache=False))
    with pytest.raises(ConfigError, match="empty_inputs='skip'"):
        lc.embed_documents(["a", "", "b"])


def test_key_from_the_environment_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-key-123")
    lc = LangChainEmbeddings()
    assert "sk-very" not in repr(lc)
    assert "sk-very" not in repr(lc.embedder)


def test_missing_langchain_is_a_typed_error() -> None:
    """Without langchain-core the import raises MissingDependencyError naming the extra."""
    code = (
        "import sys; sys.modules['langchain_core'] = None\n"
        "from finetune_embed import MissingDependencyError\n"
        "try:\n"
        "    import finetune_embed.integrations.langchain\n"
        "except MissingDependencyError as e:\n"
        "    print(e.package, e.extra)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["langchain-core", "langchain"]
    assert issubclass(MissingDependencyError, ImportError)
