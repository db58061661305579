"""Decoding embedding responses: base64 (or float lists) straight to float32, checked against the request.

Rows are placed by each item's ``index``, never by arrival order. A response is refused as a whole
(:class:`~finetune_embed.EmbeddingResponseError`) when it has the wrong number of items, an index out of range
or repeated, or a vector of the wrong size; nothing of it is written then.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._exceptions import EmbeddingResponseError

__all__ = ["StreamDecoder", "decode_into", "decode_vector", "row_flags"]

def _field(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def decode_vector(embedding: object) -> npt.NDArray[np.float32]:
    """One embedding as a float32 array: a base64 string of little-endian float32, or a list of numbers.

    A base64 string is decoded without any Python float objects (the result is a read-only view over the
    decoded bytes).
    """
    if isinstance(embedding, str):
        try:
            raw = base64.b64decode(embedding, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EmbeddingResponseError(f"an embedding is not valid base64: {exc}") from exc
        if len(raw) % 4:
            raise EmbeddingResponseError(
                f"a base64 embedding decodes to {len(raw)} bytes, not a whole number of float32 values"
            )
        return np.frombuffer(raw, dtype="<f4")
    if isinstance(embedding, list | tuple | np.ndarray):
        try:
            return np.asarray(embedding, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise EmbeddingResponseError(f"an embedding is not a list of numbers: {exc}") from exc
    raise EmbeddingResponseError(
        f"an embedding is {type(embedding).__name__}, expected a base64 string or a list of floats"
    )


def _check_indices(indices: Sequence[object], expected: int) -> None:
    bad = [i for i in indices if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < expected]
    if bad:
        raise EmbeddingResponseError(
            f"the response has index {bad[0]!r}, outside 0..{expected - 1} for a request of {expected} inputs"
        )
    seen = np.zeros(expected, dtype=np.int64)
    np.add.at(seen, np.asarray(indices, dtype=np.int64), 1)
    dup = np.flatnonzero(seen > 1)
    if dup.size:
        missing = np.flatnonzero(seen == 0)
        raise EmbeddingResponseError(
            f"the response repeats index {int(dup[0])} (and misses {int(missing[0]) if missing.size else '-'}); "
            "its rows cannot be matched to the inputs"
        )


def decode_into(
    data: Sequence[Any] | None,
    *,
    expected: int,
    dim: int | None,
    put: Callable[[int, npt.NDArray[np.float32]], None],
    allow_missing: bool = False,
) -> list[int]:
    """Check ``data`` (the response's items) and call ``put(index, vector)`` for each; returns the positions
    that got no vector (always empty unless ``allow_missing``).

    ``expected`` is the number of inputs sent; ``dim`` the expected vector size (``None``: taken from the
    first vector, then required of all). Everything is checked before the first ``put``. With
    ``allow_missing``, a response with *fewer* items than inputs is accepted when every item carries a valid,
    distinct ``index``: those items are placed, and the missing positions are returned to be asked again.
    More items than inputs, a repeated or out-of-range index, or a vector of the wrong size always raise.
    """
    got = 0 if data is None else len(data)
    if data is None or got > expected or (got < expected and not allow_missing) or (expected and not got):
        raise EmbeddingResponseError(
            f"the response has {got} embeddings for {expected} inputs; refusing to guess which is which"
        )
    indices = [_field(item, "index") for item in data]
    _check_indices(indices, expected)
    vectors = [decode_vector(_field(item, "embedding")) for item in data]
    size = dim if dim is not None else (int(vectors[0].shape[0]) if vectors else 0)
    for index, vec in zip(indices, vectors, strict=True):
        if vec.ndim != 1 or vec.shape[0] != size or size == 0:
            raise EmbeddingResponseError(
                f"the embedding at index {index} has {vec.shape[0] if vec.ndim == 1 else vec.shape} values, "
                f"expected {size}"
                + (" (is `dimensions` ignored by this server?)" if dim is not None else "")
            )
    for index, vec in zip(indices, vectors, strict=True):
        put(int(index), vec)  # type: ignore[arg-type, unused-ignore]
    if got == expected:
        return []
    seen = set(indices)
    return [i for i in range(expected) if i not in seen]


class StreamDecoder:
    """Decode an embeddings response body as it streams in, straight into the output.

    Memory stays at one network chunk plus one item, whatever the response size: no whole body, no parsed
    JSON tree, no Python floats. Items are found with byte searches (they hold no nested objects), a base64
    item's ``index`` and vector are read without parsing it as JSON (anything unusual - escapes, float lists,
    other spellings - goes through ``json.loads``), and the base64 vectors of one chunk are decoded in one call
    and written with ``put_rows(indices, rows)`` (else ``put(index, vector)`` per item). Each ``index`` is
    checked (in range, not repeated) and each vector's size (equal to ``dim``, or to the first vector's) before
    anything is written. :meth:`finish` checks the count, as :func:`decode_into` does. ``usage`` is the body's
    ``usage.prompt_tokens`` (``None`` without one).
    """

    def __init__(
        self,
        *,
        expected: int,
        dim: int | None,
        put: Callable[[int, npt.NDArray[np.float32]], None],
        put_rows: Callable[[npt.NDArray[np.int64], npt.NDArray[np.float32]], None] | None = None,
    ) -> None:
        self.expected = expected
        self.dim = dim
        self.put = put
        self.put_rows = put_rows
        self.seen = np.zeros(expected, dtype=bool)
        self.count = 0
        #: the response's ``usage.prompt_tokens``, when it has one
        self.usage: int | None = None
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the body."""
        indices: list[int] = []
        blobs: list[bytes | memoryview] = []
        tail = self._tail
        first = chunk.find(b"}") + 1 if tail else 0
        if first:  # only the item the last chunk cut is joined up; the rest is read where it lies
            self._tail = b""
            self._scan(tail + chunk[:first], 0, indices, blobs)
            self._scan(chunk, first, indices, blobs)
        else:
            self._scan(tail + chunk if tail else chunk, 0, indices, blobs)
        if indices:
            self._write(indices, blobs)

    def _scan(self, buf: bytes, pos: int, indices: list[int], blobs: list[bytes | memoryview]) -> None:
        """Read the items of ``buf`` from ``pos`` on, keeping what follows the last one for the next chunk."""
        find, rfind = buf.find, buf.rfind
        view = memoryview(buf)
        while True:
            close = find(b"}", pos)
            if close < 0:
                break
            start = rfind(b"{", pos, close)
            if start >= 0:  # an innermost object: an item (or "usage")
                key = find(b'"embedding"', start, close)
                if key >= 0:
                    self._take(buf, view, start, key, close + 1, indices, blobs)
                elif find(b'"prompt_tokens"', start, close) >= 0:
                    self._usage(buf[start : close + 1])
            pos = close + 1  # (a "}" with no "{" before it closes the outer object)
        start = rfind(b"{", pos)
        self._tail = buf[start:] if start >= 0 else b""

    def _usage(self, item: bytes) -> None:
        """Read ``usage.prompt_tokens`` (what the server bills); anything unusual leaves it unknown."""
        try:
            parsed = json.loads(item)
        except ValueError:
            return
        tokens = parsed.get("prompt_tokens") if isinstance(parsed, dict) else None
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0:
            self.usage = tokens

    def _take(
        self,
        buf: bytes,
        view: memoryview,
        start: int,
        key: int,
        end: int,
        indices: list[int],
        blobs: list[bytes | memoryview],
    ) -> None:
        """Read the item ``buf[start:end]`` (``key``: where its ``"embedding"`` is): the fast way for
        ``"index": N`` and a base64 ``"embedding"`` (the vector stays a view of ``buf``), else as JSON."""
        find = buf.find
        colon = find(b":", key + 11, end)
        quote = find(b'"', colon + 1, end) if colon >= 0 else -1
        at = find(b'"index"', start, end)
        if quote >= 0 and at >= 0 and not buf[colon + 1 : quote].strip():
            close = find(b'"', quote + 1, end)
            comma = find(b",", at, end)
            value_end = comma if comma >= 0 else end - 1
            value_start = find(b":", at, end) + 1
            digits = buf[value_start:value_end].strip() if value_start else b""
            if close >= 0 and find(b"\\", quote + 1, close) < 0 and digits.isdigit() and len(digits) < 12:
                indices.append(int(digits))
                blobs.append(view[quote + 1 : close])
                return
        try:
            parsed = json.loads(buf[start:end])
        except ValueError as exc:
            raise EmbeddingResponseError(f"an item of the response is not valid JSON: {exc}") from exc
        index = parsed.get("index")
        embedding = parsed.get("embedding")
        if isinstance(embedding, str) and isinstance(index, int) and not isinstance(index, bool):
            indices.append(index)
            blobs.append(embedding.encode("ascii", "replace"))
            return
        if indices:
            self._write(indices, blobs)  # keep the order of checks: what came before first
            indices.clear()
            blobs.clear()
        self._check_index(index)
        self._place(np.asarray([index], dtype=np.int64), decode_vector(embedding)[None, :], index)

    def _check_index(self, index: object) -> None:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < self.expected:
            raise EmbeddingResponseError(
                f"the response has index {index!r}, outside 0..{self.expected - 1} for a request of "
                f"{self.expected} inputs"
            )
        if self.seen[index]:
            raise EmbeddingResponseError(
                f"the response repeats index {index}; its rows cannot be matched to the inputs"
            )

    def _write(self, indices: list[int], blobs: list[bytes | memoryview]) -> None:
        """Check and write the base64 items of one chunk: one decode for all of them when their lengths allow."""
        for index in indices:
            self._check_index(index)
            self.seen[index] = True  # also catches a repeat within the chunk; undone below on an error
        idx = np.asarray(indices, dtype=np.int64)
        try:
            size = len(blobs[0])
            if size and size % 4 == 0 and blobs[0][-1:] != b"=" and all(len(b) == size for b in blobs):
                try:
                    raw = binascii.a2b_base64(b"".join(blobs), strict_mode=True)
                except (binascii.Error, ValueError) as exc:
                    raise EmbeddingResponseError(f"an embedding is not valid base64: {exc}") from exc
                if len(raw) % (4 * len(blobs)):
                    raise EmbeddingResponseError(
                        f"a base64 embedding decodes to {len(raw) // len(blobs)} bytes, not a whole number of "
                        "float32 values"
                    )
                rows = np.frombuffer(raw, dtype="<f4").reshape(len(blobs), -1)
                self._place(idx, rows, indices[0], checked=True)
            else:
                for i, blob in zip(indices, blobs, strict=True):
                    vec = decode_vector(bytes(blob).decode("ascii", "replace"))
                    self._place(np.asarray([i], dtype=np.int64), vec[None, :], i, checked=True)
        except BaseException:
            self.seen[idx] = False
            raise

    def _place(
        self, idx: npt.NDArray[np.int64], rows: npt.NDArray[np.float32], first: int, *, checked: bool = False
    ) -> None:
        width = int(rows.shape[1])
        if self.dim is None:
            self.dim = width
        if width != self.dim or self.dim == 0:
            raise EmbeddingResponseError(
                f"the embedding at index {first} has {width} values, expected {self.dim} (is `dimensions` ignored "
                "by this server?)"
            )
        if not checked:
            self.seen[idx] = True
        if self.put_rows is not None:
            self.put_rows(idx, rows)
        else:
            for i, row in zip(idx.tolist(), rows, strict=True):
                self.put(i, row)
        self.count += int(idx.size)

    def finish(self, *, allow_missing: bool = False) -> list[int]:
        """Check the whole response; returns the positions that got no vector (see :func:`decode_into`)."""
        if b"{" in self._tail:
            raise EmbeddingResponseError("the response ended in the middle of an item (a truncated body)")
        if self.count == self.expected:
            return []
        if self.count == 0 or not allow_missing:
            raise EmbeddingResponseError(
                f"the response has {self.count} embeddings for {self.expected} inputs; refusing to guess which is "
                "which"
            )
        return np.flatnonzero(~self.seen).tolist()


def row_flags(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """True for each row that is a usable embedding: every value finite and not all zero."""
    if rows.ndim != 2:
        raise ValueError("row_flags expects a 2-D array")
    finite = np.asarray(np.isfinite(rows).all(axis=1), dtype=bool)
    nonzero = np.asarray((rows != 0).any(axis=1), dtype=bool)
    flags: npt.NDArray[np.bool_] = np.logical_and(finite, nonzero)
    return flags
