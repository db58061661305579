"""Pacing: the rate state machine alone, then the embedder against a fake that enforces RPM / TPM."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from finetune_embed import RateLimits
from finetune_embed.embeddings import Embedder
from finetune_embed.embeddings._ratelimit import INF, Bucket, RateState
from finetune_embed.testing import FakeOpenAI

MakeEmbedder = Callable[..., Embedder]


def test_bucket_refills_evenly_and_caps() -> None:
    b = Bucket.full(60, now=0.0)
    b.take(60)
    assert b.wait_for(30, now=0.0) == pytest.approx(30.0)
    assert b.wait_for(30, now=30.0) == 0.0
    b.refill(1000.0)
    assert b.level == 60
    b.observe(10, now=1000.0)
    assert b.level == 10  # the server knows better
    b.observe(50, now=1000.0)
    assert b.level == 10  # ... but never more than we think


def test_one_request_until_the_first_answer_then_the_limits_apply() -> None:
    st = RateState(max_concurrency=4, now=0.0)
    assert st.try_acquire(100, 0.0) == 0.0
    assert st.try_acquire(100, 0.0) == INF  # probing
    st.on_success(RateLimits(limit_requests=60, remaining_requests=59, limit_tokens=1000, remaining_tokens=900), 0.0)
    assert st.try_acquire(500, 0.0) == 0.0
    assert st.try_acquire(500, 0.0) == pytest.approx(100 / (1000 / 60))  # 400 left, 100 short
    assert st.max_request_tokens() == 1000


def test_a_429_halves_concurrency_pauses_everyone_and_refunds() -> None:
    st = RateState(max_concurrency=8, tpm=1000, now=0.0)
    st.probing = False
    for _ in range(3):
        assert st.try_acquire(100, 0.0) == 0.0
    st.on_rate_limited(None, 5.0, 100, now=1.0)
    assert st.concurrency == 4
    assert st.try_acquire(100, 2.0) == pytest.approx(4.0)
    assert st.user_tokens is not None
    assert st.user_tokens.level == pytest.approx(800)
    for _ in range(10):
        st.on_success(None, 10.0)
    assert 4 < st.concurrency <= 8


def test_missing_or_minus_one_headers_mean_no_budget() -> None:
    st = RateState(max_concurrency=2, now=0.0)
    headers = {"x-ratelimit-limit-tokens": "-1", "x-ratelimit-remaining-tokens": "-1"}
    st.on_success(RateLimits.from_headers(headers), 0.0)
    assert st.server_tokens is None
    assert st.try_acquire(10**9, 0.0) == 0.0


def test_without_any_budget_information_requests_are_spaced_by_retry_after() -> None:
    st = RateState(max_concurrency=4, now=0.0)
    st.probing = False
    assert st.try_acquire(1, 0.0) == 0.0
    st.on_rate_limited(None, 3.0, 1, now=0.5)  # an Azure-style 429: "retry after 3 seconds", nothing else
    assert st.try_acquire(1, 1.0) == pytest.approx(2.5)
    assert st.try_acquire(1, 3.5) == 0.0
    assert st.try_acquire(1, 4.0) == pytest.approx(2.5)  # spaced 3 s apart
    st.on_success(None, 6.5)
    assert st.min_interval == pytest.approx(3.0 * 0.95)  # and probing faster again


def test_429_messages_without_headers_reveal_the_budget() -> None:
    from finetune_embed.embeddings._base import limits_from_message

    msg = "Rate limit reached for m on tokens per min (TPM): Limit 1,000,000, Used 999,000, Requested 5000."
    assert limits_from_message(msg, "tokens") == RateLimits(limit_tokens=1_000_000, remaining_tokens=1000)
    assert limits_from_message("on requests per min (RPM): Limit 20, Used 20, Requested 1", None) == RateLimits(
        limit_requests=20, remaining_requests=0
    )
    assert limits_from_message("exceeded call rate limit; retry after 3 seconds", None) is None


def texts_(n: int) -> list[str]:
    return [f"paced text number {i} " + "word " * (i % 9) for i in range(n)]


def test_no_429_against_a_server_enforcing_rpm_and_tpm(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.set_rate_limits(rpm=20, tpm=2_000)
    texts = texts_(400)
    start = fake.clock.now()
    emb = make_embedder(max_batch_inputs=10, max_concurrency=4)
    estimate = emb.estimate(texts, rpm=20, tpm=2_000)
    vectors = emb.embed(texts)
    np.testing.assert_array_equal(vectors, fake.embeddings(texts))
    assert fake.ledger.rate_limited == 0
    elapsed = fake.clock.now() - start
    assert estimate.min_seconds is not None
    assert elapsed >= estimate.min_seconds
    assert set(fake.ledger.billed_texts.values()) == {1}


def test_without_headers_adaptive_concurrency_avoids_a_429_storm(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.set_rate_limits(rpm=20, tpm=2_000, headers=False)  # as on Azure or a compatible server
    texts = texts_(400)
    make_embedder(max_batch_inputs=10, max_concurrency=4).embed(texts)
    ok = fake.ledger.embedding_requests
    assert ok == 40
    # the first 429s name the limit ("Limit 20, Used 20"): from then on requests are paced, no storm
    assert fake.ledger.rate_limited <= 5
    assert set(fake.ledger.billed_texts.values()) == {1}


def test_user_limits_pace_requests(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    make_embedder(max_batch_inputs=1, rpm=10, max_concurrency=3, cache=False).embed(texts_(25))
    times = [r.time for r in fake.ledger.requests]
    t0 = times[0]
    # a 10-request budget that refills one request every 6 s
    for k, t in enumerate(times):
        assert t - t0 >= 6 * (k - 9) - 1e-6


def test_requests_larger_than_the_tpm_budget_are_split(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.set_rate_limits(tpm=300)
    texts = texts_(100)  # ~900 tokens: one request, three times the budget
    vectors = make_embedder().embed(texts)
    np.testing.assert_array_equal(vectors, fake.embeddings(texts))
    assert fake.ledger.rate_limited == 1  # the first "Request too large", then never again
    assert all(r.tokens <= 300 for r in fake.ledger.requests)
    assert set(fake.ledger.billed_texts.values()) == {1}


def test_a_single_input_over_the_tpm_budget_is_an_error(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    from finetune_embed import EmbeddingError

    with pytest.raises(EmbeddingError, match="tokens-per-minute limit"):
        make_embedder(tpm=5).embed(["a text of more than five tokens for sure"])
