"""The cache keeps servers apart (#16 follow-up): a vector is only reused for the server that made it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from finetune_embed import Client
from finetune_embed.embeddings import Embedder, EmbeddingCache
from finetune_embed.embeddings._cache import MIGRATIONS, text_key
from finetune_embed.embeddings._namespace import cache_model, cache_namespace
from finetune_embed.testing import FakeOpenAI

TEXTS = [f"review {i}: the beans were fresh and the coffee bitter" for i in range(40)]


@pytest.mark.parametrize(
    ("client", "namespace"),
    [
        (lambda: Client(api_key="sk-x"), ""),
        (lambda: Client(api_key="sk-x", base_url="https://API.openai.com/v1/"), ""),
        (lambda: Client(api_key="x", base_url="http://localhost:11434/v1"), "compatible:http://localhost:11434/v1"),
        (lambda: Client(api_key="x", base_url="http://127.0.0.1:8080/v1/"), "compatible:http://127.0.0.1:8080/v1"),
        (lambda: Client(api_key="sk-x", base_url="https://gateway.example.com/openai/v1"),
         "openai:https://gateway.example.com/openai/v1"),
        (lambda: Client.azure(endpoint="https://res.openai.azure.com/", api_key="k", api_version="2024-10-21"),
         "azure:https://res.openai.azure.com"),
        (lambda: FakeOpenAI().client(), "fake:seed=0"),
        (lambda: FakeOpenAI(seed=7).azure_client(), "fake:seed=7"),
    ],
)
def test_the_namespace_names_the_server(client: object, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "FINETUNE_EMBED_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    c = client()  # type: ignore[operator]
    assert cache_namespace(c) == namespace
    assert cache_model(c, "m") == (f"{namespace}|m" if namespace else "m")


def test_the_fakes_vectors_never_answer_a_real_api_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    path = tmp_path / "cache.sqlite"
    fake = FakeOpenAI()
    Embedder(fake.client(), cache=path).embed(TEXTS)
    again = Embedder(fake.client(), cache=path).embed_with_info(TEXTS)
    assert again.stats.cached == len(TEXTS)  # the same server: served from the cache
    real = Embedder(Client(api_key="sk-real-key-for-a-dry-run"), cache=path)
    estimate = real.estimate(TEXTS)  # reads the cache, sends nothing
    assert estimate.cached == 0
    assert estimate.unique == len(TEXTS)
    with EmbeddingCache(path) as cache:
        assert cache.stats() == {"fake:seed=0|text-embedding-3-small": len(TEXTS)}


@pytest.fixture
def two_servers() -> Iterator[tuple[FakeOpenAI, str, FakeOpenAI, str]]:
    ollama, llamacpp = FakeOpenAI(server="ollama"), FakeOpenAI(server="llamacpp")
    with ollama.serve(scale=1000.0) as a, llamacpp.serve(scale=1000.0) as b:
        yield ollama, a, llamacpp, b


def test_two_local_servers_with_one_model_name_do_not_share_vectors(
    tmp_path: Path, two_servers: tuple[FakeOpenAI, str, FakeOpenAI, str]
) -> None:
    ollama, a, llamacpp, b = two_servers
    path = tmp_path / "cache.sqlite"
    with Client(base_url=a, api_key="EMPTY") as client:
        first = Embedder(client, model="nomic-embed-text", cache=path).embed(TEXTS)
    with Client(base_url=b, api_key="EMPTY") as client:
        other = Embedder(client, model="nomic-embed-text", cache=path).embed_with_info(TEXTS)
    assert other.stats.cached == 0
    assert set(llamacpp.ledger.billed_texts) == set(TEXTS)  # the second server embedded every text itself
    np.testing.assert_array_equal(first, ollama.embeddings(TEXTS, model="nomic-embed-text"))
    np.testing.assert_array_equal(other.vectors, llamacpp.embeddings(TEXTS, model="nomic-embed-text"))
    with Client(base_url=a, api_key="EMPTY") as client:
        back = Embedder(client, model="nomic-embed-text", cache=path).embed_with_info(TEXTS)
    assert back.stats.cached == len(TEXTS)  # each server's vectors stay its own
    assert ollama.ledger.embedding_requests == len(ollama.ledger.requests)


def test_an_older_cache_is_migrated_apart(tmp_path: Path) -> None:
    """Rows written before servers were told apart: OpenAI's model names stay OpenAI's; other names (a local
    model, an Azure deployment) came from an unknown server and are kept but never served."""
    path = tmp_path / "old.sqlite"
    vec = np.linspace(-1, 1, 8, dtype=np.float32)[None, :]
    with EmbeddingCache(path) as cache:
        cache.put("text-embedding-3-small", None, [text_key("a")], vec)
        cache.put("nomic-embed-text", None, [text_key("a")], vec)
    conn = sqlite3.connect(path)  # back to the schema before m003
    conn.execute("DELETE FROM migrations WHERE name = 'm003_servers_apart'")
    conn.commit()
    conn.close()
    with EmbeddingCache(path) as cache:
        assert cache.get("text-embedding-3-small", None, "a") is not None
        assert cache.get("nomic-embed-text", None, "a") is None
        assert cache.get("compatible:http://localhost:11434/v1|nomic-embed-text", None, "a") is None
        assert cache.lookup("unknown-server|nomic-embed-text", None, [text_key("a")])  # kept
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)
    conn.close()
