"""Batch API mode against the fake: sharding, polling on the fake clock, retries, reassembly and resume."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
from embedding_helpers import words

from finetune_embed import ConfigError
from finetune_embed.embeddings import Embedder, EmbeddingCache
from finetune_embed.embeddings._batch_api import BatchAPIError, BatchTimeoutError, _line_error, _permanent
from finetune_embed.testing import FakeOpenAI, JobSpeed

MakeEmbedder = Callable[..., Embedder]


def corpus(n: int) -> list[str]:
    return [words(2 + i % 5, seed=i) for i in range(n)]


def created_batches(fake: FakeOpenAI) -> list[object]:
    return sorted(fake.store.batches.values(), key=lambda b: b.seq)  # type: ignore[attr-defined]


def test_end_to_end_in_input_order_and_cached(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    texts = corpus(3000)
    texts[10] = texts[20]  # a duplicate is sent once
    emb = make_embedder()
    result = emb.embed_batch_api(texts, poll_interval=20)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert fake.ledger.batch_tokens_billed == fake.ledger.tokens_billed == result.stats.tokens
    assert set(fake.ledger.billed_texts.values()) == {1}
    assert fake.ledger.count("/v1/embeddings") == 0  # nothing went through the synchronous endpoint
    (batch,) = created_batches(fake)
    assert batch.endpoint == "/v1/embeddings"  # type: ignore[attr-defined]
    assert fake.store.files == {}  # input, output and error files deleted once cached
    # the cache is full: a synchronous run costs nothing
    again = make_embedder().embed_with_info(texts)
    assert again.stats.cached == again.stats.unique
    assert fake.ledger.count("/v1/embeddings") == 0


def test_shards_respect_every_limit(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    texts = corpus(2500)
    emb = make_embedder(max_batch_inputs=100)
    emb.embed_batch_api(texts, poll_interval=10, max_inputs_per_batch=700, max_requests_per_file=5,
                        max_file_bytes=40_000, delete_files=False)
    batches = created_batches(fake)
    assert len(batches) >= 5
    for b in batches:
        inputs = sum(len(line["body"]["input"]) for line in b.lines)  # type: ignore[attr-defined]
        assert inputs <= 500  # 5 requests of at most 100
        assert len(b.lines) <= 5  # type: ignore[attr-defined]
        size = len(fake.store.files[b.input_file_id].content)  # type: ignore[attr-defined]
        assert size <= 40_000
    assert set(fake.ledger.billed_texts.values()) == {1}


def test_enqueued_tokens_stay_under_the_limit(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    texts = corpus(2000)
    cap = 2_500
    result = make_embedder(max_batch_inputs=50).embed_batch_api(texts, poll_interval=5, max_enqueued_tokens=cap)
    batches = created_batches(fake)
    assert len(batches) > 2
    for b in batches:
        queued = sum(
            a.input_tokens for a in batches  # type: ignore[attr-defined]
            if a.seq < b.seq and a.timestamps["completed_at"] > b.created_at  # type: ignore[attr-defined]
        )
        assert queued + b.input_tokens <= cap  # type: ignore[attr-defined]
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))


def test_expired_lines_are_sent_again(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.job_speed = JobSpeed(per_batch_line=40_000.0)  # three lines need 120,000 s: the 24 h window ends first
    texts = corpus(300)
    result = make_embedder(max_batch_inputs=100).embed_batch_api(texts, poll_interval=3600)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert [b.status for b in created_batches(fake)] == ["expired", "completed"]  # type: ignore[attr-defined]
    assert set(fake.ledger.billed_texts.values()) == {1}


def test_lines_the_server_refuses_are_reported_and_the_rest_kept(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.add_embedding_model("tiny-model", dimensions=8, max_input_tokens=5)
    emb = make_embedder(model="tiny-model", max_batch_inputs=1)
    texts = ["one two", "this text is much longer than five tokens", "three"]
    with pytest.raises(BatchAPIError, match="1 batch request"):
        emb.embed_batch_api(texts, poll_interval=30)
    cache = EmbeddingCache(emb.cache_path)
    assert emb.cache_model == "fake:seed=0|tiny-model"  # the fake's vectors are kept apart from any server's
    assert cache.get(emb.cache_model, None, "one two") is not None
    assert cache.get(emb.cache_model, None, texts[1]) is None
    assert len(created_batches(fake)) == 1  # a 400 is not sent again


def test_a_run_that_times_out_is_resumed_without_paying_twice(fake: FakeOpenAI, make_embedder: MakeEmbedder) -> None:
    fake.job_speed = JobSpeed(per_batch_line=200.0)
    texts = corpus(500)
    with pytest.raises(BatchTimeoutError) as info:
        make_embedder(max_batch_inputs=100).embed_batch_api(texts, poll_interval=60, timeout=300)
    (batch_id,) = info.value.batch_ids
    assert len(created_batches(fake)) == 1
    # a new process, the same cache: it polls the journaled batch instead of creating another
    result = make_embedder(max_batch_inputs=100).embed_batch_api(texts, poll_interval=60)
    assert [b.id for b in created_batches(fake)] == [batch_id]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert set(fake.ledger.billed_texts.values()) == {1}
    assert EmbeddingCache(make_embedder().cache_path).journal_pending("text-embedding-3-small", None) == []


def test_bad_limits_are_refused(make_embedder: MakeEmbedder) -> None:
    with pytest.raises(ConfigError, match="max_inputs_per_batch"):
        make_embedder().embed_batch_api(["x"], max_inputs_per_batch=50_001)
    with pytest.raises(ConfigError, match="max_file_bytes"):
        make_embedder().embed_batch_api(["x"], max_file_bytes=300_000_000)


def test_line_error_classification() -> None:
    expired = {"custom_id": "a", "response": None, "error": {"code": "batch_expired", "message": "late"}}

    def failed(status: int, code: str | None) -> dict[str, object]:
        body = {"error": {"code": code, "message": "m"}}
        return {"custom_id": "x", "response": {"status_code": status, "body": body}}

    refused, throttled = failed(400, None), failed(429, "rate_limit_exceeded")
    assert not _permanent(_line_error(expired))
    assert _permanent(_line_error(refused))
    assert not _permanent(_line_error(throttled))
    assert json.dumps(_line_error(refused))
