"""Where the vectors live: rows in insertion order, held in a few segments so that growth never copies.

A segment is a ``(capacity, dim)`` array plus how many rows are used. Appending fills the last segment and,
when it is full, adds a new one at least as large as everything so far (so there are O(log n) segments and no
row is ever copied to grow). A loaded index's first segment can be a copy-on-write memory map of the saved
``.npy`` file.

Three storage kinds:

- ``float32``: the vectors themselves; search reads them in place.
- ``float16``: half the memory; search widens one block at a time to float32 into a reused buffer (exact over the
  stored values) with :func:`widen_float16`, about twice as fast as numpy's own float16 cast.
- ``int8``: scalar-quantised codes (one byte per dimension, a per-dimension scale) kept in RAM for the scan,
  and the exact float32 vectors kept on disk (a memory-mapped file) for re-ranking a shortlist. Each row also
  keeps the norm of its quantisation error, which bounds how far an approximate score can be from the exact
  one; the index uses that bound to prove the re-ranked top-k is exact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["Kind", "Segment", "VectorStore", "subnormals_kept", "widen_float16"]

Kind: TypeAlias = Literal["float32", "float16", "int8"]
_MIN_CAPACITY = 1024
_F16_MAX = 65504.0
_F16_SCALE = np.float32(2.0**112)  # 2 ** (127 - 15): float16's exponent bias moved to float32's
_F16_TOP = np.uint32(0x7C00 << 13)  # float16's all-ones exponent (inf, NaN), shifted into place


def subnormals_kept() -> bool:
    """Whether float32 arithmetic keeps subnormal numbers in this thread (it does unless a library switched on
    flush-to-zero / denormals-are-zero); :func:`widen_float16`'s fast path relies on it."""
    tiny = np.array([2.0**-140], dtype=np.float32)
    return bool((tiny * _F16_SCALE)[0] == np.float32(2.0**-28))


def widen_float16(
    rows: npt.NDArray[np.float16], out: npt.NDArray[np.float32], scratch: npt.NDArray[np.uint32]
) -> npt.NDArray[np.float32]:
    """``rows`` as float32 in ``out`` (same shape; ``scratch`` too), bit for bit what ``rows.astype(np.float32)``
    gives, in a few integer passes that run at about twice the speed of numpy's float16 cast.

    A float16's sign, exponent and mantissa are moved into float32's positions (the mantissa shifted by 13
    bits) and the result, read as a float32, is multiplied by 2**112, which rebases the exponent exactly;
    float16 subnormals become float32 subnormals first, so callers check :func:`subnormals_kept`. A block with
    an infinity or NaN is converted by numpy instead.
    """
    bits = out.view(np.uint32)
    np.copyto(bits, rows.view(np.uint16), casting="unsafe")
    np.bitwise_and(bits, np.uint32(0x8000), out=scratch)
    np.bitwise_xor(bits, scratch, out=bits)
    np.left_shift(bits, np.uint32(13), out=bits)
    if (bits >= _F16_TOP).any():  # not finite: never stored by add, possible only in a hand-made file
        np.copyto(out, rows, casting="unsafe")
        return out
    np.multiply(out, _F16_SCALE, out=out)
    np.left_shift(scratch, np.uint32(16), out=scratch)
    np.bitwise_or(bits, scratch, out=bits)
    return out


@dataclass
class Segment:
    """``data[:used]`` holds the rows of slots ``start .. start + used``."""

    start: int
    data: npt.NDArray[np.generic]
    used: int = 0
    exact: npt.NDArray[np.float32] | None = None  # int8 kind: the float32 rows (memory-mapped)
    residual: npt.NDArray[np.float32] | None = None  # int8 kind: |x - decode(code)| per row
    files: list[Path] = field(default_factory=list)

    @property
    def capacity(self) -> int:
        return int(self.data.shape[0])


def _spill(directory: str | None, rows: int, dim: int) -> tuple[npt.NDArray[np.float32], Path | None]:
    """A float32 (rows, dim) array backed by an anonymous temporary file (unlinked at once where possible)."""
    fd, name = tempfile.mkstemp(prefix="finetune-embed-", suffix=".f32", dir=directory)
    os.close(fd)
    path = Path(name)
    arr = np.memmap(path, dtype=np.float32, mode="w+", shape=(max(rows, 1), dim))
    try:
        path.unlink()  # the mapping keeps the data alive; nothing is left behind
        kept: Path | None = None
    except OSError:  # pragma: no cover - Windows cannot unlink a mapped file
        kept = path
    return arr, kept


class VectorStore:
    """Rows of ``dim`` float values in slots ``0 .. n-1``; see the module docstring."""

    def __init__(self, dim: int, kind: Kind, *, spill_dir: str | None = None) -> None:
        self.dim = dim
        self.kind: Kind = kind
        self.spill_dir = spill_dir
        self.segments: list[Segment] = []
        self.n = 0
        self.scale: npt.NDArray[np.float32] | None = None  # int8: per-dimension step
        self.max_residual = 0.0  # int8: an upper bound of every row's quantisation error norm
        self.max_norm = 0.0  # the largest row norm seen (bounds the rounding error of a dot product)

    # --- growth -----------------------------------------------------------------------------------------

    def _new_segment(self, rows: int) -> Segment:
        capacity = max(rows, self.capacity, _MIN_CAPACITY)
        dtype = {"float32": np.float32, "float16": np.float16, "int8": np.int8}[self.kind]
        seg = Segment(start=self.n, data=np.empty((capacity, self.dim), dtype=dtype))
        if self.kind == "int8":
            seg.exact, kept = _spill(self.spill_dir, capacity, self.dim)
            seg.residual = np.zeros(capacity, dtype=np.float32)
            if kept is not None:  # pragma: no cover
                seg.files.append(kept)
        self.segments.append(seg)
        return seg

    @property
    def capacity(self) -> int:
        return sum(s.capacity for s in self.segments)

    def append(self, rows: npt.NDArray[np.float32], scale: npt.NDArray[np.float32] | None = None) -> None:
        """Append validated float32 rows, each multiplied by ``scale`` (cosine normalisation) when given.
        ``rows`` itself is never modified."""
        if self.kind == "int8" and rows.shape[0]:
            self.fit_scale(rows, scale)
        done = 0
        total = rows.shape[0]
        while done < total:
            seg = self.segments[-1] if self.segments else None
            if seg is None or seg.used == seg.capacity or seg.start + seg.used != self.n:
                seg = self._new_segment(total - done)
            take = min(total - done, seg.capacity - seg.used)
            self._write(seg, seg.used, rows[done : done + take], None if scale is None else scale[done : done + take])
            seg.used += take
            self.n += take
            done += take

    def overwrite(
        self, slots: npt.NDArray[np.int64], rows: npt.NDArray[np.float32], scale: npt.NDArray[np.float32] | None
    ) -> None:
        """Replace the rows of existing ``slots``."""
        if self.kind == "int8" and rows.shape[0]:
            self.fit_scale(rows, scale)
        for seg, local, picked in self._split(slots):
            for i, j in zip(local.tolist(), picked.tolist(), strict=True):
                self._write(seg, i, rows[j : j + 1], None if scale is None else scale[j : j + 1])

    def _write(
        self, seg: Segment, at: int, rows: npt.NDArray[np.float32], scale: npt.NDArray[np.float32] | None
    ) -> None:
        step = 16384
        for a in range(0, rows.shape[0], step):
            part = rows[a : a + step]
            if scale is not None:
                part = part * scale[a : a + step, None]
            self._write_chunk(seg, at + a, part)

    def _write_chunk(self, seg: Segment, at: int, rows: npt.NDArray[np.float32]) -> None:
        n = rows.shape[0]
        if n:
            self.max_norm = max(self.max_norm, float(np.sqrt(np.einsum("ij,ij->i", rows, rows).max())))
        if self.kind == "float32":
            seg.data[at : at + n] = rows
        elif self.kind == "float16":
            seg.data[at : at + n] = rows.astype(np.float16)
        else:
            assert seg.exact is not None
            assert seg.residual is not None
            seg.exact[at : at + n] = rows
            codes, residual = self.quantize(rows)
            seg.data[at : at + n] = codes
            seg.residual[at : at + n] = residual
            if n:
                self.max_residual = max(self.max_residual, float(residual.max()))

    # --- int8 quantisation --------------------------------------------------------------------------------

    def fit_scale(self, rows: npt.NDArray[np.float32], scale: npt.NDArray[np.float32] | None) -> None:
        """Make the int8 steps cover ``rows`` (times ``scale``): the first rows fix each dimension's step; a later
        value beyond the range widens that dimension's step (with 10% headroom) and re-quantises every stored
        row from its float32 copy. Widening grows the range geometrically, so it happens rarely; codes are
        never clipped."""
        peak = np.zeros(self.dim, dtype=np.float32)
        for a in range(0, rows.shape[0], 16384):
            part = np.abs(rows[a : a + 16384])
            if scale is not None:
                part *= scale[a : a + 16384, None]
            np.maximum(peak, part.max(axis=0), out=peak)
        if self.scale is None:
            floor = max(float(peak.max()), 1e-30) * 1e-3
            self.scale = (np.maximum(peak, floor) / 127.0).astype(np.float32)
            return
        limit = self.scale * np.float32(127.0)
        if (peak <= limit).all():
            return
        self.scale = np.where(peak > limit, peak * np.float32(1.1 / 127.0), self.scale).astype(np.float32)
        self._requantize()

    def _requantize(self) -> None:
        self.max_residual = 0.0
        for seg in self.segments:
            assert seg.exact is not None
            assert seg.residual is not None
            for a in range(0, seg.used, 65536):
                b = min(seg.used, a + 65536)
                codes, residual = self.quantize(np.asarray(seg.exact[a:b]))
                seg.data[a:b] = codes
                seg.residual[a:b] = residual
                if b > a:
                    self.max_residual = max(self.max_residual, float(residual.max()))

    def quantize(
        self, rows: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
        """int8 codes and the norm of each row's quantisation error (values beyond the range, which
        :meth:`fit_scale` prevents, would be clipped and the error norm would still bound them)."""
        if self.scale is None:
            self.fit_scale(rows, None)
        assert self.scale is not None
        inverse = (1.0 / self.scale).astype(np.float32)
        codes = np.empty(rows.shape, dtype=np.int8)
        residual = np.empty(rows.shape[0], dtype=np.float32)
        step = 8192
        work = np.empty((min(step, rows.shape[0]), self.dim), dtype=np.float32)
        for a in range(0, rows.shape[0], step):
            part = rows[a : a + step]
            t = work[: part.shape[0]]
            np.multiply(part, inverse, out=t)
            np.rint(t, out=t)
            np.clip(t, -127, 127, out=t)
            codes[a : a + step] = t
            t *= self.scale
            t -= part
            residual[a : a + step] = np.sqrt(np.einsum("ij,ij->i", t, t, dtype=np.float64))
        # round the bound up a little so float32 rounding in its own computation cannot make it too small
        return codes, residual * np.float32(1.0 + 1e-5) + np.float32(1e-12)

    # --- reading ----------------------------------------------------------------------------------------

    def _split(
        self, slots: npt.NDArray[np.int64]
    ) -> Iterator[tuple[Segment, npt.NDArray[np.int64], npt.NDArray[np.intp]]]:
        """For each segment holding some of ``slots``: the local row numbers and their places in ``slots``."""
        if len(self.segments) == 1:
            yield self.segments[0], slots - self.segments[0].start, np.arange(slots.size)
            return
        starts = np.array([s.start for s in self.segments])
        which = np.searchsorted(starts, slots, side="right") - 1
        for si in np.unique(which).tolist():
            picked = np.flatnonzero(which == si)
            seg = self.segments[si]
            yield seg, slots[picked] - seg.start, picked

    def rows(self, slots: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The exact float32 rows of ``slots`` (a copy), in the order given."""
        out = np.empty((slots.size, self.dim), dtype=np.float32)
        for seg, local, picked in self._split(slots):
            src = (seg.exact if seg.exact is not None else seg.data).view(np.ndarray)
            if picked.size == slots.size and src.dtype == np.float32:
                np.take(src, local, axis=0, out=out)
            else:
                out[picked] = src[local]
        return out

    def scan_rows(self, slots: npt.NDArray[np.int64], buf: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The rows that the scan multiplies (int8 codes as float32, float16 widened) for ``slots``."""
        out = buf[: slots.size]
        for seg, local, picked in self._split(slots):
            if picked.size == slots.size:
                np.copyto(out, seg.data[local], casting="unsafe")
            else:
                out[picked] = seg.data[local]
        return out

    def residuals(self, slots: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        out = np.zeros(slots.size, dtype=np.float32)
        for seg, local, picked in self._split(slots):
            if seg.residual is not None:
                out[picked] = seg.residual[local]
        return out

    def blocks(self, rows_per_block: int, first: int) -> Iterator[tuple[int, npt.NDArray[np.generic]]]:
        """``(first slot, rows)`` for consecutive blocks of the stored arrays (no copies).

        The first block has at most ``first`` rows and each next one at most four times as many as the one
        before, up to ``rows_per_block``: small blocks set the top-k thresholds cheaply, and while the
        thresholds are low only a few candidates pass per block.
        """
        for start, _, data in self._walk(rows_per_block, first, exact=False):
            yield start, data

    def _walk(
        self, rows_per_block: int, first: int, *, exact: bool
    ) -> Iterator[tuple[int, int, npt.NDArray[np.generic]]]:
        limit = min(first, rows_per_block)
        for seg in self.segments:
            # a plain ndarray view of a memory map: slices and products skip np.memmap's Python-level hooks
            src = (seg.exact if exact and seg.exact is not None else seg.data).view(np.ndarray)
            a = 0
            while a < seg.used:
                b = min(seg.used, a + limit)
                yield seg.start + a, b - a, src[a:b]
                a = b
                limit = min(rows_per_block, 4 * limit)

    def exact_blocks(self, rows_per_block: int, first: int) -> Iterator[tuple[int, npt.NDArray[np.generic]]]:
        """Like :meth:`blocks`, over the exact float32 rows (the memory-mapped file of the int8 kind)."""
        for start, _, data in self._walk(rows_per_block, first, exact=True):
            yield start, data

    def as_float32(self) -> npt.NDArray[np.float32]:
        """All rows as one float32 ``(n, dim)`` array (a view when possible)."""
        parts = []
        for seg in self.segments:
            src = seg.exact if seg.exact is not None else seg.data
            parts.append(src[: seg.used])
        if len(parts) == 1 and parts[0].dtype == np.float32:
            return parts[0]  # type: ignore[return-value]
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)

    def iter_float32(self, chunk: int) -> Iterator[npt.NDArray[np.float32]]:
        """All rows in order, as float32 chunks of at most ``chunk`` rows (for saving without a full copy)."""
        for seg in self.segments:
            src = seg.exact if seg.exact is not None else seg.data
            for a in range(0, seg.used, chunk):
                yield np.asarray(src[a : min(seg.used, a + chunk)], dtype=np.float32)

    def iter_stored(self, chunk: int) -> Iterator[npt.NDArray[np.generic]]:
        """All stored rows (float16 stays float16, int8 gives the codes) in chunks."""
        for seg in self.segments:
            for a in range(0, seg.used, chunk):
                yield seg.data[a : min(seg.used, a + chunk)]

    # --- compaction and sizes -------------------------------------------------------------------------------

    def compact(self, keep: npt.NDArray[np.int64]) -> None:
        """Keep only the rows of ``keep`` (sorted slots), renumbered 0..len(keep)-1 in the same order."""
        old = self.segments
        self.segments = []
        self.n = 0
        self.max_residual = 0.0
        if keep.size == 0:
            return
        seg = self._new_segment(int(keep.size))
        seg.start = 0
        starts = np.array([s.start for s in old])
        which = np.searchsorted(starts, keep, side="right") - 1
        at = 0
        for si in np.unique(which).tolist():
            src = old[si]
            local = keep[which == si] - src.start
            m = local.size
            seg.data[at : at + m] = src.data[local]
            if self.kind == "int8":
                assert seg.exact is not None
                assert seg.residual is not None
                assert src.exact is not None
                assert src.residual is not None
                seg.exact[at : at + m] = src.exact[local]
                seg.residual[at : at + m] = src.residual[local]
            at += m
        seg.used = at
        self.n = at
        if self.kind == "int8" and seg.residual is not None:
            self.max_residual = float(seg.residual[:at].max())

    def nbytes_resident(self) -> int:
        """Bytes of the rows the scan reads (codes for int8; its float32 rows on disk are not counted)."""
        total = 0
        for seg in self.segments:
            total += seg.used * self.dim * seg.data.dtype.itemsize
            if seg.residual is not None:
                total += seg.used * 4
        return total

    def close(self) -> None:
        """Release memory maps and temporary files."""
        for seg in self.segments:
            for f in seg.files:  # pragma: no cover - only where unlinking a mapped file failed
                with contextlib.suppress(OSError):
                    f.unlink()
        self.segments = []


def fits_float16(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.intp]:
    """Rows with a value too large for float16 (their positions)."""
    return np.flatnonzero((np.abs(rows) > _F16_MAX).any(axis=1))
