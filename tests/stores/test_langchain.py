"""Every VectorIndex backend as a LangChain VectorStore, proven by LangChain's own VectorStoreIntegrationTests.

The suite runs once per backend of the conformance suite (``LANGCHAIN_BACKENDS`` in conftest.py: every backend but
the Typesense cluster, whose adapter the single node already covers): a backend added there joins here with no
other line.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import numpy as np
import pytest

from finetune_embed import ConfigError, InvalidArgumentError
from finetune_embed.index import EmbeddingIndex

from .conftest import LANGCHAIN_BACKENDS, Backend

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import VectorStore
    from langchain_tests.integration_tests import VectorStoreIntegrationTests

    from finetune_embed.integrations.langchain import LangChainVectorStore
except ImportError as exc:  # pragma: no cover - depends on the environment
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError(f"CI=true but LangChain is missing ({exc}): pip install -e '.[dev,langchain]'") from exc
    pytest.skip(f"LangChain is not installed ({exc}): pip install -e '.[dev,langchain]'", allow_module_level=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that needs a store runs on every backend."""
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", LANGCHAIN_BACKENDS, indirect=True)


class TestStandard(VectorStoreIntegrationTests):
    """LangChain's standard suite, sync and async, over our adapter on every backend."""

    @pytest.fixture
    def vectorstore(self, backend: Backend) -> VectorStore:
        embeddings = self.get_embeddings()
        index = backend.create(len(embeddings.embed_query("probe")), "cosine")
        return LangChainVectorStore(index, embeddings)


DIM = 16


@pytest.fixture
def store(backend: Backend) -> LangChainVectorStore:
    embeddings = DeterministicFakeEmbedding(size=DIM)
    return LangChainVectorStore(backend.create(DIM, "cosine"), embeddings)


def _docs() -> list[Document]:
    return [
        Document(page_content=f"doc {i}", metadata={"year": 2000 + i, "lang": ["en", "fr"][i % 2]}, id=f"d{i}")
        for i in range(20)
    ]


def test_scores_and_filters_match_the_index(store: LangChainVectorStore) -> None:
    """Scores are the backend's similarities; filter= is our where language, run inside the engine."""
    store.add_documents(_docs())
    query = store.embeddings.embed_query("doc 3")
    where = {"lang": "fr", "year": {"$gte": 2003}}
    got = store.similarity_search_with_score("doc 3", k=5, filter=where)
    want = store.index.search(np.asarray(query, dtype=np.float32), 5, where=where)
    assert [d.id for d, _ in got] == want.ids
    np.testing.assert_allclose([s for _, s in got], want.scores, atol=1e-5)
    assert all(d.metadata["lang"] == "fr" and d.metadata["year"] >= 2003 for d, _ in got)
    assert [d.id for d in store.similarity_search_by_vector(query, k=5, filter=where)] == want.ids
    assert got[0][0] == Document(page_content="doc 3", metadata={"year": 2003, "lang": "fr"}, id="d3")


def test_async_search_and_mmr(store: LangChainVectorStore) -> None:
    async def run() -> tuple[list[str], list[str], list[str]]:
        await store.aadd_documents(_docs())
        plain = [d.id or "" for d in await store.asimilarity_search("doc 7", k=4, filter={"lang": "fr"})]
        diverse = await store.amax_marginal_relevance_search("doc 7", k=4, fetch_k=10, filter={"lang": "fr"})
        by_vec = await store.asimilarity_search_by_vector(store.embeddings.embed_query("doc 7"), k=4)
        return plain, [d.id or "" for d in diverse], [d.id or "" for d in by_vec]

    plain, diverse, by_vec = asyncio.run(run())
    assert plain[0] == "d7"
    assert diverse[0] == "d7"
    assert by_vec[0] == "d7"
    assert len(diverse) == 4
    assert all(int(i[1:]) % 2 == 1 for i in diverse)
    assert diverse == [d.id for d in store.max_marginal_relevance_search("doc 7", k=4, fetch_k=10,
                                                                          filter={"lang": "fr"})]


def test_relevance_scores_are_cosine(store: LangChainVectorStore) -> None:
    store.add_texts(["a", "b", "c"], ids=["1", "2", "3"])
    scored = store.similarity_search_with_score("b", k=3)
    relevant = store.similarity_search_with_relevance_scores("b", k=3)
    assert [d.id for d, _ in scored] == [d.id for d, _ in relevant]
    np.testing.assert_allclose([(1 + s) / 2 for _, s in scored], [r for _, r in relevant], atol=1e-7)
    assert scored[0][1] == pytest.approx(1.0, abs=1e-5)
    assert min(s for _, s in scored) < 0


def test_unknown_keywords_and_bad_input_are_typed_errors(store: LangChainVectorStore) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown keyword"):
        store.similarity_search("a", k=1, where={"x": 1})
    with pytest.raises(InvalidArgumentError, match="unknown keyword"):
        store.add_texts(["a"], batch_size=10)
    with pytest.raises(InvalidArgumentError, match="2 texts but 1 ids"):
        store.add_texts(["a", "b"], ids=["1"])
    with pytest.raises(InvalidArgumentError, match="needs the ids"):
        store.delete()
    with pytest.raises(ConfigError, match="where this store keeps the text"):
        store.add_texts(["a"], [{"text": "clash"}])
    assert len(store.index) == 0  # nothing half-written


def test_an_index_built_by_the_library_wraps_as_is(backend: Backend) -> None:
    """EmbeddingIndex.build stores the text under "text", which is where the adapter looks."""
    embeddings = DeterministicFakeEmbedding(size=DIM)
    built = EmbeddingIndex.build(["red apple", "green pear"], embeddings, ids=["a", "p"], metadata=[{"n": 1}, None])
    target = backend.create(DIM, "cosine")
    for ids, vectors, metadata in built.iter_items(batch_size=10):
        target.add(ids, vectors, metadata)
    store = LangChainVectorStore(target, embeddings)
    assert store.get_by_ids(["p", "missing", "a"]) == [
        Document(page_content="green pear", metadata={}, id="p"),
        Document(page_content="red apple", metadata={"n": 1}, id="a"),
    ]


def test_items_without_text_are_a_typed_error(backend: Backend) -> None:
    index = backend.create(DIM, "cosine")
    index.add(["v"], np.ones((1, DIM), dtype=np.float32), [{"title": "no text here"}])
    store = LangChainVectorStore(index, DeterministicFakeEmbedding(size=DIM))
    with pytest.raises(ConfigError, match="text_key="):
        store.get_by_ids(["v"])
    assert LangChainVectorStore(index, store.embeddings, text_key="title").get_by_ids(["v"])[0].page_content == (
        "no text here"
    )


def test_from_texts_defaults_to_an_in_process_index() -> None:
    embeddings = DeterministicFakeEmbedding(size=DIM)
    store = LangChainVectorStore.from_texts(["x", "y"], embeddings, [{"k": 1}, {"k": 2}], ids=["1", "2"])
    assert isinstance(store.index, EmbeddingIndex)
    assert len(store.index) == 2
    assert store.similarity_search("y", k=1) == [Document(page_content="y", metadata={"k": 2}, id="2")]
    retriever = store.as_retriever(search_kwargs={"k": 1, "filter": {"k": 1}})
    assert [d.id for d in retriever.invoke("y")] == ["1"]


def test_constructor_checks_its_arguments() -> None:
    embeddings: Any = DeterministicFakeEmbedding(size=DIM)
    with pytest.raises(ConfigError, match="VectorIndex"):
        LangChainVectorStore(object(), embeddings)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="LangChain Embeddings"):
        LangChainVectorStore(EmbeddingIndex(), object())  # type: ignore[arg-type]


def test_relevance_needs_cosine() -> None:
    store = LangChainVectorStore(EmbeddingIndex(metric="dot"), DeterministicFakeEmbedding(size=DIM))
    store.add_texts(["a"])
    with pytest.raises(ConfigError, match="metric='cosine'"):
        store.similarity_search_with_relevance_scores("a", k=1)
