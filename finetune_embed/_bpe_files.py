"""Fetch tiktoken's BPE files ahead of time, for machines that will run offline.

tiktoken downloads each encoding's ranks file from OpenAI's public blob store on first use and keeps it in its
cache folder (``TIKTOKEN_CACHE_DIR``), named by the SHA-1 of the file's URL. :func:`download_encodings` writes
the same files into a folder of your choice, checks each against the SHA-256 that tiktoken pins, and writes
atomically, so the folder can be copied to an air-gapped machine and named there with ``TIKTOKEN_CACHE_DIR``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._atomic import atomic_write_bytes
from ._exceptions import InvalidArgumentError, TokenizerUnavailableError

__all__ = [
    "DEFAULT_ENCODINGS",
    "OPENAI_BLOB",
    "EncodingFile",
    "cache_file_name",
    "default_cache_dir",
    "download_encodings",
]

OPENAI_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"
# the encodings this library uses: o200k_base (gpt-4o, gpt-4.1, gpt-5, o-series), cl100k_base (embeddings, gpt-3.5)
DEFAULT_ENCODINGS: tuple[str, ...] = ("o200k_base", "cl100k_base")

# file stem -> SHA-256 of its contents, as tiktoken pins them (tiktoken_ext/openai_public.py)
_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "p50k_base": "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    "r50k_base": "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
}
# encoding name -> the ranks file it loads
_STEMS = {
    "o200k_base": "o200k_base",
    "o200k_harmony": "o200k_base",
    "cl100k_base": "cl100k_base",
    "p50k_base": "p50k_base",
    "p50k_edit": "p50k_base",
    "r50k_base": "r50k_base",
}


@dataclass(frozen=True)
class EncodingFile:
    """One ranks file in the cache folder: ``status`` is ``"downloaded"`` or ``"present"`` (already there, intact)."""

    encoding: str
    path: Path
    url: str
    size: int
    status: Literal["downloaded", "present"]


def cache_file_name(encoding: str) -> str:
    """The name tiktoken gives ``encoding``'s ranks file in its cache folder (SHA-1 of the official URL)."""
    return hashlib.sha1(_official_url(encoding).encode()).hexdigest()


def default_cache_dir() -> Path:
    """The folder tiktoken reads: ``TIKTOKEN_CACHE_DIR``, else ``DATA_GYM_CACHE_DIR``, else its temp-dir default."""
    for name in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        value = os.environ.get(name)
        if value:
            return Path(value)
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _stem(encoding: str) -> str:
    stem = _STEMS.get(encoding)
    if stem is None:
        raise InvalidArgumentError(
            f"Unknown tiktoken encoding {encoding!r}; choose from {', '.join(sorted(_STEMS))}.", argument="encodings"
        )
    return stem


def _official_url(encoding: str) -> str:
    return f"{OPENAI_BLOB}{_stem(encoding)}.tiktoken"


def _intact(data: bytes, stem: str) -> bool:
    return hashlib.sha256(data).hexdigest() == _SHA256[stem]


def _fetch(url: str, encoding: str, timeout: float) -> bytes:
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise TokenizerUnavailableError(
            f"Could not download the {encoding} ranks file from {url} ({type(exc).__name__}: {exc}). Check the "
            "network (or --source / source= for a mirror), or copy a folder of these files from a connected machine "
            "and set TIKTOKEN_CACHE_DIR to it.",
            encoding=encoding,
        ) from exc
    return response.content


def download_encodings(
    folder: str | os.PathLike[str] | None = None,
    encodings: Sequence[str] = DEFAULT_ENCODINGS,
    *,
    source: str = OPENAI_BLOB,
    timeout: float = 120.0,
) -> list[EncodingFile]:
    """Put the ranks files of ``encodings`` into ``folder`` (default: :func:`default_cache_dir`) under the names
    tiktoken looks for, and return what was done for each.

    Files already there and intact are kept; a damaged one is replaced. ``source`` is the base URL the
    ``<name>.tiktoken`` files are fetched from (OpenAI's public blob store, or a mirror). Every file is checked
    against tiktoken's pinned SHA-256 before it is written; a mismatch or a network failure raises
    :class:`~finetune_embed.TokenizerUnavailableError` and leaves the folder as it was.
    """
    if isinstance(encodings, str):
        encodings = [encodings]
    target = Path(folder) if folder is not None else default_cache_dir()
    base = source if source.endswith("/") else source + "/"
    done: list[EncodingFile] = []
    seen: set[str] = set()
    for encoding in encodings:
        stem = _stem(encoding)
        path = target / cache_file_name(encoding)
        official = _official_url(encoding)
        if stem in seen:
            continue
        seen.add(stem)
        try:
            existing = path.read_bytes() if path.is_file() else None
        except OSError:
            existing = None
        if existing is not None and _intact(existing, stem):
            done.append(EncodingFile(encoding, path, official, len(existing), "present"))
            continue
        url = f"{base}{stem}.tiktoken"
        data = _fetch(url, encoding, timeout)
        if not _intact(data, stem):
            raise TokenizerUnavailableError(
                f"The {encoding} ranks file from {url} is damaged or not the official one (its SHA-256 is not "
                f"{_SHA256[stem]}); nothing was written. Try again, or use another --source.",
                encoding=encoding,
            )
        atomic_write_bytes(path, data)
        done.append(EncodingFile(encoding, path, official, len(data), "downloaded"))
    return done
