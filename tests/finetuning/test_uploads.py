"""Upload helpers: content tags in file names, duplicate matching, parts, size limits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from finetune_embed import ConfigError, DatasetError
from finetune_embed.finetuning._uploads import (
    LocalFile,
    content_tag,
    find_duplicate,
    hash_file,
    iter_parts,
    prepare_local_file,
    tagged_filename,
)

SHA = "3f2a9c0d1b7e4a55" + "0" * 48


@dataclass
class F:
    id: str
    filename: str
    bytes: int
    status: str = "processed"
    expires_at: int | None = None


def test_tagged_filename() -> None:
    assert tagged_filename("train.jsonl", SHA, purpose="fine-tune") == "train.3f2a9c0d1b7e4a55.jsonl"
    assert tagged_filename("dir/train.json", SHA, purpose="fine-tune") == "train.3f2a9c0d1b7e4a55.jsonl"
    assert tagged_filename("train.txt", SHA, purpose="fine-tune") == "train.3f2a9c0d1b7e4a55.jsonl"
    assert tagged_filename("requests.jsonl", SHA, purpose="batch") == "requests.3f2a9c0d1b7e4a55.jsonl"
    # a file that was downloaded and is uploaded again keeps one tag, the current one
    other = "a" * 64
    assert tagged_filename("train.3f2a9c0d1b7e4a55.jsonl", other, purpose="fine-tune") == f"train.{'a' * 16}.jsonl"
    assert content_tag("train.3f2a9c0d1b7e4a55.jsonl") == "3f2a9c0d1b7e4a55"
    assert content_tag("train.jsonl") is None
    assert content_tag("train.3F2A9C0D1B7E4A55.jsonl") is None


def test_hash_and_prepare(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    content = b'{"messages": []}\n' * 1000
    path.write_bytes(content)
    assert hash_file(path) == (hashlib.sha256(content).hexdigest(), len(content))
    local = prepare_local_file(path, purpose="fine-tune", filename=None, max_bytes=10**9)
    assert local.size == len(content)
    assert local.filename == f"data.{hashlib.sha256(content).hexdigest()[:16]}.jsonl"
    assert local.mime_type == "text/jsonl"


def test_prepare_refuses_empty_and_oversized(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match="is empty"):
        prepare_local_file(empty, purpose="fine-tune", filename=None, max_bytes=100)
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"x" * 101)
    with pytest.raises(ConfigError, match="101 bytes; the API takes at most 100 bytes"):
        prepare_local_file(big, purpose="fine-tune", filename=None, max_bytes=100)


def test_find_duplicate_matches_tag_and_size_of_usable_files() -> None:
    local = LocalFile(Path("x"), 120, SHA, "train.3f2a9c0d1b7e4a55.jsonl")
    files = [
        F("file-untagged", "train.jsonl", 120),
        F("file-wrong-size", "train.3f2a9c0d1b7e4a55.jsonl", 121),
        F("file-error", "train.3f2a9c0d1b7e4a55.jsonl", 120, status="error"),
        F("file-expired", "train.3f2a9c0d1b7e4a55.jsonl", 120, expires_at=1000),
        F("file-other-name", "renamed.3f2a9c0d1b7e4a55.jsonl", 120),
        F("file-later", "train.3f2a9c0d1b7e4a55.jsonl", 120),
    ]
    found = find_duplicate(files, local, now=2000)
    assert found is not None
    assert found.id == "file-other-name"  # the content tag matters, not the rest of the name
    assert find_duplicate(files[:4], local, now=2000) is None


def test_iter_parts_reads_one_part_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    content = bytes(range(256)) * 41  # 10,496 bytes
    path.write_bytes(content)
    parts = list(iter_parts(path, 4096))
    assert [len(p) for p in parts] == [4096, 4096, 2304]
    assert b"".join(parts) == content
