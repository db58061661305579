"""AsyncEmbedder.embed_batch_api, the twin of Embedder.embed_batch_api (#15): the same batches, journal and resume
as the sync runner, and nothing paid twice, under the same faults as tests/embeddings/test_batch_api.py and
test_batch_create_once.py. A journal left by one runner is resumed by the other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from embedding_helpers import words

from finetune_embed import APITimeoutError, ConfigError, RetryPolicy, ServerError
from finetune_embed.embeddings import AsyncEmbedder, Embedder, EmbeddingCache, EmbeddingResult
from finetune_embed.embeddings._batch_api import BatchAPIError, BatchTimeoutError
from finetune_embed.testing import FakeOpenAI, JobSpeed

MODEL = "text-embedding-3-small"
RunBatch = Callable[..., EmbeddingResult]


def corpus(n: int) -> list[str]:
    return [words(2 + i % 5, seed=i) for i in range(n)]


def created_batches(fake: FakeOpenAI) -> list[Any]:
    return sorted(fake.store.batches.values(), key=lambda b: b.seq)  # type: ignore[attr-defined]


def posts(fake: FakeOpenAI, path: str) -> int:
    return sum(1 for r in fake.ledger.requests if r.method == "POST" and r.path == path)


def _embedder_kwargs(fake: FakeOpenAI, tmp_path: Path, kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("cache", tmp_path / "emb.sqlite")
    kwargs.setdefault("clock", fake.clock.now)
    kwargs.setdefault("sleep", fake.sleep)
    return kwargs


def _policy(fake: FakeOpenAI, retry: RetryPolicy | None) -> RetryPolicy:
    return retry if retry is not None else RetryPolicy(sleep=fake.sleep, jitter=0.0)


def run_async(
    fake: FakeOpenAI, tmp_path: Path, texts: list[str], *, retry: RetryPolicy | None = None,
    embedder: dict[str, Any] | None = None, **call: Any,
) -> EmbeddingResult:
    """``AsyncEmbedder(...).embed_batch_api(texts, **call)`` on ``fake``, paced on its clock, in a fresh loop."""
    kwargs = _embedder_kwargs(fake, tmp_path, dict(embedder or {}))

    async def main() -> EmbeddingResult:
        async with AsyncEmbedder(fake.async_client(retry=_policy(fake, retry)), **kwargs) as emb:
            return await emb.embed_batch_api(texts, **call)

    return asyncio.run(main())


def run_sync(
    fake: FakeOpenAI, tmp_path: Path, texts: list[str], *, retry: RetryPolicy | None = None,
    embedder: dict[str, Any] | None = None, **call: Any,
) -> EmbeddingResult:
    """The same call through the sync :class:`Embedder`."""
    kwargs = _embedder_kwargs(fake, tmp_path, dict(embedder or {}))
    with Embedder(fake.client(retry=_policy(fake, retry)), **kwargs) as emb:
        return emb.embed_batch_api(texts, **call)


def shape_of(fake: FakeOpenAI) -> list[list[tuple[str, list[str]]]]:
    """Each batch's request lines as (custom id, inputs), in creation order."""
    return [
        [(line["custom_id"], list(line["body"]["input"])) for line in b.lines] for b in created_batches(fake)
    ]


def test_the_same_batches_as_the_sync_runner(tmp_path: Path) -> None:
    texts = corpus(2500)
    texts[10] = texts[20]  # a duplicate is sent once
    call = {"poll_interval": 10, "max_inputs_per_batch": 700, "max_requests_per_file": 5, "max_file_bytes": 40_000,
            "delete_files": False}
    sync_fake, async_fake = FakeOpenAI(), FakeOpenAI()
    a = run_sync(sync_fake, tmp_path / "s", texts, embedder={"max_batch_inputs": 100}, **call)
    b = run_async(async_fake, tmp_path / "a", texts, embedder={"max_batch_inputs": 100}, **call)
    np.testing.assert_array_equal(b.vectors, async_fake.embeddings(texts))
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert len(created_batches(async_fake)) >= 5
    assert shape_of(sync_fake) == shape_of(async_fake)
    for batch in created_batches(async_fake):
        assert batch.endpoint == "/v1/embeddings"
        assert len(batch.lines) <= 5
        assert len(async_fake.store.files[batch.input_file_id].content) <= 40_000  # type: ignore[attr-defined]
    assert set(async_fake.ledger.billed_texts.values()) == {1}
    assert async_fake.ledger.count("/v1/embeddings") == 0  # nothing through the synchronous endpoint
    assert (a.stats.requests, a.stats.tokens, a.stats.unique) == (b.stats.requests, b.stats.tokens, b.stats.unique)


def test_files_are_deleted_and_the_cache_is_full(fake: FakeOpenAI, tmp_path: Path) -> None:
    texts = corpus(300)
    result = run_async(fake, tmp_path, texts, poll_interval=20)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert fake.store.files == {}  # input, output and error files deleted once cached
    assert fake.ledger.batch_tokens_billed == fake.ledger.tokens_billed == result.stats.tokens
    again = run_async(fake, tmp_path, texts, poll_interval=20)
    assert again.stats.cached == again.stats.unique
    assert len(created_batches(fake)) == 1


def test_enqueued_tokens_stay_under_the_limit(fake: FakeOpenAI, tmp_path: Path) -> None:
    texts = corpus(2000)
    cap = 2_500
    result = run_async(fake, tmp_path, texts, embedder={"max_batch_inputs": 50}, poll_interval=5,
                       max_enqueued_tokens=cap)
    batches = created_batches(fake)
    assert len(batches) > 2
    for b in batches:
        queued = sum(a.input_tokens for a in batches if a.seq < b.seq and a.timestamps["completed_at"] > b.created_at)
        assert queued + b.input_tokens <= cap
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))


def test_expired_lines_are_sent_again(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.job_speed = JobSpeed(per_batch_line=40_000.0)  # three lines need 120,000 s: the 24 h window ends first
    texts = corpus(300)
    result = run_async(fake, tmp_path, texts, embedder={"max_batch_inputs": 100}, poll_interval=3600)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert [b.status for b in created_batches(fake)] == ["expired", "completed"]
    assert set(fake.ledger.billed_texts.values()) == {1}


def test_lines_the_server_refuses_are_reported_and_the_rest_kept(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.add_embedding_model("tiny-model", dimensions=8, max_input_tokens=5)
    texts = ["one two", "this text is much longer than five tokens", "three"]
    with pytest.raises(BatchAPIError, match="1 batch request"):
        run_async(fake, tmp_path, texts, embedder={"model": "tiny-model", "max_batch_inputs": 1}, poll_interval=30)
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    assert cache.get("fake:seed=0|tiny-model", None, "one two") is not None
    assert cache.get("fake:seed=0|tiny-model", None, texts[1]) is None
    assert len(created_batches(fake)) == 1  # a 400 is not sent again


@pytest.mark.parametrize("resumer", ["async", "sync"])
def test_a_run_that_times_out_is_resumed_without_paying_twice(fake: FakeOpenAI, tmp_path: Path, resumer: str) -> None:
    """The async run times out; the next call over the same texts (async, or the sync Embedder on the same cache)
    polls the journaled batch instead of creating another."""
    fake.job_speed = JobSpeed(per_batch_line=200.0)
    texts = corpus(500)
    with pytest.raises(BatchTimeoutError) as info:
        run_async(fake, tmp_path, texts, embedder={"max_batch_inputs": 100}, poll_interval=60, timeout=300)
    (batch_id,) = info.value.batch_ids
    assert len(created_batches(fake)) == 1
    again = run_async if resumer == "async" else run_sync
    result = again(fake, tmp_path, texts, embedder={"max_batch_inputs": 100}, poll_interval=60)
    assert [b.id for b in created_batches(fake)] == [batch_id]
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert set(fake.ledger.billed_texts.values()) == {1}
    assert EmbeddingCache(tmp_path / "emb.sqlite").journal_pending(MODEL, None) == []


def test_the_async_runner_resumes_what_a_sync_run_left(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.job_speed = JobSpeed(per_batch_line=200.0)
    texts = corpus(500)
    with pytest.raises(BatchTimeoutError):
        run_sync(fake, tmp_path, texts, embedder={"max_batch_inputs": 100}, poll_interval=60, timeout=300)
    result = run_async(fake, tmp_path, texts, embedder={"max_batch_inputs": 100}, poll_interval=60)
    assert len(created_batches(fake)) == 1
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert set(fake.ledger.billed_texts.values()) == {1}


@pytest.mark.parametrize("fault", ["timeout", "502"])
def test_three_attempts_against_a_server_that_acts_then_fails_create_one_batch(
    fake: FakeOpenAI, tmp_path: Path, fault: str
) -> None:
    for path in ("/v1/batches", "/v1/files"):
        if fault == "timeout":
            fake.inject_timeout(path, method="POST", after=True, times=3)
        else:
            fake.inject(502, path=path, method="POST", after=True, times=3)
    texts = corpus(300)
    policy = RetryPolicy(max_attempts=3, sleep=fake.sleep, jitter=0.0)
    result = run_async(fake, tmp_path, texts, retry=policy, embedder={"max_batch_inputs": 100}, poll_interval=30,
                       delete_files=False)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert len(fake.store.batches) == 1
    assert posts(fake, "/v1/batches") == 1
    assert posts(fake, "/v1/files") == 1
    assert set(fake.ledger.billed_texts.values()) == {1}
    (batch,) = fake.store.batches.values()
    assert batch.metadata["finetune_embed_request"].startswith("batch-")  # type: ignore[attr-defined]


@pytest.mark.parametrize("cache", [True, False])
def test_a_failed_run_and_its_rerun_bill_each_text_once(fake: FakeOpenAI, tmp_path: Path, cache: bool) -> None:
    texts = corpus(400)
    embedder = {"cache": tmp_path / "c.sqlite" if cache else False, "max_batch_inputs": 100}
    fake.inject(502, path="/v1/batches", method="POST", after=True)
    with pytest.raises(ServerError):
        run_async(fake, tmp_path, texts, retry=RetryPolicy.none(), embedder=embedder, poll_interval=30)
    assert len(fake.store.batches) == 1
    if cache:
        ((entry, _, _),) = EmbeddingCache(tmp_path / "c.sqlite").journal_pending(MODEL, None)
        assert entry.startswith("pending:batch-")  # the tag, journaled before the create
    result = run_async(fake, tmp_path, texts, embedder=embedder, poll_interval=30)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert len(fake.store.batches) == 1
    assert posts(fake, "/v1/batches") == 1
    assert sum(fake.ledger.billed_texts.values()) == len(set(texts))
    if cache:
        assert EmbeddingCache(tmp_path / "c.sqlite").journal_pending(MODEL, None) == []


def test_a_create_that_never_reached_the_server_is_planned_again_without_a_second_upload(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    texts = corpus(200)
    fake.inject_timeout("/v1/batches", method="POST")
    with pytest.raises(APITimeoutError):
        run_async(fake, tmp_path, texts, retry=RetryPolicy.none(), poll_interval=30)
    assert fake.store.batches == {}
    result = run_async(fake, tmp_path, texts, poll_interval=30)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert len(fake.store.batches) == 1
    assert posts(fake, "/v1/files") == 1  # the input file of the first run was adopted
    assert set(fake.ledger.billed_texts.values()) == {1}


def test_a_finished_batch_whose_results_were_taken_is_not_adopted_by_a_cacheless_rerun(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    texts = corpus(50)
    run_async(fake, tmp_path, texts, embedder={"cache": False}, poll_interval=30)
    run_async(fake, tmp_path, texts, embedder={"cache": False}, poll_interval=30)
    assert len(fake.store.batches) == 2


def test_a_coroutine_sleep_paces_the_polls(fake: FakeOpenAI, tmp_path: Path) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        fake.sleep(seconds)
        await asyncio.sleep(0)

    texts = corpus(100)
    result = run_async(fake, tmp_path, texts, embedder={"sleep": sleep}, poll_interval=7, max_poll_interval=10)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert waits[0] == 7
    assert max(waits) == 10  # grows 1.5x per poll up to the maximum


def test_bad_limits_are_refused(fake: FakeOpenAI, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_inputs_per_batch"):
        run_async(fake, tmp_path, ["x"], max_inputs_per_batch=50_001)
    with pytest.raises(ConfigError, match="max_file_bytes"):
        run_async(fake, tmp_path, ["x"], max_file_bytes=300_000_000)
    assert fake.ledger.requests == []
