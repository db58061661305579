"""Deterministic embedding vectors: signed feature hashing of word unigrams, bigrams and character trigrams.

Every feature lands once in each band of dimensions ``[0,1) [1,2) [2,4) … [2^k, D)`` (a count sketch per band,
scaled by the square root of the band's width), so any prefix of the full vector still carries every feature:
truncating to ``dimensions`` and renormalising (what the real API does for ``text-embedding-3-*``) keeps texts
that share words close together. The hash is blake2b keyed by the model name and the fake's seed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from collections import Counter

import numpy as np
import numpy.typing as npt

from .._exceptions import InvalidArgumentError

__all__ = ["embedding_vector", "features"]

_WORD = re.compile(r"\w+", re.UNICODE)
_WEIGHTS = {"u": 1.0, "b": 0.7, "c": 0.35, "r": 1.0}


def features(text: str) -> Counter[str]:
    """The weighted features of ``text`` (keys are ``kind\\0value``): lowercased words, word bigrams and the
    character trigrams of each word (padded with spaces); texts without word characters use their raw trigrams."""
    lowered = text.lower()
    words = _WORD.findall(lowered)
    out: Counter[str] = Counter()
    for w in words:
        out["u\0" + w] += 1
        padded = f" {w} "
        for i in range(len(padded) - 2):
            out["c\0" + padded[i : i + 3]] += 1
    for a, b in itertools.pairwise(words):
        out[f"b\0{a} {b}"] += 1
    if not words:
        raw = f" {lowered.strip()} "
        if len(raw) < 3:
            raw = raw.ljust(3)
        for i in range(len(raw) - 2):
            out["r\0" + raw[i : i + 3]] += 1
    return out


def _bands(dims: int) -> list[tuple[int, int]]:
    bands = [(0, 1)]
    lo = 1
    while lo < dims:
        hi = min(lo * 2, dims)
        bands.append((lo, hi))
        lo = hi
    return bands


@functools.lru_cache(maxsize=4096)
def embedding_vector(key: str, dims: int, text: str, truncate: int | None = None) -> npt.NDArray[np.float32]:
    """The unit float32 vector of ``text`` for the model keyed ``key`` (full size ``dims``), truncated to
    ``truncate`` dimensions and renormalised when given. Read-only; identical on every call."""
    bands = _bands(dims)
    if len(bands) > 16:
        raise InvalidArgumentError(f"at most 32768 dimensions are supported, got {dims}", argument="dimensions")
    feats = features(text)
    names = list(feats)
    hkey = key.encode("utf-8")[:64]
    raw = b"".join(hashlib.blake2b(n.encode("utf-8"), digest_size=64, key=hkey).digest() for n in names)
    words = np.frombuffer(raw, dtype="<u4").reshape(len(names), 16)[:, : len(bands)].astype(np.int64)
    lo = np.array([b[0] for b in bands], dtype=np.int64)
    width = np.array([b[1] - b[0] for b in bands], dtype=np.int64)
    index = lo + (words & 0x7FFFFFFF) % width
    sign = np.where(words >> 31, -1.0, 1.0)
    weight = np.array([_WEIGHTS[n[0]] * c for n, c in feats.items()], dtype=np.float64)
    values = sign * weight[:, None] * np.sqrt(width.astype(np.float64))[None, :]
    vec = np.zeros(dims, dtype=np.float64)
    np.add.at(vec, index.ravel(), values.ravel())
    if truncate is not None:
        norm = float(np.linalg.norm(vec))
        vec = vec / norm if norm > 0 else vec
        vec = vec[:truncate]
    norm = float(np.linalg.norm(vec))
    if norm == 0.0 or not np.isfinite(norm):
        vec = np.zeros(vec.shape[0], dtype=np.float64)
        vec[0] = 1.0
        norm = 1.0
    out = (vec / norm).astype(np.float32)
    out.flags.writeable = False
    return out
