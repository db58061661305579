"""Injected faults: statuses with the service's bodies, timeouts, dropped connections, missing vectors, latency."""

from __future__ import annotations

import openai
import pytest

from finetune_embed import QuotaExceededError, ServerError
from finetune_embed.testing import FakeClock, FakeOpenAI

MODEL = "text-embedding-3-small"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_injected_server_errors(status: int) -> None:
    fake = FakeOpenAI()
    fake.inject(status, times=2)
    sdk = fake.openai_client()
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as exc:
            sdk.embeddings.create(model=MODEL, input="x")
        assert exc.value.status_code == status
        body = exc.value.body
        assert isinstance(body, dict)
        assert body["type"] == "server_error"
    sdk.embeddings.create(model=MODEL, input="x")
    assert fake.ledger.tokens_billed == 1
    assert [r.injected for r in fake.ledger.requests] == [True, True, False]


def test_injected_quota_429_maps_to_our_quota_error() -> None:
    fake = FakeOpenAI()
    body = {
        "error": {
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    fake.inject(429, body=body)
    with pytest.raises(openai.RateLimitError) as exc:
        fake.openai_client().embeddings.create(model=MODEL, input="x")
    assert exc.value.body == body["error"]
    assert "retry-after" not in exc.value.response.headers
    fake.inject(429, body=body)
    with pytest.raises(QuotaExceededError):
        fake.client().request(lambda sdk: sdk.embeddings.create(model=MODEL, input="x"))
    assert fake.ledger.rate_limited == 2


def test_injected_plain_429_has_retry_after() -> None:
    fake = FakeOpenAI()
    fake.inject(429)
    with pytest.raises(openai.RateLimitError) as exc:
        fake.openai_client().embeddings.create(model=MODEL, input="x")
    assert exc.value.response.headers["retry-after"] == "1"


def test_path_globs_and_methods() -> None:
    fake = FakeOpenAI()
    fake.inject(500, path="/v1/models/*", times=1)
    sdk = fake.openai_client()
    sdk.embeddings.create(model=MODEL, input="x")  # not matched
    with pytest.raises(openai.InternalServerError):
        sdk.models.retrieve(MODEL)
    sdk.models.retrieve(MODEL)
    fake.inject(503, path=None)
    with pytest.raises(openai.InternalServerError):
        sdk.models.list()


def test_timeout_and_disconnect() -> None:
    fake = FakeOpenAI()
    sdk = fake.openai_client()
    fake.inject_timeout()
    with pytest.raises(openai.APITimeoutError):
        sdk.embeddings.create(model=MODEL, input="x")
    fake.inject_disconnect()
    with pytest.raises(openai.APIConnectionError):
        sdk.embeddings.create(model=MODEL, input="x")
    assert [r.fault for r in fake.ledger.requests] == ["timeout", "disconnect"]
    assert fake.ledger.tokens_billed == 0


def test_our_client_retries_server_errors() -> None:
    fake = FakeOpenAI()
    fake.inject(500, times=3)
    from finetune_embed import RetryPolicy

    with pytest.raises(ServerError):
        fake.client(retry=RetryPolicy(max_attempts=2, sleep=fake.sleep)).request(
            lambda sdk: sdk.embeddings.create(model=MODEL, input="x")
        )


def test_wrong_count_drops_one_vector_but_bills() -> None:
    fake = FakeOpenAI()
    fake.inject_wrong_count()
    resp = fake.openai_client().embeddings.create(model=MODEL, input=["a", "b", "c"], encoding_format="float")
    assert len(resp.data) == 2
    assert fake.ledger.billed_texts["c"] == 1


def test_latency_advances_the_manual_clock_with_jitter() -> None:
    fake = FakeOpenAI(latency=(0.1, 0.3), clock=FakeClock(start=0))
    sdk = fake.openai_client()
    for _ in range(10):
        sdk.embeddings.create(model=MODEL, input="x")
    assert 1.0 <= fake.clock.now() <= 3.0
    assert fake.clock.now() not in (1.0, 3.0)


def test_injected_429_keeps_the_callers_retry_after() -> None:
    """A retry-after given to inject() is the one sent (no default retry-after-ms overrides it)."""
    import httpx as _httpx

    from finetune_embed.testing import FakeOpenAI as _Fake

    fake = _Fake()
    fake.inject(status=429, path="/v1/files", headers={"retry-after": "7"})
    with _httpx.Client(transport=fake.transport, base_url="https://api.openai.com/v1") as http:
        response = http.get("/files", headers={"authorization": "Bearer sk-test"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert "retry-after-ms" not in response.headers
