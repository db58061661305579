"""Pacing: the rate state machine alone, then the embedder against a fake that enforces RPM / TPM."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from finetune_embed import RateLimits
from finetune_embed.embeddings import Embedder
from finetune_embed.embeddings._ratelimit import INF, WINDOW, Quota, RateState, Window
from finetune_embed.testing import FakeOpenAI

MakeEmbedder = Callable[..., Embedder]


def test_the_window_counts_a_sliding_minute() -> None:
    w = Window()
    w.take(60, now=0.0)
    assert w.wait_for(30, now=0.0, capacity=60) == pytest.approx(WINDOW)  # nothing leaves before the minute
    w.take(20, now=10.0)
    assert w.used(now=30.0) == 80
    assert w.wait_for(50, now=30.0, capacity=100) == pytest.approx(WINDOW - 30.0)  # the 60 must leave first
    assert w.wait_for(30, now=WINDOW, capacity=60) == 0.0  # it has left
    assert w.used(now=WINDOW + 5.0) == 20
    assert w.used(now=WINDOW + 5.0, since=-1.0) == 80  # history is kept a while for slow answers
    entry = w.take(10, now=WINDOW + 5.0)
    w.give_back(entry)
    assert w.used(now=WINDOW + 5.0) == 20


def test_one_request_until_the_first_answer_then_the_limits_apply() -> None:
    st = RateState(max_concurrency=4, now=0.0)
    assert st.try_acquire(100, 0.0) == 0.0
    assert st.try_acquire(100, 0.0) == INF  # probing
    st.on_success(RateLimits(limit_requests=60, remaining_requests=59, limit_tokens=1000, remaining_tokens=900), 0.0)
    st.release_slot()
    assert st.try_acquire(500, 0.0) == 0.0
    assert st.try_acquire(500, 0.0) == pytest.approx(WINDOW)  # 600 of 1000 used this minute: wait for the first
    assert st.max_request_tokens() == 1000
    assert st.available_tokens(0.0) == 400


def test_the_quota_outlives_a_call() -> None:
    quota = Quota()
    first = RateState(max_concurrency=2, now=0.0, quota=quota)
    assert first.try_acquire(10, 0.0) == 0.0
    first.on_success(RateLimits(limit_tokens=100, remaining_tokens=90), 0.0)
    second = RateState(max_concurrency=2, now=1.0, quota=quota)
    assert not second.probing  # the limits are known already
    assert second.available_tokens(1.0) == 90


def test_a_429_halves_concurrency_pauses_everyone_and_refunds() -> None:
    st = RateState(max_concurrency=8, tpm=1000, now=0.0)
    st.quota.answered = True
    entries = [st.take_budget(100, 0.0) for _ in range(3)]
    st.on_rate_limited(None, 5.0, 100, now=1.0, entries=entries[-1])
    assert st.concurrency == 4
    assert st.try_acquire(100, 2.0) == pytest.approx(4.0)
    assert st.available_tokens(2.0) == pytest.approx(800)  # the refused request did not count
    for _ in range(10):
        st.on_success(None, 10.0)
    assert 4 < st.concurrency <= 8


def test_missing_or_minus_one_headers_mean_no_budget() -> None:
    st = RateState(max_concurrency=2, now=0.0)
    headers = {"x-ratelimit-limit-tokens": "-1", "x-ratelimit-remaining-tokens": "-1"}
    st.on_success(RateLimits.from_headers(headers), 0.0)
    assert st.capacity("tokens") is None
    assert st.try_acquire(10**9, 0.0) == 0.0


def test_without_any_budget_information_requests_are_spaced_by_retry_after() -> None:
    st = RateState(max_concurrency=4, now=0.0)
    st.quota.answered = True
    assert st.try_acquire(1, 0.0) == 0.0
    st.on_rate_limited(None, 3.0, 1, now=0.5)  # an Azure-style 429: "retry after 3 seconds", nothing else
    st.release_slot()
    assert st.try_acquire(1, 1.0) == pytest.approx(2.5)
    assert st.try_acquire(1, 3.5) == 0.0
    assert st.try_acquire(1, 4.0) == pytest.approx(2.5)  # spaced 3 s apart
    st.on_success(None, 6.5)
    assert st.min_interval == pytest.approx(3.0 * 0.95)  # and probing faster again


def test_another_consumer_of_the_key_is_made_room_for() -> None:
    st = RateState(max_concurrency=2, now=0.0)
    st.take_budget(100, 0.0)
    # the server says 1000 - 600 remain: 500 more than we sent were used by someone else
    st.on_success(RateLimits(limit_tokens=1000, remaining_tokens=400), 0.5, sent_at=0.0)
    assert st.available_tokens(0.5) == pytest.approx(400)
    # a later answer that agrees with our log adds nothing
    st.take_budget(100, 1.0)
    st.on_success(RateLimits(limit_tokens=1000, remaining_tokens=300), 1.5, sent_at=1.0)
    assert st.available_tokens(1.5) == pytest.approx(300)
    assert not st.quota.tokens.is_bucket


def test_a_server_that_refills_as_it_goes_is_paced_as_a_bucket() -> None:
    st = RateState(max_concurrency=2, now=0.0)
    st.take_budget(1000, 0.0)
    st.on_success(RateLimits(limit_tokens=1000, remaining_tokens=0), 0.0, sent_at=0.0)
    assert st.budget_wait(500, 0.0)[0] == pytest.approx(61.0)  # a sliding minute until we know better
    st.take_budget(100, 61.0)
    # "full again in 6 s" after 100 of 1000: a bucket refilling 1000 a minute, not a window
    st.on_success(RateLimits(limit_tokens=1000, remaining_tokens=900, reset_tokens=6.0), 61.0, sent_at=61.0)
    assert st.quota.tokens.is_bucket
    wait, _ = st.budget_wait(1000, 61.0)
    assert wait == pytest.approx(6.0, abs=0.05)  # the 100 refill, not another minute


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
