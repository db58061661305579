"""FileManager against FakeOpenAI: de-duplicated uploads, the Uploads API in parts, listing, atomic downloads."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai.types import FileObject

from finetune_embed import Client, ConfigError, FileAccessError, NotFoundError, ServerError
from finetune_embed.finetuning import FileManager, FileProcessingError, FileProcessingTimeoutError
from finetune_embed.retry import RetryPolicy
from finetune_embed.testing import FakeOpenAI

from .conftest import news_examples, write_jsonl


def _posts(fake: FakeOpenAI, path: str) -> int:
    return sum(1 for r in fake.ledger.requests if r.method == "POST" and r.path == path)


def test_upload_returns_the_sdk_file_object_with_a_content_tag(files: FileManager, train_path: Path) -> None:
    file = files.upload(train_path)
    assert isinstance(file, FileObject)
    sha = hashlib.sha256(train_path.read_bytes()).hexdigest()
    assert file.filename == f"news_train.{sha[:16]}.jsonl"
    assert file.bytes == train_path.stat().st_size
    assert file.purpose == "fine-tune"
    assert file.status == "processed"
    assert files.content(file.id) == train_path.read_bytes()


def test_identical_content_is_not_uploaded_twice(files: FileManager, fake: FakeOpenAI, train_path: Path) -> None:
    first = files.upload(train_path)
    again = files.upload(train_path)
    copy = train_path.with_name("another_name.jsonl")
    copy.write_bytes(train_path.read_bytes())
    renamed = files.upload(copy)
    assert again.id == first.id
    assert renamed.id == first.id
    found = files.find(copy)
    assert found is not None
    assert found.id == first.id
    assert files.find(copy, purpose="batch") is None
    assert _posts(fake, "/v1/files") == 1
    forced = files.upload(train_path, dedupe=False)
    assert forced.id != first.id
    assert _posts(fake, "/v1/files") == 2


def test_changed_content_or_deleted_file_is_uploaded_again(
    files: FileManager, fake: FakeOpenAI, train_path: Path
) -> None:
    first = files.upload(train_path)
    train_path.write_bytes(train_path.read_bytes() + b"\n")
    second = files.upload(train_path)
    assert second.id != first.id
    files.delete(second.id)
    third = files.upload(train_path)
    assert third.id not in (first.id, second.id)
    assert _posts(fake, "/v1/files") == 3


def test_big_files_go_through_the_uploads_api_in_parts(fake: FakeOpenAI, client: Client, tmp_path: Path,
                                                      cookbook: Path) -> None:
    path = write_jsonl(tmp_path / "big.jsonl", news_examples(cookbook, 0, 60))
    size = path.stat().st_size
    manager = FileManager(client, files_api_limit=4096, part_size=2048)
    file = manager.upload(path)
    assert file.bytes == size
    assert manager.content(file.id) == path.read_bytes()
    assert _posts(fake, "/v1/files") == 0
    assert _posts(fake, "/v1/uploads") == 1
    parts = sum(1 for r in fake.ledger.requests if r.path.endswith("/parts"))
    assert parts == -(-size // 2048)
    assert manager.upload(path).id == file.id  # de-duplicated like any other upload


def test_uploads_api_part_failures_are_retried_and_a_fatal_one_cancels_the_upload(
    fake: FakeOpenAI, tmp_path: Path, cookbook: Path
) -> None:
    path = write_jsonl(tmp_path / "big.jsonl", news_examples(cookbook, 0, 30))
    client = fake.client(retry=RetryPolicy(sleep=fake.sleep, max_attempts=3))
    manager = FileManager(client, files_api_limit=1024, part_size=1024)
    fake.inject(500, path="/v1/uploads/*/parts", times=2)
    assert manager.upload(path).bytes == path.stat().st_size
    fake.inject(500, path="/v1/uploads/*/parts", times=3)
    with pytest.raises(ServerError):
        manager.upload(path, dedupe=False)
    cancels = [r for r in fake.ledger.requests if r.path.endswith("/cancel")]
    assert len(cancels) == 1


def test_limits_are_checked_locally(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"messages": []}\n' * 10)
    with pytest.raises(ConfigError, match="the API takes at most 100 bytes"):
        FileManager(client, max_bytes=100).upload(path, validate=False)
    with pytest.raises(ConfigError, match="part_size may be at most"):
        FileManager(client, part_size=65 * 1024 * 1024)
    with pytest.raises(ConfigError, match="no such file"):
        FileManager(client).upload(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match="Cannot upload a dict"):
        FileManager(client).upload({"messages": []})


def test_list_pages_past_the_first_page(files: FileManager, fake: FakeOpenAI, tmp_path: Path) -> None:
    ids = []
    for i in range(7):
        p = tmp_path / f"batch{i}.jsonl"
        p.write_text(json.dumps({"custom_id": str(i), "method": "POST", "url": "/v1/embeddings",
                                 "body": {"model": "text-embedding-3-small", "input": "x"}}) + "\n")
        ids.append(files.upload(p, purpose="batch").id)
    fake.ledger.clear()
    listed = [f.id for f in files.list(purpose="batch", page_size=3)]
    assert listed == list(reversed(ids))
    assert sum(1 for r in fake.ledger.requests if r.method == "GET" and r.path == "/v1/files") == 3
    assert [f.id for f in files.list(limit=2, page_size=3)] == list(reversed(ids))[:2]
    assert list(files.list(purpose="fine-tune")) == []


def test_download_is_streamed_and_atomic(files: FileManager, fake: FakeOpenAI, train_path: Path,
                                         tmp_path: Path) -> None:
    file = files.upload(train_path)
    out = tmp_path / "out" / "train.jsonl"
    assert files.download(file.id, out) == out
    assert out.read_bytes() == train_path.read_bytes()
    with pytest.raises(FileAccessError, match="overwrite=True") as exists:
        files.download(file.id, out)
    assert exists.value.errno == errno.EEXIST
    assert exists.value.path == str(out)
    with pytest.raises(FileAccessError, match="is a directory") as is_dir:
        files.download(file.id, tmp_path)
    assert is_dir.value.errno == errno.EISDIR
    out.write_text("old content")
    no_retry = FileManager(fake.client(retry=RetryPolicy.none()))
    fake.inject(500, path="/v1/files/*/content", times=1)
    with pytest.raises(ServerError):
        no_retry.download(file.id, out, overwrite=True)
    assert out.read_text() == "old content"  # untouched by the failed download
    assert sorted(p.name for p in out.parent.iterdir()) == ["train.jsonl"]  # no temporary file left behind
    files.download(file.id, out, overwrite=True)
    assert out.read_bytes() == train_path.read_bytes()


def test_delete_and_missing_files(files: FileManager, train_path: Path) -> None:
    file = files.upload(train_path)
    assert files.delete(file.id).deleted is True
    with pytest.raises(NotFoundError, match=f"No such File object: {file.id}"):
        files.retrieve(file.id)


def _status_sequence_client(statuses: list[dict[str, Any]]) -> Client:
    calls = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        body = {"id": "file-x", "object": "file", "bytes": 10, "created_at": 1, "filename": "t.jsonl",
                "purpose": "fine-tune", **next(calls)}
        return httpx.Response(200, json=body)

    return Client(api_key="sk-test-status-0000", transport=httpx.MockTransport(handler),
                  retry=RetryPolicy(sleep=lambda s: None))


def test_wait_until_processed_tolerates_other_statuses() -> None:
    slept: list[float] = []
    client = _status_sequence_client([{"status": "uploaded"}, {"status": "pending"}, {"status": "running"},
                                      {"status": "processed"}])
    file = FileManager(client, sleep=slept.append).wait("file-x")
    assert file.status == "processed"
    assert slept == [1.0, 1.5, 2.25]


def test_wait_raises_on_a_file_the_server_rejected() -> None:
    client = _status_sequence_client([{"status": "uploaded"}, {"status": "error", "status_details": "bad line 3"}])
    with pytest.raises(FileProcessingError, match=r"could not process file file-x.*bad line 3") as info:
        FileManager(client, sleep=lambda s: None).wait("file-x")
    assert info.value.details == "bad line 3"


def test_wait_times_out() -> None:
    client = _status_sequence_client([{"status": "uploaded"}] * 50)
    with pytest.raises(FileProcessingTimeoutError, match="still 'uploaded' after 10s"):
        FileManager(client, sleep=lambda s: None).wait("file-x", timeout=10)
