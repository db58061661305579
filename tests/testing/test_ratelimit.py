"""Requests/tokens per minute: x-ratelimit-* headers on every embeddings response, 429 bodies and retry hints."""

from __future__ import annotations

import openai
import pytest

from finetune_embed import RetryPolicy
from finetune_embed._client import RateLimits
from finetune_embed.retry import parse_duration, retry_after_seconds
from finetune_embed.testing import FakeClock, FakeOpenAI, format_duration

MODEL = "text-embedding-3-small"


def test_duration_format_parses_back() -> None:
    for seconds in (0.012, 0.5, 1.2, 6, 59.999, 360, 3723.5):
        parsed = parse_duration(format_duration(seconds))
        assert parsed is not None
        assert abs(parsed - seconds) < 0.002


def test_headers_on_every_response_and_remaining_counts_down() -> None:
    fake = FakeOpenAI(rpm=60, tpm=1000)
    sdk = fake.openai_client()
    first = sdk.embeddings.with_raw_response.create(model=MODEL, input="hello world")  # 2 tokens
    limits = RateLimits.from_headers(first.headers)
    assert (limits.limit_requests, limits.limit_tokens) == (60, 1000)
    assert (limits.remaining_requests, limits.remaining_tokens) == (59, 998)
    assert first.headers["x-ratelimit-reset-requests"] == "1s"
    assert first.headers["x-ratelimit-reset-tokens"] == "120ms"
    bad = sdk.embeddings.with_raw_response  # a refused request still carries the headers
    with pytest.raises(openai.BadRequestError) as exc:
        bad.create(model=MODEL, input="")
    assert exc.value.response.headers["x-ratelimit-remaining-requests"] == "59"


def test_requests_per_minute_429_and_refill_on_the_clock() -> None:
    fake = FakeOpenAI(rpm=2, clock=FakeClock(start=0))
    sdk = fake.openai_client()
    sdk.embeddings.create(model=MODEL, input="a")
    sdk.embeddings.create(model=MODEL, input="b")
    with pytest.raises(openai.RateLimitError) as exc:
        sdk.embeddings.create(model=MODEL, input="c")
    body = exc.value.body
    assert isinstance(body, dict)
    assert body["type"] == "requests"
    assert body["code"] == "rate_limit_exceeded"
    assert body["param"] is None
    assert body["message"] == (
        "Rate limit reached for text-embedding-3-small in organization org-fake on requests per min (RPM): "
        "Limit 2, Used 2, Requested 1. Please try again in 30s. Visit https://platform.openai.com/account/rate-limits "
        "to learn more."
    )
    headers = exc.value.response.headers
    assert headers["retry-after"] == "30"
    assert headers["retry-after-ms"] == "30000"
    assert retry_after_seconds(exc.value) == 30.0
    assert fake.ledger.rate_limited == 1
    assert fake.ledger.billed_texts["c"] == 0
    fake.advance(30)
    sdk.embeddings.create(model=MODEL, input="c")
    assert fake.ledger.billed_texts["c"] == 1


def test_tokens_per_minute_429_with_exact_wait() -> None:
    fake = FakeOpenAI(tpm=100, clock=FakeClock(start=0))
    sdk = fake.openai_client()
    sdk.embeddings.create(model=MODEL, input=[[1] * 90])
    with pytest.raises(openai.RateLimitError) as exc:
        sdk.embeddings.create(model=MODEL, input=[[1] * 20])
    body = exc.value.body
    assert isinstance(body, dict)
    assert body["type"] == "tokens"
    # 10 tokens left, 20 wanted, refill 100/60 per second -> 6 s
    assert "Limit 100, Used 90, Requested 20. Please try again in 6s." in body["message"]
    assert exc.value.response.headers["retry-after-ms"] == "6000"
    fake.advance(6)
    sdk.embeddings.create(model=MODEL, input=[[1] * 20])


def test_request_larger_than_tpm_is_refused_without_retry_hint() -> None:
    fake = FakeOpenAI(tpm=10)
    with pytest.raises(openai.RateLimitError) as exc:
        fake.openai_client().embeddings.create(model=MODEL, input=[[1] * 11])
    body = exc.value.body
    assert isinstance(body, dict)
    assert body["message"].startswith("Request too large for text-embedding-3-small")
    assert "retry-after" not in exc.value.response.headers


def test_limits_are_per_model() -> None:
    fake = FakeOpenAI(rpm=1)
    sdk = fake.openai_client()
    sdk.embeddings.create(model=MODEL, input="a")
    sdk.embeddings.create(model="text-embedding-3-large", input="a")
    with pytest.raises(openai.RateLimitError):
        sdk.embeddings.create(model=MODEL, input="a")


def test_headers_can_be_switched_off_like_azure() -> None:
    fake = FakeOpenAI()
    fake.set_rate_limits(rpm=1, headers=False)
    sdk = fake.openai_client()
    raw = sdk.embeddings.with_raw_response.create(model=MODEL, input="a")
    assert not [h for h in raw.headers if h.startswith("x-ratelimit-")]
    with pytest.raises(openai.RateLimitError) as exc:
        sdk.embeddings.create(model=MODEL, input="a")
    assert "retry-after-ms" in exc.value.response.headers


def test_unlimited_sends_no_limit_headers() -> None:
    raw = FakeOpenAI().openai_client().embeddings.with_raw_response.create(model=MODEL, input="a")
    assert not [h for h in raw.headers if h.startswith("x-ratelimit-")]


def test_our_retry_policy_waits_on_the_fake_clock_and_pays_once() -> None:
    fake = FakeOpenAI(rpm=1, clock=FakeClock(start=0))
    client = fake.client(retry=RetryPolicy(sleep=fake.sleep, max_attempts=5))
    for text in ("one", "two", "three"):

        def call(sdk: openai.OpenAI, t: str = text) -> object:
            return sdk.embeddings.create(model=MODEL, input=t)

        client.request(call)
    assert fake.ledger.rate_limited == 2
    assert fake.ledger.embedding_requests == 3
    assert max(fake.ledger.billed_texts.values()) == 1
    assert fake.clock.now() == pytest.approx(120.0)
