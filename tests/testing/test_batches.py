"""Batches of /v1/embeddings lines through the official SDK."""

from __future__ import annotations

import json

import numpy as np
import openai
import pytest
from openai.types import Batch

from finetune_embed.testing import FakeOpenAI, JobSpeed

from ._data import embedding_lines, jsonl

SPEED = JobSpeed(batch_validating=5, per_batch_line=10, batch_finalizing=5, batch_cancelling=20)


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI(job_speed=SPEED)


def _batch(sdk: openai.OpenAI, content: bytes) -> Batch:
    file_id = sdk.files.create(file=("in.jsonl", content), purpose="batch").id
    return sdk.batches.create(
        input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h", metadata={"run": "1"}
    )


def _lines(sdk: openai.OpenAI, file_id: str | None) -> list[dict[str, object]]:
    assert file_id is not None
    return [json.loads(line) for line in sdk.files.content(file_id).content.decode().splitlines()]


def test_lifecycle_output_and_error_files(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    texts = [["alpha beta", "gamma"], ["delta"], [""], ["epsilon zeta"]]
    batch = _batch(sdk, embedding_lines(texts))
    assert isinstance(batch, Batch)
    assert (batch.status, batch.endpoint, batch.completion_window) == ("validating", "/v1/embeddings", "24h")
    assert batch.expires_at == batch.created_at + 86400
    assert batch.metadata == {"run": "1"}
    fake.advance(5)
    running = sdk.batches.retrieve(batch.id)
    assert running.status == "in_progress"
    assert running.request_counts is not None
    assert running.request_counts.total == 4
    fake.advance(20)
    partial = sdk.batches.retrieve(batch.id)
    assert partial.request_counts is not None
    assert partial.request_counts.completed == 2
    fake.advance(20)
    assert sdk.batches.retrieve(batch.id).status == "finalizing"
    fake.advance(5)
    done = sdk.batches.retrieve(batch.id)
    assert done.status == "completed"
    assert done.completed_at == batch.created_at + 5 + 40 + 5
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 1)
    assert done.usage is not None
    assert done.usage.input_tokens == fake.ledger.batch_tokens_billed > 0
    out = _lines(sdk, done.output_file_id)
    assert [o["custom_id"] for o in out] == ["req-0", "req-1", "req-3"]
    first = out[0]
    assert first["error"] is None
    response = first["response"]
    assert isinstance(response, dict)
    assert response["status_code"] == 200
    emb = response["body"]["data"][1]["embedding"]
    assert np.array_equal(np.asarray(emb, dtype=np.float32), fake.embedding("gamma"))
    errors = _lines(sdk, done.error_file_id)
    assert [e["custom_id"] for e in errors] == ["req-2"]
    err_response = errors[0]["response"]
    assert isinstance(err_response, dict)
    assert err_response["status_code"] == 400
    assert err_response["body"]["error"]["message"].startswith("'$.input' is invalid.")
    assert sdk.files.retrieve(done.output_file_id).purpose == "batch_output"  # type: ignore[arg-type]
    assert fake.ledger.billed_texts["gamma"] == 1
    assert fake.ledger.embedding_requests == 0  # batch lines are not synchronous requests


def test_cancel_keeps_partial_results(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    batch = _batch(sdk, embedding_lines([[f"text {i}"] for i in range(10)]))
    fake.advance(5 + 30)
    cancelling = sdk.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    fake.advance(100)  # lines would have run; they do not after the cancel
    cancelled = sdk.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_at == cancelled.cancelling_at + 20  # type: ignore[operator]
    assert len(_lines(sdk, cancelled.output_file_id)) == 3
    with pytest.raises(openai.ConflictError):
        sdk.batches.cancel(batch.id)


def test_list_pagination(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    ids = []
    for _ in range(3):
        ids.append(_batch(sdk, embedding_lines([["x"]])).id)
        fake.advance(1)
    page = sdk.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2]
    assert page.has_more
    assert [b.id for b in sdk.batches.list(limit=2)] == ids[::-1]


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (jsonl(["{nope"]), "invalid_json_line"),
        (jsonl([{"custom_id": "a", "method": "POST", "url": "/v1/embeddings"}]), "missing_required_parameter"),
        (jsonl([{"custom_id": "a", "method": "GET", "url": "/v1/embeddings", "body": {}}]), "invalid_method"),
        (
            jsonl([{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}]),
            "mismatched_endpoint",
        ),
        (embedding_lines([["a"]]) + embedding_lines([["b"]]), "duplicate_custom_id"),
        (b"\n", "empty_file"),
    ],
)
def test_invalid_input_files_fail_the_batch(fake: FakeOpenAI, sdk: openai.OpenAI, content: bytes, code: str) -> None:
    batch = _batch(sdk, content)
    fake.advance(5)
    checked = sdk.batches.retrieve(batch.id)
    assert checked.status == "failed"
    assert checked.failed_at == batch.created_at + 5
    assert checked.errors is not None
    assert checked.errors.data
    assert checked.errors.data[0].code == code


def test_mixed_models_fail(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    content = embedding_lines([["a"]]) + embedding_lines([["b"]], model="text-embedding-3-large", start=1)
    batch = _batch(sdk, content)
    fake.advance(5)
    checked = sdk.batches.retrieve(batch.id)
    assert checked.status == "failed"
    assert checked.errors is not None
    assert [e.code for e in checked.errors.data or []] == ["mismatched_model"]


def test_expiry_after_the_completion_window() -> None:
    fake = FakeOpenAI(job_speed=JobSpeed(batch_validating=0, per_batch_line=50_000))
    sdk = fake.openai_client()
    batch = _batch(sdk, embedding_lines([["a"], ["b"], ["c"]]))
    fake.advance(86_400)
    expired = sdk.batches.retrieve(batch.id)
    assert expired.status == "expired"
    assert len(_lines(sdk, expired.output_file_id)) == 1
    errors = _lines(sdk, expired.error_file_id)
    assert [e["error"]["code"] for e in errors] == ["batch_expired", "batch_expired"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"completion_window": "1h"}, 400, "invalid_value"),
        ({"endpoint": "/v1/foo"}, 400, "invalid_value"),
        ({"endpoint": "/v1/chat/completions"}, 400, "unsupported_endpoint"),
        ({"input_file_id": "file-nope"}, 404, None),
    ],
)
def test_create_refusals(sdk: openai.OpenAI, kwargs: dict[str, str], status: int, code: str | None) -> None:
    file_id = sdk.files.create(file=("in.jsonl", embedding_lines([["a"]])), purpose="batch").id
    args = {"input_file_id": file_id, "endpoint": "/v1/embeddings", "completion_window": "24h", **kwargs}
    with pytest.raises(openai.APIStatusError) as exc:
        sdk.batches.create(**args)  # type: ignore[arg-type]
    assert exc.value.status_code == status
    assert exc.value.code == code


def test_input_file_must_have_batch_purpose(sdk: openai.OpenAI) -> None:
    file_id = sdk.files.create(file=("in.jsonl", embedding_lines([["a"]])), purpose="fine-tune").id
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.batches.create(input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h")
    assert exc.value.param == "input_file_id"
