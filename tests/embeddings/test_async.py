"""AsyncEmbedder: the same results, requests and bills as Embedder (parity), under faults too."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from embedding_helpers import words

from finetune_embed import QuotaExceededError, RetryPolicy
from finetune_embed.embeddings import AsyncEmbedder, Embedder, EmbeddingResult
from finetune_embed.testing import FakeOpenAI, error_body

SCENARIOS: dict[str, dict[str, Any]] = {
    "plain": {},
    "dimensions": {"dimensions": 64},
    "chunk": {"long_inputs": "chunk"},
    "pieces": {"long_inputs": "pieces"},
    "skip": {"empty_inputs": "skip"},
}


def corpus() -> list[str]:
    texts = [words(3 + i % 11, seed=i) for i in range(120)]
    texts[5] = texts[9]  # a duplicate
    texts[17] = "   "  # an empty one
    texts[30] = "\n".join(words(400, seed=k) for k in range(25))  # ~10k tokens: two pieces
    return texts


def run_sync(fake: FakeOpenAI, tmp: Path, texts: list[str], **kw: Any) -> EmbeddingResult:
    emb = Embedder(fake.client(retry=RetryPolicy(sleep=fake.sleep)), cache=tmp / "sync.sqlite",
                   clock=fake.clock.now, sleep=fake.sleep, max_batch_inputs=16, **kw)
    return emb.embed_with_info(texts)


def run_async(fake: FakeOpenAI, tmp: Path, texts: list[str], **kw: Any) -> EmbeddingResult:
    async def main() -> EmbeddingResult:
        async with AsyncEmbedder(fake.async_client(retry=RetryPolicy(sleep=fake.sleep)), cache=tmp / "async.sqlite",
                                 clock=fake.clock.now, sleep=fake.sleep, max_batch_inputs=16, **kw) as emb:
            return await emb.embed_with_info(texts)

    return asyncio.run(main())


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_parity(tmp_path: Path, scenario: str) -> None:
    kw = dict(SCENARIOS[scenario])
    kw.setdefault("empty_inputs", "zero")
    kw.setdefault("long_inputs", "chunk")
    texts = corpus()
    if scenario == "plain":
        texts[30] = "short again"
    fakes = FakeOpenAI(), FakeOpenAI()
    a = run_sync(fakes[0], tmp_path, texts, **kw)
    b = run_async(fakes[1], tmp_path, texts, **kw)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_array_equal(a.empty, b.empty)
    np.testing.assert_array_equal(a.invalid, b.invalid)
    assert a.long == b.long
    if a.pieces is not None:
        assert b.pieces is not None
        np.testing.assert_array_equal(a.pieces.vectors, b.pieces.vectors)
        np.testing.assert_array_equal(a.pieces.start, b.pieces.start)
        np.testing.assert_array_equal(a.pieces.tokens, b.pieces.tokens)
        assert (a.pieces.tokens > 0).all()
    assert fakes[0].ledger.billed_texts == fakes[1].ledger.billed_texts
    assert fakes[0].ledger.embedding_requests == fakes[1].ledger.embedding_requests
    assert (a.stats.requests, a.stats.tokens, a.stats.unique) == (b.stats.requests, b.stats.tokens, b.stats.unique)


def test_async_under_faults(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    fake.shuffle_embeddings = True
    fake.inject(429, times=2)
    fake.inject(500, times=1)
    fake.inject_timeout(times=1)
    fake.inject_wrong_count(times=1)
    texts = corpus()
    texts[30] = "short again"
    texts = [t for t in texts if t.strip()]
    result = run_async(fake, tmp_path, texts)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert sum(n - 1 for n in fake.ledger.billed_texts.values()) == 1  # only the dropped vector twice


def test_async_quota_stops_at_once(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    fake.inject(429, body=error_body("quota", type="insufficient_quota", code="insufficient_quota"), times=10)
    with pytest.raises(QuotaExceededError):
        run_async(fake, tmp_path, [words(3, seed=i) for i in range(100)])
    assert len(fake.ledger.requests) == 1


def test_async_second_run_is_cached(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    texts = [words(4, seed=i) for i in range(40)]
    run_async(fake, tmp_path, texts)
    before = fake.ledger.embedding_requests
    again = run_async(fake, tmp_path, texts)
    assert fake.ledger.embedding_requests == before
    assert again.stats.cached == 40


def test_async_needs_an_async_client() -> None:
    with pytest.raises(TypeError, match="AsyncClient"):
        AsyncEmbedder(FakeOpenAI().client())


def test_async_estimate_and_openai_client(tmp_path: Path) -> None:
    fake = FakeOpenAI()

    async def main() -> None:
        emb = AsyncEmbedder(fake.async_openai_client(), cache=False)
        est = await emb.estimate(["a b c", "d"])
        assert est.requests == 1
        vec = await emb.embed_one("a b c")
        np.testing.assert_array_equal(vec, fake.embedding("a b c"))
        assert (await emb.embed(["x", "y"])).shape == (2, 1536)

    asyncio.run(main())


def test_async_sizes_requests_as_the_sync_embedder_does() -> None:
    """A TEI batch limit, a slow server with a short timeout, and an input too long for llama.cpp: the async twin
    handles each the same way."""
    from finetune_embed.testing import PROFILES, Processing

    async def embed(fake: FakeOpenAI, texts: list[str], **kw: Any) -> EmbeddingResult:
        client = fake.async_client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0), **kw.pop("client_kw", {}))
        async with AsyncEmbedder(client, cache=False, clock=fake.clock.now, sleep=fake.sleep, **kw) as emb:
            return await emb.embed_with_info(texts)

    texts = [words(4, seed=i) for i in range(300)]
    tei = FakeOpenAI(server=PROFILES["tei"].with_options(max_batch_inputs=16))
    result = asyncio.run(embed(tei, texts, model="bge"))
    np.testing.assert_array_equal(result.vectors, tei.embeddings(texts, model="bge"))
    assert tei.ledger.count("/v1/embeddings", status=413) == 1

    slow = FakeOpenAI(processing=Processing(per_input=0.5, workers=1))
    result = asyncio.run(embed(slow, texts[:100], client_kw={"timeout": 10.0}))
    np.testing.assert_array_equal(result.vectors, slow.embeddings(texts[:100]))
    assert result.stats.timeouts >= 3
    assert [r.n_inputs for r in slow.ledger.requests][:3] == [100, 50, 25]

    llama = FakeOpenAI(server="llamacpp")
    mixed = texts[:20]
    mixed[3] = "long: " + "fresh beans and bitter coffee " * 120
    result = asyncio.run(embed(llama, mixed, model="nomic", long_inputs="chunk"))
    assert result.long == [3]
    assert not result.invalid.any()
