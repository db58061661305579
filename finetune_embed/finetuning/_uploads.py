"""The I/O-light parts of uploading: sources, content hashes, the tagged file name, duplicate matching, parts.

**How identical content is recognised.** The API keeps no content hash. We put the first 16 hex digits of the
file's SHA-256 in the name we upload it under (``train.jsonl`` → ``train.3f2a9c0d1b7e4a55.jsonl``); before an
upload, the files of the same purpose are listed and one whose name carries the same tag and whose size is
the same byte count is reused instead of uploading again. A file in status ``error``, deleted or expired is
never reused. Nothing is stored locally, so the de-duplication works across machines and for files uploaded
by a colleague with this library; files uploaded by other tools have no tag and are never matched.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._exceptions import ConfigError, DatasetError

__all__ = [
    "FILES_API_MAX_BYTES",
    "UPLOADS_API_MAX_BYTES",
    "UPLOAD_PART_BYTES",
    "LocalFile",
    "content_tag",
    "find_duplicate",
    "hash_file",
    "iter_parts",
    "tagged_filename",
]

MiB = 1024 * 1024
#: The Files API takes files up to 512 MB; larger ones go through the Uploads API.
FILES_API_MAX_BYTES = 512 * MiB
#: Each part of an Upload holds at most 64 MB.
UPLOAD_PART_BYTES = 64 * MiB
#: An Upload holds at most 8 GB.
UPLOADS_API_MAX_BYTES = 8 * 1024 * MiB
TAG_HEX_DIGITS = 16
_CHUNK = MiB
_TAG = re.compile(r"\.([0-9a-f]{16})(\.[^./\\]+)?$")
_UNUSABLE_STATUSES = frozenset({"error", "deleted", "deleting"})


@dataclass(frozen=True)
class LocalFile:
    """A local file ready to upload: its path, size, SHA-256 and the name it is uploaded under."""

    path: Path
    size: int
    sha256: str
    filename: str

    @property
    def tag(self) -> str:
        """The SHA-256 prefix carried in the uploaded file's name."""
        return self.sha256[:TAG_HEX_DIGITS]

    @property
    def mime_type(self) -> str:
        """The MIME type sent to the Uploads API."""
        if self.filename.endswith(".jsonl"):
            return "text/jsonl"
        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def content_tag(filename: str) -> str | None:
    """The content tag in an uploaded file's name, or ``None``."""
    match = _TAG.search(filename)
    return match.group(1) if match else None


def untagged_filename(filename: str) -> str:
    """An uploaded file's name without our content tag: ``train.0123456789abcdef.jsonl`` -> ``train.jsonl``."""
    base = os.path.basename(filename)
    match = _TAG.search(base)
    if match is None:
        return base
    return (base[: match.start()] + (match.group(2) or "")) or base


def tagged_filename(name: str, sha256: str, *, purpose: str) -> str:
    """``name`` with the content tag before its extension (fine-tuning files always end in ``.jsonl``)."""
    base = os.path.basename(name) or "data.jsonl"
    match = _TAG.search(base)
    if match:  # already tagged (a file downloaded and uploaded again): replace the old tag
        base = base[: match.start()] + (match.group(2) or "")
    stem, ext = os.path.splitext(base)
    if purpose == "fine-tune":
        ext = ".jsonl"
    return f"{stem or 'data'}.{sha256[:TAG_HEX_DIGITS]}{ext}"


def prepare_local_file(path: Path, *, purpose: str, filename: str | None, max_bytes: int) -> LocalFile:
    """Hash ``path`` (an existing file) and check its size against the API's limits."""
    sha, size = hash_file(path)
    if size == 0:
        raise DatasetError(f"{path} is empty; the API refuses empty files.")
    if size > max_bytes:
        raise ConfigError(
            f"{path} has {size:,} bytes; the API takes at most {max_bytes:,} bytes per file (Uploads API: 8 GB). "
            "Split the data into several files."
        )
    return LocalFile(path, size, sha, tagged_filename(filename or path.name, sha, purpose=purpose))


def find_duplicate(files: Iterable[Any], local: LocalFile, *, now: float | None = None) -> Any | None:
    """The first file in ``files`` with ``local``'s content tag and size that can still be used, or ``None``."""
    moment = time.time() if now is None else now
    for file in files:
        name = getattr(file, "filename", None) or ""
        if content_tag(name) != local.tag or getattr(file, "bytes", None) != local.size:
            continue
        if str(getattr(file, "status", "")) in _UNUSABLE_STATUSES:
            continue
        expires = getattr(file, "expires_at", None)
        if isinstance(expires, int | float) and expires <= moment + 60:
            continue
        return file
    return None


def iter_parts(path: Path, part_size: int) -> Iterator[bytes]:
    """The file's bytes in parts of ``part_size`` (one part in memory at a time)."""
    with open(path, "rb") as fh:
        while part := fh.read(part_size):
            yield part
