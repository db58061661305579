"""``/v1/files``: multipart create, list with pagination, retrieve, content and delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import ApiError, bad_request, not_found
from ._http import FakeRequest, FakeResponse
from ._multipart import Part, parse_multipart
from ._pagination import page, parse_limit
from ._state import FileRecord, Store
from ._validate import check_enum, check_expires_after

if TYPE_CHECKING:
    from ._fake import FakeOpenAI

__all__ = [
    "CREATE_PURPOSES",
    "check_upload_content",
    "get_file",
    "handle_create_file",
    "handle_delete_file",
    "handle_file_content",
    "handle_list_files",
    "handle_retrieve_file",
]

CREATE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_FILE_BYTES = 512 * 1024 * 1024
BATCH_FILE_TTL = 30 * 86400


def get_file(store: Store, file_id: str, *, param: str = "id") -> FileRecord:
    """The file ``file_id``; 404 ``No such File object`` when it does not exist (or expired)."""
    with store.lock:
        rec = store.files.get(file_id)
        if rec is not None and rec.expires_at is not None and store.now() >= rec.expires_at:
            del store.files[file_id]
            rec = None
    if rec is None:
        raise not_found(f"No such File object: {file_id}", param=param)
    return rec


def check_upload_content(filename: str, purpose: str, content: bytes) -> None:
    """What the service checks at upload time: size, ``.jsonl`` for fine-tuning and batches, UTF-8 for batches."""
    if len(content) > MAX_FILE_BYTES:
        raise ApiError(
            413,
            f"File is too large: {len(content)} bytes; the maximum is 512 MB. Use the Uploads API for larger files.",
            code="file_too_large",
        )
    if purpose == "fine-tune" and not filename.lower().endswith(".jsonl"):
        raise bad_request("Invalid file format for Fine-Tuning API. Must be .jsonl", param="file")
    if purpose == "batch":
        if not filename.lower().endswith(".jsonl"):
            raise bad_request("Invalid file format for Batch API. Must be .jsonl", param="file")
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("Invalid file for Batch API. Must be utf-8 encoded", param="file") from None


def _expiry(store: Store, purpose: str, seconds: int | None) -> int | None:
    now = int(store.now())
    if seconds is not None:
        return now + seconds
    return now + BATCH_FILE_TTL if purpose == "batch" else None


def handle_create_file(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/files`` (multipart: ``file``, ``purpose``, optional ``expires_after[anchor|seconds]``)."""
    parts = parse_multipart(req.headers.get("content-type", ""), req.body)
    fields: dict[str, Part] = {}
    for part in parts:
        fields.setdefault(part.name, part)
    expires: dict[str, Any] = {}
    for name, part in fields.items():
        if name in ("file", "purpose"):
            continue
        if name in ("expires_after[anchor]", "expires_after[seconds]"):
            key = name[len("expires_after[") : -1]
            text = part.text
            expires[key] = int(text) if key == "seconds" and text.lstrip("-").isdigit() else text
            continue
        raise bad_request(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    for required in ("file", "purpose"):
        if required not in fields:
            raise bad_request(
                f"Missing required parameter: '{required}'.", param=required, code="missing_required_parameter"
            )
    file_part = fields["file"]
    if file_part.filename is None:
        raise bad_request("Invalid 'file': expected a file upload, but got a plain form field.", param="file")
    purpose = check_enum(fields["purpose"].text, CREATE_PURPOSES, "purpose")
    seconds = check_expires_after(expires, "expires_after") if expires else None
    check_upload_content(file_part.filename, purpose, file_part.data)
    store = fake.store
    rec = store.add_file(file_part.filename, purpose, file_part.data, expires_at=_expiry(store, purpose, seconds))
    return FakeResponse.json(rec.to_api())


def handle_list_files(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/files`` (``purpose``, ``limit`` 1–10,000, ``order`` asc|desc, ``after``)."""
    limit = parse_limit(req, default=10_000, maximum=10_000)
    order = check_enum(req.q("order") or "desc", ["asc", "desc"], "order")
    purpose = req.q("purpose")
    store = fake.store
    now = store.now()
    with store.lock:
        recs = [
            r
            for r in store.files.values()
            if (purpose is None or r.purpose == purpose) and (r.expires_at is None or now < r.expires_at)
        ]
    recs.sort(key=lambda r: (r.created_at, r.seq), reverse=order == "desc")
    return FakeResponse.json(page([r.to_api() for r in recs], after=req.q("after"), limit=limit))


def handle_retrieve_file(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/files/{file_id}``."""
    return FakeResponse.json(get_file(fake.store, req.params["file_id"]).to_api())


def handle_file_content(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/files/{file_id}/content``: the raw bytes."""
    rec = get_file(fake.store, req.params["file_id"])
    return FakeResponse(200, rec.content, {"content-type": "application/octet-stream"})


def handle_delete_file(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``DELETE /v1/files/{file_id}``."""
    file_id = req.params["file_id"]
    get_file(fake.store, file_id)
    with fake.store.lock:
        fake.store.files.pop(file_id, None)
    return FakeResponse.json({"id": file_id, "object": "file", "deleted": True})
