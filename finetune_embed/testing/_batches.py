"""``/v1/batches``: create, retrieve, list and cancel. Batches of ``/v1/embeddings`` lines run on the fake clock:
validating → in_progress (one line per ``JobSpeed.per_batch_line``) → finalizing → completed, writing an output
file and an error file keyed by ``custom_id``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..catalog import default_catalog
from ._embeddings import parse_embedding_request, run_embedding_job
from ._errors import ApiError, bad_request, not_found
from ._http import FakeRequest, FakeResponse
from ._pagination import page, parse_limit
from ._state import BatchRecord, Store
from ._validate import check_enum, check_expires_after, check_metadata, check_string, check_unknown, require

if TYPE_CHECKING:
    from ._fake import FakeOpenAI

__all__ = [
    "ENDPOINTS",
    "advance_batch",
    "handle_cancel_batch",
    "handle_create_batch",
    "handle_list_batches",
    "handle_retrieve_batch",
]

ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
WINDOW_SECONDS = 24 * 3600
MAX_REQUESTS = 50_000
TERMINAL = ("failed", "completed", "expired", "cancelled")


def _line_error(code: str, message: str, line: int | None, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def handle_create_batch(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/batches``."""
    body = req.json_object()
    check_unknown(body, ("input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"))
    require(body, "input_file_id", "endpoint", "completion_window")
    file_id = check_string(body["input_file_id"], "input_file_id", min_length=1)
    endpoint = check_enum(body["endpoint"], ENDPOINTS, "endpoint")
    window = check_enum(body["completion_window"], ["24h"], "completion_window")
    metadata = check_metadata(body.get("metadata"))
    expires = body.get("output_expires_after")
    if expires is not None:
        check_expires_after(expires, "output_expires_after")
    if endpoint != "/v1/embeddings":
        raise bad_request(
            f"FakeOpenAI runs only /v1/embeddings batches, not {endpoint}.",
            param="endpoint",
            code="unsupported_endpoint",
        )
    store = fake.store
    with store.lock:
        rec = store.files.get(str(file_id))
        if rec is None:
            raise not_found(f"No such File object: {file_id}", param="input_file_id")
        if rec.purpose != "batch":
            raise bad_request(
                f"File {file_id} has purpose '{rec.purpose}'; a batch input file must be uploaded with purpose "
                "'batch'.",
                param="input_file_id",
                code="invalid_file_purpose",
            )
        now = store.now()
        batch = BatchRecord(
            id=fake.new_id("batch_", 32, "0123456789abcdef"),
            seq=store.next_seq(),
            created_at=int(now),
            input_file_id=str(file_id),
            endpoint=endpoint,
            completion_window=window,
            metadata=metadata,
            output_expires_after=expires,
            phase_ends_at=now + store.speed.batch_validating,
        )
        store.batches[batch.id] = batch
        return FakeResponse.json(batch_to_api(batch))


def _validate(store: Store, batch: BatchRecord) -> list[dict[str, Any]]:
    rec = store.files.get(batch.input_file_id)
    if rec is None:
        return [_line_error("invalid_file", f"The input file {batch.input_file_id} no longer exists.", None)]
    try:
        text = rec.content.decode("utf-8")
    except UnicodeDecodeError:
        return [_line_error("invalid_file", "Invalid file for Batch API. Must be utf-8 encoded", None)]
    errors: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    n_inputs = 0
    for no, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError:
            errors.append(_line_error("invalid_json_line", "This line is not parseable as valid JSON.", no))
            continue
        if not isinstance(item, dict):
            errors.append(_line_error("invalid_json_line", "This line is not a JSON object.", no))
            continue
        missing = [k for k in ("custom_id", "method", "url", "body") if k not in item]
        if missing:
            errors.append(
                _line_error(
                    "missing_required_parameter", f"Missing required parameter: '{missing[0]}'.", no, missing[0]
                )
            )
            continue
        cid = item["custom_id"]
        if not isinstance(cid, str):
            errors.append(_line_error("invalid_value", "The custom_id must be a string.", no, "custom_id"))
        elif cid in seen:
            errors.append(
                _line_error(
                    "duplicate_custom_id",
                    "The custom_id for this request is a duplicate of another request. The custom_id parameter must "
                    "be unique for each request in a batch.",
                    no,
                    "custom_id",
                )
            )
        if item["method"] != "POST":
            errors.append(_line_error("invalid_method", "The method for this request must be POST.", no, "method"))
        if item["url"] != batch.endpoint:
            errors.append(
                _line_error(
                    "mismatched_endpoint",
                    f"The URL provided for this request ({item['url']}) does not match the batch endpoint "
                    f"({batch.endpoint}).",
                    no,
                    "url",
                )
            )
        body = item["body"]
        if not isinstance(body, dict):
            errors.append(_line_error("invalid_value", "The body must be a JSON object.", no, "body"))
            continue
        if isinstance(cid, str):
            seen.add(cid)
        model = body.get("model")
        if isinstance(model, str):
            models.add(model)
        inp = body.get("input")
        n_inputs += len(inp) if isinstance(inp, list) and inp and not isinstance(inp[0], int) else 1
        lines.append({"custom_id": cid, "body": body, "line": no})
    if not errors and not lines:
        errors.append(_line_error("empty_file", "The batch input file is empty.", None))
    if len(lines) > MAX_REQUESTS:
        errors.append(
            _line_error(
                "too_many_requests", f"The batch input file has {len(lines)} requests; the maximum is 50000.", None
            )
        )
    cap = default_catalog().max_batch_file_inputs
    if n_inputs > cap:
        errors.append(
            _line_error(
                "too_many_inputs",
                f"The batch has {n_inputs} embedding inputs; /v1/embeddings batches allow at most {cap}.",
                None,
            )
        )
    if len(models) > 1:
        errors.append(
            _line_error(
                "mismatched_model",
                f"All requests in a batch must use the same model; found {', '.join(sorted(models))}.",
                None,
                "model",
            )
        )
    batch.lines = lines
    batch.model = next(iter(models)) if len(models) == 1 else None
    return errors


def _process_line(fake: FakeOpenAI, batch: BatchRecord, line: dict[str, Any]) -> None:
    request_id = fake.new_id("req_", 32, "0123456789abcdef")
    out_id = fake.new_id("batch_req_", 32, "0123456789abcdef")
    try:
        job = parse_embedding_request(fake, line["body"])
    except ApiError as err:
        batch.errors_out.append(
            {
                "id": out_id,
                "custom_id": line["custom_id"],
                "response": {"status_code": err.status, "request_id": request_id, "body": err.body},
                "error": None,
            }
        )
        return
    body = run_embedding_job(fake, job)
    fake.ledger.bill(job.texts, job.total_tokens, batch=True)
    batch.input_tokens += job.total_tokens
    batch.results.append(
        {
            "id": out_id,
            "custom_id": line["custom_id"],
            "response": {"status_code": 200, "request_id": request_id, "body": body},
            "error": None,
        }
    )


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode("utf-8")


def _write_files(store: Store, batch: BatchRecord, at: float) -> None:
    seconds = (batch.output_expires_after or {}).get("seconds")
    expires_at = int(at) + int(seconds) if seconds else None

    def write(kind: str, rows: list[dict[str, Any]]) -> str:
        name = f"batch_{batch.id}_{kind}.jsonl"
        return store.add_file(name, "batch_output", _jsonl(rows), expires_at=expires_at, created_at=int(at)).id

    if batch.results:
        batch.output_file_id = write("output", batch.results)
    if batch.errors_out:
        batch.error_file_id = write("error", batch.errors_out)


def _process_until(fake: FakeOpenAI, batch: BatchRecord, until: float) -> None:
    per_line = fake.store.speed.per_batch_line
    while batch.processed < len(batch.lines) and batch.started_processing + (batch.processed + 1) * per_line <= until:
        _process_line(fake, batch, batch.lines[batch.processed])
        batch.processed += 1


def advance_batch(store: Store, batch: BatchRecord, now: float) -> None:
    """Run ``batch`` through every transition due by ``now``."""
    fake = store.fake
    speed = store.speed
    expires_at = batch.created_at + WINDOW_SECONDS
    if batch.status == "validating" and now >= batch.phase_ends_at:
        at = batch.phase_ends_at
        errors = _validate(store, batch)
        if errors:
            batch.status = "failed"
            batch.timestamps["failed_at"] = int(at)
            batch.errors = errors[:1000]
            return
        batch.status = "in_progress"
        batch.timestamps["in_progress_at"] = int(at)
        batch.started_processing = at
    if batch.status == "in_progress":
        _process_until(fake, batch, min(now, expires_at))
        if batch.processed == len(batch.lines):
            at = batch.started_processing + len(batch.lines) * speed.per_batch_line
            batch.status = "finalizing"
            batch.timestamps["finalizing_at"] = int(at)
            batch.phase_ends_at = at + speed.batch_finalizing
        elif now >= expires_at:
            for line in batch.lines[batch.processed :]:
                batch.errors_out.append(
                    {
                        "id": fake.new_id("batch_req_", 32, "0123456789abcdef"),
                        "custom_id": line["custom_id"],
                        "response": None,
                        "error": {
                            "code": "batch_expired",
                            "message": "This request could not be executed before the completion window expired.",
                        },
                    }
                )
            batch.status = "expired"
            batch.timestamps["expired_at"] = expires_at
            _write_files(store, batch, expires_at)
            return
    if batch.status == "finalizing" and now >= batch.phase_ends_at:
        batch.status = "completed"
        batch.timestamps["completed_at"] = int(batch.phase_ends_at)
        _write_files(store, batch, batch.phase_ends_at)
    elif batch.status == "cancelling" and now >= batch.phase_ends_at:
        batch.status = "cancelled"
        batch.timestamps["cancelled_at"] = int(batch.phase_ends_at)
        _write_files(store, batch, batch.phase_ends_at)


def batch_to_api(batch: BatchRecord) -> dict[str, Any]:
    """The ``Batch`` object."""
    ts = batch.timestamps
    processed_ok = len(batch.results)
    failed = len(batch.errors_out)
    out: dict[str, Any] = {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": batch.model,
        "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": batch.status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": batch.created_at,
        "in_progress_at": ts.get("in_progress_at"),
        "expires_at": batch.created_at + WINDOW_SECONDS,
        "finalizing_at": ts.get("finalizing_at"),
        "completed_at": ts.get("completed_at"),
        "failed_at": ts.get("failed_at"),
        "expired_at": ts.get("expired_at"),
        "cancelling_at": ts.get("cancelling_at"),
        "cancelled_at": ts.get("cancelled_at"),
        "request_counts": {"total": len(batch.lines), "completed": processed_ok, "failed": failed},
        "metadata": batch.metadata,
        "usage": {
            "input_tokens": batch.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 0,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": batch.input_tokens,
        },
    }
    return out


def _get(fake: FakeOpenAI, batch_id: str) -> BatchRecord:
    batch = fake.store.batches.get(batch_id)
    if batch is None:
        raise not_found(f"No batch found with id '{batch_id}'.", param="batch_id")
    return batch


def handle_retrieve_batch(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/batches/{batch_id}``."""
    with fake.store.lock:
        return FakeResponse.json(batch_to_api(_get(fake, req.params["batch_id"])))


def handle_list_batches(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/batches`` (``after``, ``limit`` 1–100), newest first."""
    limit = parse_limit(req, default=20, maximum=100)
    with fake.store.lock:
        batches = sorted(fake.store.batches.values(), key=lambda b: (b.created_at, b.seq), reverse=True)
        items = [batch_to_api(b) for b in batches]
    return FakeResponse.json(page(items, after=req.q("after"), limit=limit))


def handle_cancel_batch(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/batches/{batch_id}/cancel``: cancelling now, cancelled (with partial results) later."""
    with fake.store.lock:
        batch = _get(fake, req.params["batch_id"])
        if batch.status in TERMINAL or batch.status == "cancelling":
            raise ApiError(
                409,
                f"Cannot cancel batch {batch.id}: its status is '{batch.status}'.",
                param="batch_id",
                code="batch_not_cancellable",
            )
        now = fake.store.now()
        if batch.status == "validating":
            batch.lines = []
        batch.status = "cancelling"
        batch.timestamps["cancelling_at"] = int(now)
        batch.phase_ends_at = now + fake.store.speed.batch_cancelling
        return FakeResponse.json(batch_to_api(batch))
