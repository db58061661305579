"""The row kernel: the scores of a few queries against a block of stored rows, without BLAS.

A matrix product with only a handful of queries is a poor fit for BLAS (it packs every row into its own layout
before multiplying, and then does only a few multiplications per row it packed), so a small batch is scored the
way one query is: by ``einsum`` over the rows, in the layout they are stored in. Each thread the search may use
takes a range of rows and walks it in tiles small enough to stay in its core's cache; every query is one
``einsum`` over the tile, so a row comes from memory once and the other queries read it from cache. ``float16``
tiles are widened to float32 into a per-thread buffer first (exactly: every float16 value is a float32 value).

A row's score depends only on that row and the query (``einsum`` reduces each row on its own), so how the rows
are split into ranges and tiles never changes a bit of the result.

``int8`` codes (the compressed mode's approximate scan) use :func:`code_scores` instead: each widened tile is
multiplied by all the queries in one small BLAS product, 1.2-1.5x faster than ``vecdot`` per query there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ._store import widen_float16

__all__ = ["TILE_BYTES", "code_scores", "row_scores"]

_VECDOT_MAX_DIM = 8192  # np.vecdot: BLAS sdot per row, which runs on the calling thread up to 10,000 values
TILE_BYTES = 512 << 10  # float32 bytes per tile: one tile per core stays in its L2 cache (1 MiB here)

def _dot(rows: npt.NDArray[Any], query: npt.NDArray[np.float32], out: npt.NDArray[np.float32]) -> None:
    """``out[i] = rows[i] . query``, each row on its own."""
    if rows.shape[1] <= _VECDOT_MAX_DIM:
        np.vecdot(rows, query, out=out)
    else:
        np.einsum("ij,j->i", rows, query, out=out)


Split = Callable[[Callable[[int, int], object], int], None]

_SMALL_GEMM = 1 << 18  # m * n * k up to which OpenBLAS multiplies on the calling thread alone (no hand-off)
_TILE_GEMM_QUERIES = 4  # float32 rows, 4 queries and d >= _TILE_GEMM_DIM: one small BLAS product per tile
_TILE_GEMM_DIM = 768  # measured, one thread: d = 512 -4% CPU, 768 -15%, 1024 -38%, 1536 -18%; d = 384 none


def _tile_products(
    block: npt.NDArray[np.float32], queries: npt.NDArray[np.float32], out: npt.NDArray[np.float32], split: Split
) -> None:
    """``out = queries @ block.T`` as one small BLAS product per tile of rows, on the calling threads.

    With 4 queries and long rows a vecdot per query reads each row from the cache four times; one small product
    per tile reads it once (24 against 29 ms of CPU for 50k x 1536, 26 against 42 ms for 100k x 1024, one
    thread). OpenBLAS does not promise that a small product's scores are independent of a row's place in its
    tile, so the tiles are cut at fixed multiples of the tile size from the block's start and every thread's
    range is widened to whole tiles: the split over threads never moves a tile boundary, and the result stays
    the same bit for bit for any ``threads``.
    """
    nq, dim = queries.shape
    n = block.shape[0]
    tile = max(8, min(TILE_BYTES // (4 * dim), _SMALL_GEMM // (nq * dim)))

    def work(a: int, b: int) -> None:
        start = min(n, -(-a // tile) * tile)
        stop = n if b >= n else min(n, -(-b // tile) * tile)
        for c in range(start, stop, tile):
            e = min(stop, c + tile)
            np.matmul(queries, block[c:e].T, out=out[:, c:e])

    split(work, n)


def row_scores(
    block: npt.NDArray[np.generic],
    queries: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32],
    split: Split,
    *,
    fast_half: bool,
    tile_bytes: int = TILE_BYTES,
) -> None:
    """``out[j, i] = block[i] . queries[j]`` for every row ``i`` of ``block`` (float32, float16 or int8) and
    query ``j``; ``out`` is ``(len(queries), len(block))``, each of its rows contiguous.

    ``split(work, n)`` runs ``work(a, b)`` over row ranges covering ``0..n`` (on the search's threads).
    ``fast_half`` widens float16 rows with :func:`widen_float16` (callers check ``subnormals_kept()``).
    """
    nq = queries.shape[0]
    dim = block.shape[1]
    widen = block.dtype != np.float32
    half = fast_half and block.dtype == np.float16
    tile = max(16, tile_bytes // (4 * dim))
    if not widen and nq >= _TILE_GEMM_QUERIES and dim >= _TILE_GEMM_DIM:
        _tile_products(block, queries, out, split)  # type: ignore[arg-type]
        return

    def work(a: int, b: int) -> None:
        if not widen and nq == 1:  # one query reads each row once: no tiles needed
            _dot(block[a:b], queries[0], out[0, a:b])
            return
        buf = np.empty((min(tile, b - a), dim), dtype=np.float32) if widen else None
        bits = np.empty(buf.shape, dtype=np.uint32) if half and buf is not None else None
        for c in range(a, b, tile):
            e = min(b, c + tile)
            rows: npt.NDArray[np.float32]
            if buf is None:
                rows = block[c:e]  # type: ignore[assignment]
            elif bits is not None:
                rows = widen_float16(block[c:e], buf[: e - c], bits[: e - c])  # type: ignore[arg-type]
            else:
                rows = buf[: e - c]
                np.copyto(rows, block[c:e], casting="unsafe")
            for j in range(nq):
                _dot(rows, queries[j], out[j, c:e])

    split(work, block.shape[0])





def code_scores(
    codes: npt.NDArray[np.int8],
    queries: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32],
    split: Split,
    *,
    tile_values: int = _SMALL_GEMM,
) -> None:
    """``out[j, i] = codes[i] . queries[j]`` (up to float32 rounding) for a block of int8 codes and a few
    queries; ``out`` is ``(len(queries), len(codes))``, each of its rows contiguous.

    Each thread widens a tile of its rows to float32 into its own buffer and multiplies it at once
    (``queries @ tile.T``, one small BLAS product written straight into ``out``): the widened tile never leaves
    the core's cache and only the int8 codes come from memory. A tile holds at most ``tile_values`` products
    (``len(queries) * rows * dim``), so OpenBLAS runs each product on the thread that calls it, and at most
    :data:`TILE_BYTES` of float32. Unlike :func:`row_scores`, a score may differ in its last bits with the tile
    it falls in: the int8 scan only needs scores within the float32 rounding bound, which holds for any
    summation order (its exact re-rank decides the result).
    """
    nq, dim = queries.shape
    tile = max(8, min(TILE_BYTES // (4 * dim), tile_values // (nq * dim)))

    def work(a: int, b: int) -> None:
        buf = np.empty((min(tile, b - a), dim), dtype=np.float32)
        for c in range(a, b, tile):
            e = min(b, c + tile)
            rows = buf[: e - c]
            np.copyto(rows, codes[c:e], casting="unsafe")
            np.matmul(queries, rows.T, out=out[:, c:e])

    split(work, codes.shape[0])
