"""When the Embedder counts tokens exactly, and what it uses instead when no limit makes exact counts pay (#16).

Without a known requests- or tokens-per-minute limit, a text's UTF-8 length (an upper bound of its tokens in a
byte-level BPE) packs the requests and the server's ``usage`` gives the tokens billed; with one, every text is
counted exactly, as before.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from embedding_helpers import words
from hypothesis import given, settings
from hypothesis import strategies as st

from finetune_embed import Client, RetryPolicy
from finetune_embed.embeddings import Embedder
from finetune_embed.embeddings._job import EmbedJob
from finetune_embed.embeddings._plan import plan_inputs
from finetune_embed.embeddings._tokens import utf8_lengths
from finetune_embed.testing import FakeOpenAI
from finetune_embed.tokenizer import Tokenizer

TOK = Tokenizer("cl100k_base")


def _spy(emb: Embedder) -> list[str]:
    """Every text the embedder counts exactly from now on."""
    counted: list[str] = []
    original = emb.tokenizer.count_batch

    def count_batch(texts: Sequence[str]) -> list[int]:
        counted.extend(texts)
        return original(texts)

    emb.tokenizer.count_batch = count_batch  # type: ignore[method-assign]
    return counted


def _dense(i: int) -> str:
    """Texts with many tokens per byte (digits, emoji, rare scripts) beside plain words: an estimate of a
    quarter of the bytes would pack these too tightly."""
    kinds = [
        lambda: words(60, seed=i),
        lambda: " ".join(str(d) for d in range(i, i + 90)),
        lambda: "🧪🦀🧬" * 25 + f" {i}",
        lambda: "ǅǈǋ ꙮ ᚠᚢᚦ " * 12 + f"{i}",
    ]
    return kinds[i % len(kinds)]()


@pytest.mark.parametrize("run", ["sync", "async"])
def test_without_limits_nothing_is_tokenized_and_requests_stay_within_the_cap(run: str) -> None:
    fake = FakeOpenAI()  # no rpm / tpm: no x-ratelimit headers
    texts = [_dense(i) for i in range(80)]
    if run == "sync":
        emb = Embedder(fake.client(), cache=False, max_batch_tokens=2_000)
        counted = _spy(emb)
        result = emb.embed_with_info(texts)
    else:
        import asyncio

        from finetune_embed.embeddings import AsyncEmbedder

        aemb = AsyncEmbedder(fake.async_client(), cache=False, max_batch_tokens=2_000)
        counted = _spy(aemb)  # type: ignore[arg-type]
        result = asyncio.run(aemb.embed_with_info(texts))
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert counted == []
    records = [r for r in fake.ledger.requests if r.endpoint == "/v1/embeddings"]
    assert all(r.status == 200 for r in records)
    assert max(r.tokens for r in records) <= 2_000  # the fake's own exact count of each request
    assert sum(TOK.count(t) for t in texts) > 2_000 * 4  # so the cap was in force
    assert result.stats.tokens == fake.ledger.tokens_billed == sum(TOK.count(t) for t in texts)


def test_a_limit_the_user_gives_makes_every_text_counted_exactly() -> None:
    fake = FakeOpenAI()
    texts = [_dense(i) for i in range(40)]
    emb = Embedder(fake.client(), cache=False, max_batch_tokens=2_000, tpm=10**7)
    counted = _spy(emb)
    result = emb.embed_with_info(texts)
    assert sorted(counted) == sorted(texts)
    assert result.stats.tokens == fake.ledger.tokens_billed


def test_limits_in_the_headers_switch_to_exact_counts_after_the_first_answer() -> None:
    fake = FakeOpenAI(rpm=100_000, tpm=10**8)  # sends x-ratelimit-* headers
    texts = [f"text {i} " + words(3, seed=i) for i in range(5_000)]  # three chunks of 2,048
    emb = Embedder(fake.client(), cache=False)
    counted = _spy(emb)
    result = emb.embed_with_info(texts)
    first = fake.ledger.requests[0]
    assert first.endpoint == "/v1/embeddings"
    # the first request left with bounds, before anything was known; everything after it was counted exactly
    assert len(counted) == len(texts) - first.n_inputs
    assert set(counted).isdisjoint(texts[: first.n_inputs])
    assert result.stats.tokens == fake.ledger.tokens_billed == sum(TOK.count(t) for t in texts)


def test_a_second_call_on_the_same_client_knows_there_are_no_limits() -> None:
    fake = FakeOpenAI()
    emb = Embedder(fake.client(), cache=False)
    emb.embed(["warm up"])
    counted = _spy(emb)
    texts = [f"text {i} " + words(3, seed=i) for i in range(3_000)]
    result = emb.embed_with_info(texts)
    assert counted == []
    assert result.stats.tokens == sum(TOK.count(t) for t in texts)


def _server(usage: bool, seen: list[list[str]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["input"]
        seen.append(inputs)
        vec = base64.b64encode(np.full(8, 0.5, "<f4").tobytes()).decode()
        body: dict[str, object] = {
            "object": "list",
            "model": "m",
            "data": [{"object": "embedding", "index": i, "embedding": vec} for i in range(len(inputs))],
        }
        if usage:
            body["usage"] = {"prompt_tokens": 7 * len(inputs), "total_tokens": 7 * len(inputs)}
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handler)


def test_tokens_billed_come_from_the_servers_usage_when_ours_are_bounds() -> None:
    seen: list[list[str]] = []
    client = Client(api_key="sk-test", transport=_server(True, seen), retry=RetryPolicy(sleep=lambda s: None))
    texts = [words(20, seed=i) for i in range(30)]
    result = Embedder(client, cache=False, dimensions=8).embed_with_info(texts)
    assert result.stats.tokens == 7 * len(texts)  # what the server says it billed


def test_without_usage_in_the_answer_the_tokens_are_counted_exactly() -> None:
    seen: list[list[str]] = []
    client = Client(api_key="sk-test", transport=_server(False, seen), retry=RetryPolicy(sleep=lambda s: None))
    texts = [words(20, seed=i) for i in range(30)]
    result = Embedder(client, cache=False, dimensions=8).embed_with_info(texts)
    assert result.stats.tokens == sum(TOK.count(t) for t in texts)


def test_pieces_of_cached_texts_carry_exact_token_counts(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    cache = tmp_path / "c.sqlite"
    short = "a short text that is cached first"
    Embedder(fake.client(), cache=cache).embed([short])
    long_text = words(9_000, seed=1)
    result = Embedder(fake.client(), cache=cache, long_inputs="pieces").embed_with_info([short, long_text])
    assert result.pieces is not None
    assert result.pieces.tokens[0] == TOK.count(short)  # a cached unit was never counted while sending
    assert (result.pieces.tokens > 0).all()


def test_counted_chunks_bounds_the_first_chunk_while_nothing_is_known() -> None:
    texts = [f"chunk text {i} with some words" for i in range(10)]
    plan = plan_inputs(texts, tokenizer=TOK, max_input_tokens=8191, count_all=False)
    calls: list[list[str]] = []

    def count(batch: list[str]) -> list[int]:
        calls.append(batch)
        return [TOK.count(t) for t in batch]

    job = EmbedJob(plan, model="m", dimensions=None, dim=4, cache=None, count=count, bounded_by_bytes=True)
    parts = list(job.counted_chunks(count, chunk=4, exact=lambda: None))
    assert [p.size for p in parts] == [4, 4, 2]
    assert job.unit_exact.tolist() == [False] * 4 + [True] * 6
    assert job.unit_tokens[:4].tolist() == utf8_lengths(texts[:4])
    job.make_exact(np.arange(10, dtype=np.int64))
    assert job.unit_tokens.tolist() == [TOK.count(t) for t in texts]
    assert sum(len(c) for c in calls) == 10  # each text counted once


def test_a_chunk_whose_bounds_fill_a_few_requests_is_counted_to_fill_fewer() -> None:
    texts = [f"a text of several words, number {i}" for i in range(8)]
    plan = plan_inputs(texts, tokenizer=TOK, max_input_tokens=8191, count_all=False)
    size = sum(utf8_lengths(texts))
    quarter = -(-size // 4)  # the smallest cap of which four requests hold the bounds
    for request_tokens, exact in [(size, False), (size - 1, True), (quarter, True), (quarter - 1, False)]:
        job = EmbedJob(plan, model="m", dimensions=None, dim=4, cache=None, bounded_by_bytes=True)
        count = lambda b: [TOK.count(t) for t in b]  # noqa: E731
        list(job.counted_chunks(count, chunk=8, exact=lambda: False, request_tokens=request_tokens))
        assert job.unit_exact.all() == exact, request_tokens


def test_a_counter_that_is_not_byte_level_is_never_bounded() -> None:
    texts = [f"text {i}" for i in range(6)]
    plan = plan_inputs(texts, tokenizer=TOK, max_input_tokens=8191, count_all=False)
    job = EmbedJob(plan, model="m", dimensions=None, dim=4, cache=None, bounded_by_bytes=False)
    list(job.counted_chunks(lambda b: [TOK.count(t) for t in b], chunk=4, exact=lambda: False))
    assert job.unit_exact.all()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_the_utf8_length_bounds_the_token_count(text: str) -> None:
    assert utf8_lengths([text]) == [len(text.encode("utf-8"))]
    assert TOK.count(text) <= utf8_lengths([text])[0]
    assert Tokenizer("o200k_base").count(text) <= utf8_lengths([text])[0]
