"""Batch API mode never bills a text twice when creates fail after the server acted (#11 item 1): the retry
adopts the batch (and the input file), and a failed run's rerun finds it through the journal (or, without a
cache, through the content-derived request id on the server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from embedding_helpers import words

from finetune_embed import APITimeoutError, RetryPolicy, ServerError
from finetune_embed.embeddings import Embedder, EmbeddingCache
from finetune_embed.testing import FakeOpenAI

MakeEmbedder = Callable[..., Embedder]
MODEL = "text-embedding-3-small"


def corpus(n: int) -> list[str]:
    return [words(2 + i % 5, seed=i) for i in range(n)]


def batch_posts(fake: FakeOpenAI) -> int:
    return sum(1 for r in fake.ledger.requests if r.method == "POST" and r.path == "/v1/batches")


def batch_uploads(fake: FakeOpenAI) -> int:
    return sum(1 for r in fake.ledger.requests if r.method == "POST" and r.path == "/v1/files")


def policy(fake: FakeOpenAI, attempts: int) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, sleep=fake.sleep, jitter=0.0)


@pytest.mark.parametrize("fault", ["timeout", "502"])
def test_three_attempts_against_a_server_that_acts_then_fails_create_one_batch(
    fake: FakeOpenAI, make_embedder: MakeEmbedder, fault: str
) -> None:
    """Every batch create and every input upload is answered with a timeout / 502 after the server acted."""
    for path in ("/v1/batches", "/v1/files"):
        if fault == "timeout":
            fake.inject_timeout(path, method="POST", after=True, times=3)
        else:
            fake.inject(502, path=path, method="POST", after=True, times=3)
    texts = corpus(300)
    emb = make_embedder(client=fake.client(retry=policy(fake, 3)), max_batch_inputs=100)
    result = emb.embed_batch_api(texts, poll_interval=30, delete_files=False)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert len(fake.store.batches) == 1
    assert batch_posts(fake) == 1
    assert batch_uploads(fake) == 1
    assert set(fake.ledger.billed_texts.values()) == {1}
    (batch,) = fake.store.batches.values()
    assert batch.metadata["finetune_embed_request"].startswith("batch-")  # type: ignore[attr-defined]


@pytest.mark.parametrize("cache", [True, False])
def test_a_failed_run_and_its_rerun_bill_each_text_once(
    fake: FakeOpenAI, make_embedder: MakeEmbedder, tmp_path: Path, cache: bool
) -> None:
    """Run 1 fails on a create the server acted on (no retries): the batch runs on the server, unknown to the
    caller. Run 2 (the same call) finds it, through the journal's request id, or without a cache on the server by
    the content-derived id, and polls it instead of paying again."""
    texts = corpus(400)
    kwargs = {"cache": tmp_path / "c.sqlite" if cache else False, "max_batch_inputs": 100}
    fake.inject(502, path="/v1/batches", method="POST", after=True)
    with pytest.raises(ServerError):
        make_embedder(client=fake.client(retry=RetryPolicy.none()), **kwargs).embed_batch_api(texts, poll_interval=30)
    assert len(fake.store.batches) == 1
    if cache:
        pending = EmbeddingCache(tmp_path / "c.sqlite").journal_pending(MODEL, None)
        (entry, _, _), *_ = pending
        assert entry.startswith("pending:batch-")  # the tag, journaled before the create
    result = make_embedder(**kwargs).embed_batch_api(texts, poll_interval=30)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert len(fake.store.batches) == 1
    assert batch_posts(fake) == 1
    assert set(fake.ledger.billed_texts.values()) == {1}
    assert sum(fake.ledger.billed_texts.values()) == len(set(texts))
    if cache:
        assert EmbeddingCache(tmp_path / "c.sqlite").journal_pending(MODEL, None) == []


def test_a_create_that_never_reached_the_server_is_planned_again_without_a_second_upload(
    fake: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    """Run 1 uploads the input file, then its batch create times out before the server saw it. Run 2 looks the
    journaled request up, finds no batch, plans the texts again and reuses the uploaded file."""
    texts = corpus(200)
    fake.inject_timeout("/v1/batches", method="POST")
    with pytest.raises(APITimeoutError):
        make_embedder(client=fake.client(retry=RetryPolicy.none())).embed_batch_api(texts, poll_interval=30)
    assert fake.store.batches == {}
    result = make_embedder().embed_batch_api(texts, poll_interval=30)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert len(fake.store.batches) == 1
    assert batch_uploads(fake) == 1  # the input file of run 1 was adopted
    assert set(fake.ledger.billed_texts.values()) == {1}


def test_a_finished_batch_whose_results_were_taken_is_not_adopted_by_a_cacheless_rerun(
    fake: FakeOpenAI, make_embedder: MakeEmbedder
) -> None:
    """Without a cache, the same texts embedded twice: the first batch's output was deleted once read, so the
    second call cannot adopt it and pays again, as asked (the documented cost of cache=False)."""
    texts = corpus(50)
    make_embedder(cache=False).embed_batch_api(texts, poll_interval=30)
    make_embedder(cache=False).embed_batch_api(texts, poll_interval=30)
    assert len(fake.store.batches) == 2
