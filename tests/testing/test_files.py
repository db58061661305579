"""Files and uploads through the official SDK."""

from __future__ import annotations

import hashlib
from pathlib import Path

import openai
import pytest
from openai.types import FileDeleted, FileObject
from openai.types.upload import Upload

from finetune_embed.testing import FakeOpenAI

from ._data import chat_file


def test_create_retrieve_content_delete(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    content = chat_file()
    f = sdk.files.create(file=("train.jsonl", content), purpose="fine-tune")
    assert isinstance(f, FileObject)
    assert (f.bytes, f.filename, f.purpose, f.status, f.expires_at) == (
        len(content),
        "train.jsonl",
        "fine-tune",
        "processed",
        None,
    )
    assert f.id.startswith("file-")
    assert sdk.files.retrieve(f.id) == f
    assert sdk.files.content(f.id).content == content
    deleted = sdk.files.delete(f.id)
    assert isinstance(deleted, FileDeleted)
    assert deleted.deleted
    assert deleted.id == f.id
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.files.retrieve(f.id)
    assert exc.value.body == {
        "message": f"No such File object: {f.id}",
        "type": "invalid_request_error",
        "param": "id",
        "code": None,
    }


def test_upload_from_a_path(tmp_path: Path, sdk: openai.OpenAI) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(chat_file(3))
    f = sdk.files.create(file=path, purpose="fine-tune")
    assert f.filename == "data.jsonl"
    assert f.bytes == path.stat().st_size


def test_batch_files_expire_after_30_days_by_default(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    f = sdk.files.create(file=("in.jsonl", b"{}\n"), purpose="batch")
    assert f.expires_at == f.created_at + 30 * 86400
    g = sdk.files.create(
        file=("in.jsonl", b"{}\n"), purpose="batch", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert g.expires_at == g.created_at + 3600
    fake.advance(3600)
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(g.id)
    assert [x.id for x in sdk.files.list()] == [f.id]


def test_list_order_purpose_and_pagination(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    ids = []
    for i in range(5):
        ids.append(sdk.files.create(file=(f"f{i}.jsonl", b"{}\n"), purpose="fine-tune" if i % 2 else "batch").id)
        fake.advance(1)
    first = sdk.files.list(limit=2)
    assert [x.id for x in first.data] == ids[::-1][:2]
    assert first.has_more
    assert [x.id for x in sdk.files.list(limit=2)] == ids[::-1]  # the SDK follows the cursor
    assert [x.id for x in sdk.files.list(order="asc")] == ids
    assert [x.id for x in sdk.files.list(purpose="fine-tune")] == [ids[3], ids[1]]
    last = sdk.files.list(limit=2, after=ids[2])
    assert [x.id for x in last.data] == [ids[1], ids[0]]
    assert not last.has_more


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"file": ("x.jsonl", b"{}"), "purpose": "training"}, 400, "Invalid value: 'training'. Supported values are"),
        (
            {"file": ("x.txt", b"{}"), "purpose": "fine-tune"},
            400,
            "Invalid file format for Fine-Tuning API. Must be .jsonl",
        ),
        ({"file": ("x.csv", b"{}"), "purpose": "batch"}, 400, "Invalid file format for Batch API. Must be .jsonl"),
        ({"file": ("x.jsonl", "é".encode("latin-1")), "purpose": "batch"}, 400, "Must be utf-8 encoded"),
        (
            {"file": ("x.jsonl", b"{}"), "purpose": "batch", "expires_after": {"anchor": "created_at", "seconds": 60}},
            400,
            "integer below minimum value. Expected a value >= 3600, but got 60 instead.",
        ),
    ],
)
def test_create_refusals(sdk: openai.OpenAI, kwargs: dict[str, object], status: int, fragment: str) -> None:
    with pytest.raises(openai.APIStatusError) as exc:
        sdk.files.create(**kwargs)  # type: ignore[arg-type]
    assert exc.value.status_code == status
    body = exc.value.body
    assert isinstance(body, dict)
    assert fragment in body["message"]
    assert set(body) == {"message", "type", "param", "code"}


def test_missing_file_field(fake: FakeOpenAI) -> None:
    import httpx

    with httpx.Client(transport=fake.transport) as http:
        r = http.post(
            "https://api.openai.com/v1/files",
            data={"purpose": "batch"},
            files={"other": ("a", b"x")},
            headers={"Authorization": "Bearer k"},
        )
    assert r.status_code == 400
    assert r.json()["error"] == {
        "message": "Unknown parameter: 'other'.",
        "type": "invalid_request_error",
        "param": "other",
        "code": "unknown_parameter",
    }


class TestUploads:
    def test_chunked_upload_helper(self, tmp_path: Path, sdk: openai.OpenAI) -> None:
        path = tmp_path / "big.jsonl"
        path.write_bytes(chat_file(2000))
        upload = sdk.uploads.upload_file_chunked(
            file=path, mime_type="text/jsonl", purpose="fine-tune", part_size=64 * 1024
        )
        assert isinstance(upload, Upload)
        assert upload.status == "completed"
        assert upload.file is not None
        assert sdk.files.content(upload.file.id).content == path.read_bytes()

    def test_parts_complete_in_the_given_order_with_md5(self, sdk: openai.OpenAI) -> None:
        up = sdk.uploads.create(bytes=6, filename="x.jsonl", mime_type="text/jsonl", purpose="batch")
        assert (up.status, up.expires_at - up.created_at) == ("pending", 3600)
        p2 = sdk.uploads.parts.create(up.id, data=b"def")
        p1 = sdk.uploads.parts.create(up.id, data=b"abc")
        assert p1.object == "upload.part"
        assert p1.upload_id == up.id
        with pytest.raises(openai.BadRequestError):
            sdk.uploads.complete(up.id, part_ids=[p1.id, p2.id], md5="0" * 32)
        done = sdk.uploads.complete(up.id, part_ids=[p1.id, p2.id], md5=hashlib.md5(b"abcdef").hexdigest())
        assert done.file is not None
        assert sdk.files.content(done.file.id).content == b"abcdef"
        with pytest.raises(openai.BadRequestError):
            sdk.uploads.parts.create(up.id, data=b"more")

    def test_byte_count_must_match(self, sdk: openai.OpenAI) -> None:
        up = sdk.uploads.create(bytes=10, filename="x.jsonl", mime_type="text/jsonl", purpose="fine-tune")
        part = sdk.uploads.parts.create(up.id, data=b"abc")
        with pytest.raises(openai.BadRequestError) as exc:
            sdk.uploads.complete(up.id, part_ids=[part.id])
        assert "(3) does not match" in exc.value.message

    def test_cancel_and_expiry(self, fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
        up = sdk.uploads.create(bytes=1, filename="x.jsonl", mime_type="text/jsonl", purpose="fine-tune")
        assert sdk.uploads.cancel(up.id).status == "cancelled"
        late = sdk.uploads.create(bytes=1, filename="x.jsonl", mime_type="text/jsonl", purpose="fine-tune")
        fake.advance(3601)
        with pytest.raises(openai.BadRequestError) as exc:
            sdk.uploads.parts.create(late.id, data=b"x")
        assert "expired" in exc.value.message

    @pytest.mark.parametrize(
        ("kwargs", "code"),
        [
            ({"purpose": "user_data"}, "invalid_value"),
            ({"bytes": 9 * 1024**3}, "integer_above_max_value"),
            ({"mime_type": "image/png"}, "invalid_value"),
        ],
    )
    def test_create_refusals(self, sdk: openai.OpenAI, kwargs: dict[str, object], code: str) -> None:
        args: dict[str, object] = {"bytes": 1, "filename": "x.jsonl", "mime_type": "text/jsonl", "purpose": "fine-tune"}
        args.update(kwargs)
        with pytest.raises(openai.BadRequestError) as exc:
            sdk.uploads.create(**args)  # type: ignore[arg-type]
        assert exc.value.code == code
