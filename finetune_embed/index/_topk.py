"""Exact running top-k over blocks of scores, with deterministic tie-breaking.

Every candidate is encoded as one ``uint64`` key: the high 32 bits are the float32 score mapped to an unsigned
integer with the same order, the low 32 bits are ``0xFFFFFFFF - position``. Keys are unique, so "the k largest
keys" is exactly "the k best scores, ties broken by the earlier position", and any selection algorithm
(``np.partition`` included) gives the same answer. The key ``0`` is below every real key and marks an empty
slot.

:class:`RunningTopK` keeps, for each query, its k best keys so far and the score of its k-th best (the
threshold). A block of scores only costs one vectorised max per query and, for the few queries whose block
maximum beats their threshold, one comparison and a small merge. Blocks must be pushed in increasing position
order for the threshold test (strictly greater) to be exact; the keys make any order give the same result.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_POSITIONS", "RunningTopK", "decode_keys", "score_keys"]

MAX_POSITIONS = 1 << 32
_LOW = np.uint64(0xFFFFFFFF)
_SIGN = np.uint32(0x80000000)
_SHIFT = np.uint64(32)
_GROUP = 128  # rows per group in push_columns (interleaved: every s-th row of a block): one maximum per group and query


def _sortable(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.uint64]:
    """Map float32 scores to uint32 (held in uint64) with the same order; -0.0 and 0.0 map alike."""
    s = np.ascontiguousarray(scores, dtype=np.float32) + np.float32(0.0)  # -0.0 + 0.0 == +0.0
    u = s.view(np.uint32)
    out = np.where(u & _SIGN, ~u, u | _SIGN)
    return out.astype(np.uint64)


def score_keys(scores: npt.NDArray[np.float32], positions: npt.NDArray[np.integer]) -> npt.NDArray[np.uint64]:
    """One unique, order-preserving key per (score, position): higher score first, then lower position."""
    pos = np.asarray(positions).astype(np.uint64, copy=False)
    return (_sortable(scores) << _SHIFT) | (_LOW - pos)


def decode_keys(keys: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The scores and positions encoded in ``keys`` (the empty key 0 decodes to garbage: drop it first)."""
    hi = (keys >> _SHIFT).astype(np.uint32)
    u = np.where(hi & _SIGN, hi ^ _SIGN, ~hi)
    scores = np.ascontiguousarray(u).view(np.float32)
    positions = (_LOW - (keys & _LOW)).astype(np.int64)
    return scores, positions


def _threshold_of(min_keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.float32]:
    scores, _ = decode_keys(min_keys)
    return np.where(min_keys == 0, np.float32(-np.inf), scores).astype(np.float32)


class PoolTooLarge(Exception):
    """The candidates within the margin outgrew the limit (the caller falls back to an exact scan)."""


class RunningTopK:
    """The exact top-``k`` of ``n_queries`` queries, fed one block of scores at a time.

    Scores of ``-inf`` are never kept (use them to mask excluded items).

    With a ``margin`` (one value per query), every item whose score is within the margin of the final k-th
    best score is also collected in a pool (:meth:`pool`): the shortlist that the int8 mode re-ranks.
    """

    def __init__(
        self,
        n_queries: int,
        k: int,
        *,
        margin: npt.NDArray[np.float32] | None = None,
        pool_limit: int = 1 << 24,
    ) -> None:
        self.k = k
        self.keys = np.zeros((n_queries, k), dtype=np.uint64)
        self.threshold = np.full(n_queries, -np.inf, dtype=np.float32)
        self.margin = margin
        self.pool_limit = pool_limit
        self._pool_rows: list[npt.NDArray[np.intp]] = []
        self._pool_keys: list[npt.NDArray[np.uint64]] = []
        self._pool_size = 0
        self._pool_kept = 0  # the size after the last pruning: prune again when it has doubled
        self._maxima: npt.NDArray[np.float32] | None = None  # push_columns' group maxima, reused

    def _limit(self, rows: npt.NDArray[np.intp] | None = None) -> npt.NDArray[np.float32]:
        thr = self.threshold if rows is None else self.threshold[rows]
        if self.margin is None:
            return thr
        return thr - (self.margin if rows is None else self.margin[rows])

    def push(self, scores: npt.NDArray[np.float32], positions: int | npt.NDArray[np.int64]) -> None:
        """Feed a ``(n_queries, n)`` block of scores; ``positions`` is the first column's position, or one
        position per column."""
        q, n = scores.shape
        if n == 0:
            return
        if q == 1:
            cols = np.flatnonzero(scores[0] > self._limit()[0])
            if cols.size == 0:
                return
            rows = np.zeros(1, dtype=np.intp)
            local = np.zeros(cols.size, dtype=np.intp)
            values = scores[0, cols]
        else:
            best = scores.max(axis=1)
            rows = np.flatnonzero(best > self._limit())
            if rows.size == 0:
                return
            sub = scores if rows.size == q else scores[rows]
            flat = np.flatnonzero(sub > self._limit(rows)[:, None])
            local, cols = np.divmod(flat, n)
            values = sub[local, cols]  # (a chunk of a wider block is not contiguous: no reshape copy)
        pos = cols + positions if isinstance(positions, int) else positions[cols]
        self._accept(rows, local, values, pos)

    def push_columns(self, scores: npt.NDArray[np.float32], positions: int | npt.NDArray[np.int64]) -> None:
        """Like :meth:`push` for an ``(n, n_queries)`` block: one column per query, one row per position
        (the layout of ``rows @ queries.T``).

        The block's first ``128 * s`` rows are cut into ``s`` interleaved groups of 128 rows (group ``g`` holds
        rows ``g, g + s, g + 2s, ...``), so the maxima of all groups for all queries are one reduction over the
        outer axis of a ``(128, s, n_queries)`` view: 128 elementwise maxima of contiguous slabs, long
        vectorised loops without per-row overhead (the maxima of 128 consecutive rows cost 1.8-25x more, the
        most for few queries). Only the (group, query) pairs whose maximum beats the query's threshold are
        looked at more closely, so once the thresholds have settled a block costs about one read of its
        scores. The rest of the block (fewer than 128 rows) is compared directly.
        """
        n, q = scores.shape
        if n == 0:
            return
        limit = self._limit()
        whole = n - n % _GROUP
        if whole:
            stride = whole // _GROUP
            hit = self._group_max(scores[:whole]) > limit  # (stride, q)
            pairs = int(np.count_nonzero(hit))
            if pairs * 4 > hit.size:  # most groups qualify (the thresholds are still low): compare everything
                self._take_columns(scores[:whole], limit, 0, positions)
            elif pairs:
                query, group = np.nonzero(hit.T)  # by query, then group
                lanes = scores[:whole].reshape(_GROUP, stride, q).transpose(1, 2, 0)
                looked = lanes[group, query]  # (pairs, _GROUP): the scores of each qualifying pair
                pair, offset = np.nonzero(looked > limit[query][:, None])
                if pair.size:
                    self._take(query[pair], offset * stride + group[pair], looked[pair, offset], positions)
        if whole < n:
            self._take_columns(scores[whole:], limit, whole, positions)

    def _group_max(self, scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``out[g, j]``: the maximum of ``scores[g + m * s, j]`` over ``m < 128``, for ``s = len(scores) / 128``
        (a view of a buffer reused from block to block)."""
        n, q = scores.shape
        stride = n // _GROUP
        if self._maxima is None or self._maxima.size < stride * q:
            self._maxima = np.empty(stride * q, dtype=np.float32)
        out = self._maxima[: stride * q].reshape(stride, q)
        # a reduction over the outer axis: numpy folds each contiguous (stride, q) slab into ``out`` in turn
        np.max(scores.reshape(_GROUP, stride, q), axis=0, out=out)
        return out

    def _take_columns(
        self,
        scores: npt.NDArray[np.float32],
        limit: npt.NDArray[np.float32],
        offset: int,
        positions: int | npt.NDArray[np.int64],
    ) -> None:
        flat = np.flatnonzero(scores > limit)  # by position, then query (one index array: the fast kind)
        if flat.size == 0:
            return
        at, query = np.divmod(flat, scores.shape[1])
        if scores.shape[1] > 1:  # grouped by query: a stable radix sort of small integers
            order = np.argsort(query.astype(np.int16 if scores.shape[1] <= 1 << 15 else np.int32), kind="stable")
            at, query = at[order], query[order]
        self._take(query, at + offset, scores[at, query], positions)

    def _take(
        self,
        query: npt.NDArray[np.intp],
        at: npt.NDArray[np.intp],
        values: npt.NDArray[np.float32],
        positions: int | npt.NDArray[np.int64],
    ) -> None:
        """Candidates grouped by ``query`` (non-decreasing), at block rows ``at``."""
        first = np.empty(query.size, dtype=bool)
        first[0] = True
        np.not_equal(query[1:], query[:-1], out=first[1:])
        rows = query[first]
        local = np.cumsum(first) - 1
        pos = at + positions if isinstance(positions, int) else positions[at]
        self._accept(rows, local, values, pos)

    def _accept(
        self,
        rows: npt.NDArray[np.intp],
        local: npt.NDArray[np.intp],
        values: npt.NDArray[np.float32],
        pos: npt.NDArray[np.integer],
    ) -> None:
        """Candidates ``values`` at positions ``pos`` of queries ``rows[local]`` (``local`` sorted): into the
        pool (with a margin) and, where they beat the threshold, into the top-k."""
        keys = score_keys(values, pos)
        if self.margin is None:
            self._merge(rows, local, keys)
            return
        self._collect(rows[local], keys)
        better = values > self.threshold[rows[local]]  # only these can enter the top-k itself
        if better.any():
            self._merge(rows, local[better], keys[better])

    def _collect(self, rows: npt.NDArray[np.intp], keys: npt.NDArray[np.uint64]) -> None:
        self._pool_rows.append(rows)
        self._pool_keys.append(keys)
        self._pool_size += keys.size
        if self._pool_size > max(1 << 16, 8 * self.keys.size, 2 * self._pool_kept) and len(self._pool_rows) > 1:
            self._prune()
            if self._pool_size > self.pool_limit:
                raise PoolTooLarge

    def _prune(self) -> None:
        rows = np.concatenate(self._pool_rows)
        keys = np.concatenate(self._pool_keys)
        scores, _ = decode_keys(keys)
        keep = scores >= self._limit(rows)
        self._pool_rows = [rows[keep]]
        self._pool_keys = [keys[keep]]
        self._pool_size = self._pool_kept = int(keep.sum())

    def pool(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint64]]:
        """The collected candidates within the margin of each query's final k-th best score, as
        ``(query row, key)`` pairs. Needs ``margin``."""
        if not self._pool_rows:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.uint64)
        self._prune()
        return self._pool_rows[0], self._pool_keys[0]

    def push_keys(self, rows: npt.NDArray[np.intp], local: npt.NDArray[np.intp], keys: npt.NDArray[np.uint64]) -> None:
        """Merge ready-made keys: ``keys[j]`` belongs to query ``rows[local[j]]``; ``local`` is sorted."""
        if keys.size:
            self._merge(rows, local, keys)

    def _merge(self, rows: npt.NDArray[np.intp], local: npt.NDArray[np.intp], keys: npt.NDArray[np.uint64]) -> None:
        k = self.k
        counts = np.bincount(local, minlength=rows.size)
        extra = int(counts.max())
        starts = np.cumsum(counts) - counts
        rank = np.arange(local.size) - starts[local]
        merged = np.zeros((rows.size, k + extra), dtype=np.uint64)
        merged[:, :k] = self.keys[rows]
        merged[local, k + rank] = keys
        top = np.partition(merged, extra, axis=1)[:, extra:]
        self.keys[rows] = top
        self.threshold[rows] = _threshold_of(top.min(axis=1))

    def results(self) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
        """Per query: (scores, positions), best first, without empty slots."""
        ordered = np.ascontiguousarray(np.sort(self.keys, axis=1)[:, ::-1])
        scores, positions = decode_keys(ordered)
        counts = (ordered != 0).sum(axis=1).tolist()
        return [(scores[i, :c].copy(), positions[i, :c].copy()) for i, c in enumerate(counts)]
