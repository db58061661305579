"""PostgreSQL binary COPY encoding of (id, vector, jsonb) rows, built with numpy and struct.

Binary COPY is the fastest way into PostgreSQL: no text parsing on the server, and here no per-value Python
adapter either. The format (PostgreSQL docs, "COPY — Binary Format"): a signature and two int32s, then per
row an int16 field count and per field an int32 byte length and the bytes, then an int16 ``-1``. A pgvector
``vector`` travels as int16 dimensions, int16 zero and big-endian float32s (a ``halfvec``: float16s);
``jsonb`` as a version byte 1 and the JSON text.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["HEADER", "TRAILER", "copy_chunks", "parse_vector"]

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_VECTOR_HEAD = struct.Struct(">iHH")
_FIELD = struct.Struct(">i")


def copy_chunks(
    ids: Sequence[str],
    vectors: npt.NDArray[np.float32],
    metadata_json: Sequence[str],
    *,
    extra_int: Sequence[int] | None = None,
    rows_per_chunk: int = 2000,
    half: bool = False,
) -> Iterator[bytes]:
    """Binary COPY data for columns ``(id text, embedding vector, metadata jsonb[, extra int4])`` (``half``:
    the embedding column is a ``halfvec``; values are rounded to the nearest float16).

    The first chunk starts with the header, the last one ends with the trailer.
    """
    n, dim = vectors.shape
    width = 2 if half else 4
    big = np.ascontiguousarray(vectors, dtype=">f2" if half else ">f4")
    vec_head = _VECTOR_HEAD.pack(4 + width * dim, dim, 0)
    count = struct.pack(">h", 3 if extra_int is None else 4)
    parts: list[bytes] = [HEADER]
    for start in range(0, n, rows_per_chunk):
        stop = min(start + rows_per_chunk, n)
        block = big[start:stop]
        for j, i in enumerate(range(start, stop)):
            key = ids[i].encode("utf-8")
            meta = metadata_json[i].encode("utf-8")
            parts += [
                count,
                _FIELD.pack(len(key)),
                key,
                vec_head,
                block[j].tobytes(),
                _FIELD.pack(len(meta) + 1),
                b"\x01",
                meta,
            ]
            if extra_int is not None:
                parts += [b"\x00\x00\x00\x04", struct.pack(">i", extra_int[i])]
        if stop == n:
            parts.append(TRAILER)
        yield b"".join(parts)
        parts = []
    if n == 0:
        yield HEADER + TRAILER


def parse_vector(data: bytes | memoryview) -> npt.NDArray[np.float32]:
    """A pgvector ``vector`` from its binary form (``vector_send``) as native float32."""
    dim, _ = struct.unpack_from(">HH", data)
    return np.frombuffer(data, dtype=">f4", count=dim, offset=4).astype(np.float32)
