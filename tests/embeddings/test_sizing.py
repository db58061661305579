"""Adaptive request sizing (#11 item 3, #12): size errors, slow servers, timeouts and the re-billing budget."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from finetune_embed import EmbeddingTimeoutError, InputTooLongError, RetryPolicy
from finetune_embed.embeddings import Embedder
from finetune_embed.embeddings._sizing import RequestSizer, SizeLimit, parse_size_error
from finetune_embed.testing import PROFILES, FakeOpenAI, Processing

SHARED = Path(__file__).resolve().parents[3] / "shared"


def reviews() -> list[str]:
    path = SHARED / "data" / "cookbook" / "fine_food_reviews_1k.csv"
    if not path.exists():
        pytest.skip("../shared/data is not available")
    with open(path, encoding="utf-8") as fh:
        return [f"Title: {r['Summary']}; Content: {r['Text']}" for r in csv.DictReader(fh)]


def short_texts(n: int) -> list[str]:
    return [f"short review {i}: the beans were fresh" for i in range(n)]


def embedder(fake: FakeOpenAI, **kwargs: object) -> Embedder:
    client = fake.client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0), **kwargs.pop("client_kwargs", {}))  # type: ignore[arg-type]
    return Embedder(client, cache=False, clock=fake.clock.now, sleep=fake.sleep, **kwargs)  # type: ignore[arg-type]


# --- reading size errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (413, "batch size 50 > maximum allowed batch size 32", SizeLimit(per_request=32)),
        (413, "Error code: 413 - {'error': 'batch size 66 > maximum allowed batch size 64', 'error_type': "
              "'Validation'}", SizeLimit(per_request=64)),
        (500, "input (992 tokens) is too large to process. increase the physical batch size (current batch size: "
              "512)", SizeLimit(per_input=512, given=992)),
        (413, "Input validation error: `inputs` must have less than 512 tokens. Given: 600",
         SizeLimit(per_input=511, given=600)),
        (413, "too many inputs in one request: 1200 > 20", SizeLimit(per_request=20)),
        (422, "inputs: 64 > max 32", SizeLimit(per_request=32)),
        (413, "Request Entity Too Large", SizeLimit()),
        (422, "too many inputs in the batch", SizeLimit()),
        (500, "The server had an error while processing your request.", None),
        (400, "'$.input' is invalid.", None),
    ],
)
def test_size_errors_are_read_with_their_limits(status: int, message: str, expected: SizeLimit | None) -> None:
    assert parse_size_error(status, message) == expected


def test_the_sizer_grows_while_fast_and_shrinks_near_the_timeout() -> None:
    sizer = RequestSizer.for_provider("compatible", max_inputs=2048, max_tokens=300_000)
    assert sizer.limits(2048, 300_000)[0] == 32
    sizer.on_success(32, 1000, latency=0.5, timeout=60.0)
    assert sizer.limits(2048, 300_000)[0] == 64  # at most doubling
    sizer.on_success(64, 2000, latency=50.0, timeout=60.0)  # approaching the timeout
    assert sizer.limits(2048, 300_000)[0] == pytest.approx(64 * 15 / 50, abs=1)
    sizer.on_timeout(19, 600)
    assert sizer.limits(2048, 300_000)[0] == 9
    openai = RequestSizer.for_provider("openai", max_inputs=2048, max_tokens=300_000)
    assert openai.limits(2048, 300_000) == (2048, 300_000)  # OpenAI takes the API's limits from the start


# --- text-embeddings-inference's batch limit ----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [32, 8])
def test_a_tei_batch_limit_is_learned_once_and_remembered(limit: int) -> None:
    fake = FakeOpenAI(server=PROFILES["tei"].with_options(max_batch_inputs=limit))
    texts = short_texts(600)
    emb = embedder(fake, model="bge-small-en-v1.5")
    result = emb.embed_with_info(texts)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts, model="bge-small-en-v1.5"))
    assert fake.ledger.count("/v1/embeddings", status=413) == 1
    assert result.stats.size_errors == 1
    assert max(r.n_inputs for r in fake.ledger.requests if r.status == 200) == limit
    assert set(fake.ledger.billed_texts.values()) == {1}
    # the limit is remembered for the client's lifetime: another call, another embedder, no 413
    other = Embedder(emb.client, model="bge-small-en-v1.5", cache=False, clock=fake.clock.now, sleep=fake.sleep)
    other.embed(short_texts(700)[600:])
    assert fake.ledger.count("/v1/embeddings", status=413) == 1


# --- a slow CPU server --------------------------------------------------------------------------------------------


def test_a_slow_local_server_works_with_the_defaults() -> None:
    """all-MiniLM-L6-v2 on 2 CPU cores behind an OpenAI-compatible server, 1,000 reviews, the 60 s timeout: the
    0.1 embedder sent one request of 1,000 inputs, timed out, and failed after 318 s."""
    fake = FakeOpenAI(server="ollama", processing=Processing(per_request=0.005, per_input=0.07, workers=1))
    texts = reviews()
    start = fake.clock.now()
    result = embedder(fake, model="all-minilm").embed_with_info(texts)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts, model="all-minilm"))
    elapsed = fake.clock.now() - start
    work = 0.07 * len(set(texts))
    assert elapsed <= 1.15 * work + 10  # the server is kept busy: about its own compute time
    assert result.stats.timeouts == 0
    assert set(fake.ledger.billed_texts.values()) == {1}


def test_a_timeout_shorter_than_the_server_needs_is_not_resent_at_the_same_size() -> None:
    """The 0.1 embedder re-sent the same full request at the same timeout until its retries ran out (200 texts
    billed 420 times, nothing delivered). Now each timed-out request is split, and billing twice is reported."""
    fake = FakeOpenAI(processing=Processing(per_input=0.5, workers=1))  # OpenAI-sized first request, slow server
    texts = short_texts(200)
    emb = embedder(fake, client_kwargs={"timeout": 10.0})
    result = emb.embed_with_info(texts)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts))
    assert result.stats.timeouts >= 4  # 200 -> 100 -> 50 -> 25 -> 12 inputs
    billed = fake.ledger.billed_texts
    assert max(billed.values()) <= 1 + result.stats.timeouts  # never the 420 times of 0.1
    billed_twice = fake.ledger.tokens_billed - result.stats.tokens  # what the server billed and we never got
    assert billed_twice > 0
    assert result.stats.rebilled_tokens == billed_twice  # reported exactly
    sizes = [r.n_inputs for r in fake.ledger.requests]
    assert sizes[:4] == [200, 100, 50, 25]  # never the same size again after a timeout


def test_a_single_slow_input_gets_a_longer_timeout() -> None:
    fake = FakeOpenAI(processing=Processing(per_input=15.0, workers=1))
    emb = embedder(fake, client_kwargs={"timeout": 10.0})
    result = emb.embed_with_info(["one very slow input"])
    np.testing.assert_array_equal(result.vectors[0], fake.embedding("one very slow input"))
    assert result.stats.timeouts == 1


def test_re_billing_is_bounded_by_a_budget() -> None:
    fake = FakeOpenAI(processing=Processing(per_input=0.5, workers=1))
    texts = short_texts(400)
    emb = embedder(fake, client_kwargs={"timeout": 10.0}, max_rebilled_tokens=2_000)
    with pytest.raises(EmbeddingTimeoutError, match="billed twice") as info:
        emb.embed(texts)
    assert info.value.rebilled_tokens > 2_000
    assert fake.ledger.tokens_billed <= 2 * 2_000 + sum(r.tokens for r in fake.ledger.requests)


# --- llama.cpp's physical batch: an input too long for the server ----------------------------------------------------


def llama_texts() -> list[str]:
    texts = short_texts(40)
    texts[7] = "long review: " + "the coffee was fresh and the beans were bitter " * 60  # ~600 cl100k tokens
    return texts


def test_an_input_too_long_for_llama_cpp_is_named_not_retried() -> None:
    fake = FakeOpenAI(server="llamacpp")
    texts = llama_texts()
    with pytest.raises(InputTooLongError, match="input 7 as too long") as info:
        embedder(fake, model="nomic-embed-text").embed(texts)
    assert "physical batch size" in str(info.value)
    assert info.value.index == 7
    failed = [r for r in fake.ledger.requests if r.status == 500]
    assert len(failed) <= 4  # found by halving the request, never retried as it was
    assert len(set(fake.ledger.billed_texts)) == 39  # everything else was embedded


def test_with_chunking_inputs_are_cut_to_what_the_server_takes() -> None:
    fake = FakeOpenAI(server="llamacpp")
    texts = llama_texts()
    result = embedder(fake, model="nomic-embed-text", long_inputs="chunk").embed_with_info(texts)
    assert result.long == [7]
    assert not result.invalid.any()
    np.testing.assert_array_equal(result.vectors[:7], fake.embeddings(texts[:7], model="nomic-embed-text"))
    assert abs(float(np.linalg.norm(result.vectors[7])) - 1.0) < 1e-5
    pieces = [t for t in fake.ledger.billed_texts if t.startswith("long review") or t not in texts]
    assert len(pieces) >= 2  # the long input went as pieces the server accepts
