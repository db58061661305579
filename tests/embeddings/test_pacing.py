"""Pacing at the theoretical minimum under sliding-window quotas (#12), proven on the fake's virtual clock.

The minimum time under a sliding minute of ``L`` is ``(ceil(total / L) - 1)`` minutes: each minute carries at most
``L``, and the last one ends as soon as it is sent. Every scenario runs the embedder with its defaults (plus the
fake's clock), against a fake that enforces the quota over a sliding minute.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from finetune_embed import RetryPolicy
from finetune_embed.embeddings import Embedder
from finetune_embed.testing import FakeOpenAI, ServerProfile

DIMS = 32  # short vectors keep the fake fast; the pacing is the same


def review(i: int, words: int = 90) -> str:
    vocab = ["beans", "coffee", "fresh", "stale", "sweet", "bitter", "order", "price", "taste", "smell", "box"]
    return f"review {i}: " + " ".join(vocab[(i * 7 + k * 3) % len(vocab)] for k in range(words))


def run(fake: FakeOpenAI, texts: list[str], tmp_path: Path, **kwargs: object) -> tuple[float, np.ndarray]:
    client = fake.client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0))
    emb = Embedder(client, dimensions=DIMS, cache=False, clock=fake.clock.now, sleep=fake.sleep, **kwargs)  # type: ignore[arg-type]
    start = fake.clock.now()
    vectors = emb.embed(texts)
    return fake.clock.now() - start, vectors


def window_minimum(total: float, limit: float) -> float:
    return 60.0 * max(0, math.ceil(total / limit) - 1)


@pytest.fixture(scope="module")
def tpm_texts() -> list[str]:
    return [review(i) for i in range(2900)]  # ~290k tokens


@pytest.mark.parametrize("headers", [True, False])
def test_tight_tpm_reaches_the_sliding_window_minimum(tmp_path: Path, tpm_texts: list[str], headers: bool) -> None:
    fake = FakeOpenAI(tpm=60_000, rate_limit_window="sliding", rate_limit_headers=headers)
    kwargs = {} if headers else {"tpm": 60_000}  # without headers the user says what the quota is
    elapsed, vectors = run(fake, tpm_texts, tmp_path, **kwargs)
    np.testing.assert_array_equal(vectors, fake.embeddings(tpm_texts, dimensions=DIMS))
    tokens = fake.ledger.tokens_billed
    assert set(fake.ledger.billed_texts.values()) == {1}
    minimum = window_minimum(tokens, 60_000)
    assert minimum >= 180
    assert elapsed <= 1.25 * minimum, (elapsed, minimum)
    assert fake.ledger.rate_limited <= 2
    assert all(r.tokens <= 60_000 for r in fake.ledger.requests)  # never a request the quota cannot take


@pytest.mark.parametrize("headers", [True, False])
def test_tight_rpm_reaches_the_sliding_window_minimum(tmp_path: Path, headers: bool) -> None:
    texts = [review(i, 8) for i in range(1200)]
    fake = FakeOpenAI(rpm=20, rate_limit_window="sliding", rate_limit_headers=headers)
    kwargs: dict[str, object] = {"max_batch_inputs": 20}  # a server that takes 20 inputs a request: 60 requests
    if not headers:
        kwargs["rpm"] = 20
    elapsed, vectors = run(fake, texts, tmp_path, **kwargs)
    np.testing.assert_array_equal(vectors, fake.embeddings(texts, dimensions=DIMS))
    assert fake.ledger.embedding_requests == 60
    minimum = window_minimum(60, 20)
    assert elapsed <= 1.25 * minimum, (elapsed, minimum)
    assert fake.ledger.rate_limited <= 2


def test_a_token_bucket_server_is_never_paced_slower_than_a_window(tmp_path: Path, tpm_texts: list[str]) -> None:
    """A bucket that refills evenly and starts full (OpenAI's documented model). While every request carries the
    whole capacity, its headers read exactly as a sliding window's would, so the bucket can only be told apart
    once a smaller request has been answered; which request is the small one depends on the order the workers
    take them (and on a manual clock, waits of concurrent workers add up). Whatever the order, the run is never
    slower than the window's minimum allows, and no request is larger than the bucket."""
    fake = FakeOpenAI(tpm=60_000)
    elapsed, vectors = run(fake, tpm_texts, tmp_path)
    np.testing.assert_array_equal(vectors, fake.embeddings(tpm_texts, dimensions=DIMS))
    tokens = fake.ledger.tokens_billed
    assert elapsed <= 1.1 * window_minimum(tokens, 60_000), (elapsed, tokens)
    assert fake.ledger.rate_limited <= 2
    assert all(r.tokens <= 60_000 for r in fake.ledger.requests)


def test_a_token_bucket_server_is_paced_at_its_own_minimum(tmp_path: Path, tpm_texts: list[str]) -> None:
    """The same bucket behind a server that takes at most 400 inputs a request (~38k tokens here): every request
    is smaller than the bucket, so the first response's headers show the refill, and from then on requests go as
    soon as the bucket holds them — at the bucket's minimum ``(tokens - capacity) / rate``, far under the 7
    minutes a sliding window would need for requests of that size (one per minute)."""
    fake = FakeOpenAI(tpm=60_000)
    elapsed, vectors = run(fake, tpm_texts, tmp_path, max_batch_inputs=400)
    np.testing.assert_array_equal(vectors, fake.embeddings(tpm_texts, dimensions=DIMS))
    tokens = fake.ledger.tokens_billed
    bucket_minimum = (tokens - 60_000) / 60_000 * 60.0
    sent = [r for r in fake.ledger.requests if r.status == 200]
    assert all(r.tokens < 0.9 * 60_000 for r in sent)  # every response's headers show the refill
    assert elapsed <= 1.02 * bucket_minimum, (elapsed, bucket_minimum)
    assert fake.ledger.rate_limited == 0


Scenario = Callable[[bool], FakeOpenAI]


@pytest.mark.parametrize("window", ["sliding", "bucket"])
def test_never_slower_with_headers_than_without(tmp_path: Path, window: str) -> None:
    texts = [review(i, 30) for i in range(4000)]  # ~130k tokens, 60 RPM and 30k TPM: both limits matter

    def timed(headers: bool, **kwargs: object) -> float:
        fake = FakeOpenAI(rpm=60, tpm=30_000, rate_limit_window=window, rate_limit_headers=headers)  # type: ignore[arg-type]
        elapsed, _ = run(fake, texts, tmp_path, max_batch_inputs=64, **kwargs)
        assert fake.ledger.rate_limited <= (2 if headers or kwargs else 12)
        return elapsed

    with_headers = timed(True)
    configured = timed(False, rpm=60, tpm=30_000)
    blind = timed(False)  # nothing known: the 429s' messages teach the limits
    assert with_headers <= configured + 1.0, (with_headers, configured)
    assert with_headers <= blind + 1.0, (with_headers, blind)


@pytest.mark.parametrize("headers", [True, False])
def test_tight_rpm_with_the_defaults_against_a_server_that_takes_20_inputs(tmp_path: Path, headers: bool) -> None:
    """RPM 20 with nothing set but the quota: the server's batch limit (its 413) makes the 60 requests."""
    texts = [review(i, 8) for i in range(1200)]
    gateway = ServerProfile("gateway", openai_catalog=True, max_batch_inputs=20, rate_limit_headers=headers)
    fake = FakeOpenAI(rpm=20, rate_limit_window="sliding", server=gateway)
    elapsed, vectors = run(fake, texts, tmp_path, **({} if headers else {"rpm": 20}))
    np.testing.assert_array_equal(vectors, fake.embeddings(texts, dimensions=DIMS))
    assert fake.ledger.count("/v1/embeddings", status=413) == 1  # learned once, then remembered
    assert fake.ledger.embedding_requests == 60
    minimum = window_minimum(60, 20)
    assert elapsed <= 1.25 * minimum, (elapsed, minimum)
    assert fake.ledger.rate_limited <= 2
