"""``/v1/uploads``: create, add part, complete and cancel (files larger than 512 MB, in parts up to 64 MB)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ._errors import bad_request, not_found
from ._files import check_upload_content
from ._http import FakeRequest, FakeResponse
from ._multipart import parse_multipart
from ._state import UploadRecord
from ._validate import check_enum, check_expires_after, check_int, check_string, check_unknown, require

if TYPE_CHECKING:
    from ._fake import FakeOpenAI

__all__ = ["handle_add_part", "handle_cancel_upload", "handle_complete_upload", "handle_create_upload"]

UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision")
MAX_UPLOAD_BYTES = 8 * 1024**3
MAX_PART_BYTES = 64 * 1024**2
UPLOAD_TTL = 3600
JSONL_MIME = ("text/jsonl", "application/jsonl", "application/x-ndjson", "application/json", "text/plain")


def _to_api(up: UploadRecord) -> dict[str, Any]:
    return {
        "id": up.id,
        "object": "upload",
        "bytes": up.nbytes,
        "created_at": up.created_at,
        "expires_at": up.expires_at,
        "filename": up.filename,
        "purpose": up.purpose,
        "status": up.status,
        "file": up.file.to_api() if up.file is not None else None,
    }


def _get(fake: FakeOpenAI, upload_id: str, *, pending: bool = True) -> UploadRecord:
    fake.store.tick()
    up = fake.store.uploads.get(upload_id)
    if up is None:
        raise not_found(f"No such Upload object: {upload_id}", param="upload_id")
    if pending and up.status != "pending":
        raise bad_request(
            f"Upload {upload_id} is {up.status}; parts can only be added to, and only a pending upload can be "
            "completed or cancelled.",
            param="upload_id",
        )
    return up


def handle_create_upload(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/uploads``."""
    body = req.json_object()
    check_unknown(body, ("filename", "purpose", "bytes", "mime_type", "expires_after"))
    require(body, "filename", "purpose", "bytes", "mime_type")
    filename = check_string(body["filename"], "filename", min_length=1)
    purpose = check_enum(body["purpose"], UPLOAD_PURPOSES, "purpose")
    size = check_int(body["bytes"], "bytes", minimum=0, maximum=MAX_UPLOAD_BYTES)
    mime = check_string(body["mime_type"], "mime_type", min_length=1)
    assert isinstance(filename, str)
    assert isinstance(size, int)
    assert isinstance(mime, str)
    if purpose in ("fine-tune", "batch") and mime.split(";")[0].strip().lower() not in JSONL_MIME:
        raise bad_request(
            f"Invalid 'mime_type': {mime!r} is not supported for purpose '{purpose}'. Use text/jsonl.",
            param="mime_type",
            code="invalid_value",
        )
    expires = body.get("expires_after")
    seconds = check_expires_after(expires, "expires_after") if expires is not None else None
    store = fake.store
    now = int(store.now())
    with store.lock:
        up = UploadRecord(
            id=fake.new_id("upload_", 24),
            filename=filename,
            purpose=purpose,
            nbytes=size,
            mime_type=mime,
            created_at=now,
            expires_at=now + UPLOAD_TTL,
            file_expires_after={"seconds": seconds} if seconds is not None else None,
        )
        store.uploads[up.id] = up
    return FakeResponse.json(_to_api(up))


def handle_add_part(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/uploads/{upload_id}/parts`` (multipart field ``data``)."""
    parts = parse_multipart(req.headers.get("content-type", ""), req.body)
    for part in parts:
        if part.name != "data":
            raise bad_request(f"Unknown parameter: '{part.name}'.", param=part.name, code="unknown_parameter")
    if not parts:
        raise bad_request("Missing required parameter: 'data'.", param="data", code="missing_required_parameter")
    data = parts[0].data
    if len(data) > MAX_PART_BYTES:
        raise bad_request(f"Part is too large: {len(data)} bytes; each part can be at most 64 MB.", param="data")
    with fake.store.lock:
        up = _get(fake, req.params["upload_id"])
        part_id = fake.new_id("part_", 24)
        up.parts[part_id] = data
        created = int(fake.store.now())
    return FakeResponse.json({"id": part_id, "object": "upload.part", "created_at": created, "upload_id": up.id})


def handle_complete_upload(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/uploads/{upload_id}/complete`` (``part_ids`` in order, optional ``md5``)."""
    body = req.json_object()
    check_unknown(body, ("part_ids", "md5"))
    require(body, "part_ids")
    part_ids = body["part_ids"]
    if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
        raise bad_request(
            "Invalid type for 'part_ids': expected an array of strings.", param="part_ids", code="invalid_type"
        )
    md5 = check_string(body.get("md5"), "md5", nullable=True)
    store = fake.store
    with store.lock:
        up = _get(fake, req.params["upload_id"])
        missing = [p for p in part_ids if p not in up.parts]
        if missing:
            raise bad_request(f"Invalid 'part_ids': no part {missing[0]} in upload {up.id}.", param="part_ids")
        content = b"".join(up.parts[p] for p in part_ids)
        if len(content) != up.nbytes:
            raise bad_request(
                f"The number of bytes uploaded ({len(content)}) does not match the number of bytes declared when "
                f"the upload was created ({up.nbytes}).",
                param="part_ids",
            )
        if md5 and hashlib.md5(content).hexdigest() != md5.lower():
            raise bad_request("The md5 checksum does not match the uploaded bytes.", param="md5")
        check_upload_content(up.filename, up.purpose, content)
        seconds = (up.file_expires_after or {}).get("seconds")
        now = int(store.now())
        expires_at = now + int(seconds) if seconds else (now + 30 * 86400 if up.purpose == "batch" else None)
        up.file = store.add_file(up.filename, up.purpose, content, expires_at=expires_at)
        up.status = "completed"
        return FakeResponse.json(_to_api(up))


def handle_cancel_upload(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/uploads/{upload_id}/cancel``."""
    with fake.store.lock:
        up = _get(fake, req.params["upload_id"])
        up.status = "cancelled"
        return FakeResponse.json(_to_api(up))
