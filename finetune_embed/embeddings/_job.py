"""The state of one embedding call, shared by the sync and async embedders and the Batch API mode.

Memory: the output array ``(n, d)`` float32 is allocated once and vectors are decoded straight into it. Each
distinct text (a *unit*) is written into the row of the first input that holds it; duplicates are copied at
the end. Only pieces of cut long inputs need rows of their own (``aux``). So the peak is the output array
plus one response in flight per request slot.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._exceptions import EmbeddingError
from .._progress import progress_bar
from ..batching import pack_stream
from ._cache import EmbeddingCache, text_key
from ._decode import StreamDecoder, decode_into, row_flags
from ._plan import EmptyPolicy, Plan
from ._tokens import utf8_lengths
from ._types import EmbeddingResult, EmbeddingStats, Pieces

__all__ = ["EmbedJob"]

_COPY_CHUNK = 4096  # rows copied at once when filling duplicates (bounds the temporary)
_SLICE = 256  # rows checked / written to the cache at once
_FEW_REQUESTS = 4  # a chunk whose byte bounds fill at most this many requests is counted exactly


class EmbedJob:
    """Output buffers, bookkeeping and cache I/O of one call (thread-safe where the embedders need it)."""

    def __init__(
        self,
        plan: Plan,
        *,
        model: str,
        cache_model: str | None = None,
        dimensions: int | None,
        dim: int | None,
        cache: EmbeddingCache | None,
        progress: bool | None = None,
        desc: str = "Embedding",
        count: Callable[[list[str]], list[int]] | None = None,
        bounded_by_bytes: bool = False,
    ) -> None:
        self.plan = plan
        #: exact token counts (the planner's counter), for units known only by their bound so far
        self.count = count
        #: whether a text never has more tokens than UTF-8 bytes (byte-level BPE), so its length bounds its count
        self.bounded_by_bytes = bounded_by_bytes
        self.model = model
        self.cache_model = cache_model or model  # the cache's name: model and server (see _namespace)
        self.dimensions = dimensions
        self.dim = dim
        self.cache = cache
        self._lock = threading.Lock()
        self.started = time.monotonic()
        n_units = plan.n_units
        self.unit_row = np.full(n_units, -1, dtype=np.int64)
        self.unit_in_out = np.zeros(n_units, dtype=bool)
        single = np.flatnonzero(plan.input_unit >= 0)
        if single.size:
            units, first = np.unique(plan.input_unit[single], return_index=True)
            self.unit_row[units] = single[first]
            self.unit_in_out[units] = True
        aux_units = np.flatnonzero(~self.unit_in_out)
        self.unit_row[aux_units] = np.arange(aux_units.size, dtype=np.int64)
        self.n_aux = int(aux_units.size)
        #: tokens of each unit: exact where ``unit_exact``, else an upper bound (its UTF-8 length); -1 not yet known
        self.unit_tokens = np.asarray(plan.unit_tokens, dtype=np.int64)
        self.unit_exact = self.unit_tokens >= 0
        self._exact_cache = np.full(n_units, -1, dtype=np.int64)  # exact counts of units packed by their bound
        self.unit_done = np.zeros(n_units, dtype=bool)
        self.unit_ok = np.zeros(n_units, dtype=bool)
        self.keys: list[bytes] | None = [text_key(t) for t in plan.unit_texts] if cache is not None else None
        self.out: npt.NDArray[np.float32] | None = None
        self.aux: npt.NDArray[np.float32] | None = None
        if dim is not None:
            self._allocate(dim)
        # statistics (updated by the embedders under self.lock)
        self.cached = 0
        self.requests = 0
        self.tokens_sent = 0
        self.splits = 0
        self.rate_limited = 0
        self.timeouts = 0
        self.rebilled_tokens = 0
        self.size_errors = 0
        self._status = ""
        self._tokens_done = 0
        self._bar: Any = None
        self._progress = progress
        self._desc = desc

    @property
    def lock(self) -> threading.Lock:
        """Guards the statistics."""
        return self._lock

    # --- buffers ----------------------------------------------------------------------------------------------

    def _allocate(self, dim: int) -> None:
        self.dim = dim
        self.out = np.empty((self.plan.n, dim), dtype=np.float32)
        self.aux = np.empty((self.n_aux, dim), dtype=np.float32)

    def _ensure(self, dim: int) -> None:
        if self.out is not None:
            return
        with self._lock:
            if self.out is None:
                self._allocate(dim)

    def _target(self, unit: int) -> tuple[npt.NDArray[np.float32], int]:
        buf = self.out if self.unit_in_out[unit] else self.aux
        assert buf is not None
        return buf, int(self.unit_row[unit])

    def unit_vectors(self, units: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """A copy of the vectors of ``units`` (in that order)."""
        assert self.out is not None
        assert self.aux is not None
        result = np.empty((units.size, self.out.shape[1]), dtype=np.float32)
        in_out = self.unit_in_out[units]
        if in_out.any():
            result[in_out] = self.out[self.unit_row[units[in_out]]]
        if (~in_out).any():
            result[~in_out] = self.aux[self.unit_row[units[~in_out]]]
        return result

    # --- the cache --------------------------------------------------------------------------------------------

    def load_cache(self) -> int:
        """Fill every unit found in the cache; returns how many were found."""
        if self.cache is None or self.keys is None or not self.keys:
            return 0
        unit_of = {key: u for u, key in enumerate(self.keys)}
        found = 0
        for key, vec in self.cache.vectors(self.cache_model, self.dimensions, self.keys, dim=self.dim):
            dim = int(vec.shape[0])
            if self.dim is not None and dim != self.dim:
                continue  # written by a server that returned another size: treat as missing
            self._ensure(dim)
            u = unit_of[key]
            buf, row = self._target(u)
            buf[row] = vec
            self.unit_done[u] = True
            self.unit_ok[u] = True
            found += 1
        self.cached = found
        return found

    # --- work -------------------------------------------------------------------------------------------------

    def missing(self) -> npt.NDArray[np.int64]:
        """Units still to embed, in order."""
        return np.flatnonzero(~self.unit_done).astype(np.int64)

    def batches(self, *, max_inputs: int, max_tokens: int) -> deque[npt.NDArray[np.int64]]:
        """The missing units packed into requests within both limits (all token counts must be known)."""
        return deque(self.iter_batches(None, max_inputs=max_inputs, max_tokens=max_tokens))

    def iter_batches(
        self,
        count: Callable[[list[str]], list[int]] | None,
        *,
        max_inputs: int,
        max_tokens: int,
        chunk: int = 2048,
    ) -> Iterator[npt.NDArray[np.int64]]:
        """Pack the missing units into requests, lazily: units not counted yet are counted ``chunk`` at a time
        with ``count``, and each request is yielded as soon as it is full. An item over the token budget
        becomes a request of its own (the sender then explains why it cannot go)."""
        missing = self.missing()
        texts = self.plan.unit_texts

        def pairs() -> Iterator[tuple[int, int]]:
            for start in range(0, missing.size, chunk):
                part = missing[start : start + chunk]
                unknown = part[self.unit_tokens[part] < 0]
                if unknown.size:
                    if count is None:
                        raise ValueError("token counts are missing")  # pragma: no cover - a programming error
                    self.unit_tokens[unknown] = count([texts[u] for u in unknown.tolist()])
                capped = np.minimum(self.unit_tokens[part], max_tokens)
                yield from zip(part.tolist(), capped.tolist(), strict=True)

        for batch in pack_stream(pairs(), max_inputs=max_inputs, max_tokens=max_tokens):
            yield np.asarray(batch, dtype=np.int64)

    def batch_tokens(self, batch: npt.NDArray[np.int64]) -> int:
        """Tokens of one request."""
        return int(self.unit_tokens[batch].sum())

    def texts(self, batch: npt.NDArray[np.int64]) -> list[str]:
        """The strings of one request."""
        texts = self.plan.unit_texts
        return [texts[u] for u in batch.tolist()]

    def start_progress(self) -> None:
        """Open the progress bar (texts still to send; tokens sent in the postfix)."""
        todo = int((~self.unit_done).sum())
        self._bar = progress_bar(total=todo, desc=self._desc, unit="text", progress=self._progress)
        self._tokens_done = 0
        self._status = ""

    def set_status(self, text: str) -> None:
        """What the call is waiting for, after the tokens in the progress bar's postfix ("" clears it)."""
        with self._lock:
            self._status = text
            if self._bar is not None:
                self._bar.set_postfix_str(self._postfix(), refresh=True)

    def _postfix(self) -> str:
        return f"{self._tokens_done:,} tokens" + (f"; {self._status}" if self._status else "")

    def counted_chunks(
        self,
        count: Callable[[list[str]], list[int]],
        chunk: int = 2048,
        exact: Callable[[], bool | None] | None = None,
        request_tokens: int | None = None,
    ) -> Iterator[npt.NDArray[np.int64]]:
        """The missing units in order, ``chunk`` at a time, each chunk's token counts filled in first.

        ``exact()`` says whether exact counts are worth their cost now: ``True`` (count), ``False`` (a text's
        UTF-8 length bounds its tokens: requests packed by it stay within every limit) or ``None`` (not known
        yet: the first chunk gets bounds, so the first request leaves at once, later ones are counted). Bounds
        are used only when ``bounded_by_bytes``, and not for a chunk whose bounds would fill two to
        :data:`_FEW_REQUESTS` requests of ``request_tokens`` (a small job: counting it costs little and makes
        its requests as few as the limits allow).
        """
        missing = self.missing()
        texts = self.plan.unit_texts
        for start in range(0, missing.size, chunk):
            part = missing[start : start + chunk]
            unknown = part[self.unit_tokens[part] < 0]
            if unknown.size:
                strings = [texts[u] for u in unknown.tolist()]
                need = True if exact is None or not self.bounded_by_bytes else exact()
                bounds: list[int] | None = None
                if need is False or (need is None and start == 0):
                    bounds = utf8_lengths(strings)
                    if request_tokens and request_tokens < sum(bounds) <= _FEW_REQUESTS * request_tokens:
                        bounds = None
                if bounds is not None:
                    self.unit_tokens[unknown] = bounds
                else:
                    self.unit_tokens[unknown] = count(strings)
                    self.unit_exact[unknown] = True
            yield part

    def all_exact(self, units: npt.NDArray[np.int64]) -> bool:
        """Whether the token counts of ``units`` are exact (not bounds)."""
        return bool(self.unit_exact[units].all())

    def exact_counts(self, units: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Exact token counts of ``units``, counting (once) those known only by a bound, for what must be exact:
        tokens billed, error messages, pieces. The packing keeps its bounds (see :meth:`make_exact`)."""
        values: npt.NDArray[np.int64] = self.unit_tokens[units].copy()
        need = ~self.unit_exact[units]
        if need.any():
            todo = units[need]
            missing = todo[self._exact_cache[todo] < 0]
            if missing.size:
                if self.count is None:  # pragma: no cover - a programming error
                    raise EmbeddingError("EmbedJob: exact token counts are needed, but the job was given no counter")
                texts = self.plan.unit_texts
                self._exact_cache[missing] = self.count([texts[u] for u in missing.tolist()])
            values[need] = self._exact_cache[todo]
        return values

    def exact_total(self) -> int:
        """Exact tokens of every unit known so far (counting those known only by a bound)."""
        known = np.flatnonzero(self.unit_tokens >= 0).astype(np.int64)
        return int(self.exact_counts(known).sum()) if known.size else 0

    def make_exact(self, units: npt.NDArray[np.int64]) -> None:
        """Replace the bounds of ``units`` by exact counts, for a request taken from the feed (whose totals these
        units have left) when a limit became known after it was packed."""
        todo = units[~self.unit_exact[units]]
        if todo.size:
            self.unit_tokens[todo] = self.exact_counts(todo)
            self.unit_exact[todo] = True

    def close_progress(self) -> None:
        """Close the progress bar (safe to call twice)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _put(self, units: npt.NDArray[np.int64]) -> Callable[[int, npt.NDArray[np.float32]], None]:
        def put(index: int, vec: npt.NDArray[np.float32]) -> None:
            self._ensure(int(vec.shape[0]))
            buf, row = self._target(int(units[index]))
            buf[row] = vec

        return put

    def _put_rows(
        self, units: npt.NDArray[np.int64]
    ) -> Callable[[npt.NDArray[np.int64], npt.NDArray[np.float32]], None]:
        def put_rows(positions: npt.NDArray[np.int64], rows: npt.NDArray[np.float32]) -> None:
            self._ensure(int(rows.shape[1]))
            assert self.out is not None
            assert self.aux is not None
            chosen = units[positions]
            in_out = self.unit_in_out[chosen]
            if bool(in_out.all()):
                self.out[self.unit_row[chosen]] = rows
                return
            self.out[self.unit_row[chosen[in_out]]] = rows[in_out]
            self.aux[self.unit_row[chosen[~in_out]]] = rows[~in_out]

        return put_rows

    def decoder(self, batch: npt.NDArray[np.int64]) -> StreamDecoder:
        """A streaming decoder that writes ``batch``'s vectors straight into the buffers as they arrive."""
        return StreamDecoder(
            expected=int(batch.size), dim=self.dim, put=self._put(batch), put_rows=self._put_rows(batch)
        )

    def accept(
        self, batch: npt.NDArray[np.int64], data: Sequence[Any] | None, *, allow_missing: bool = True
    ) -> npt.NDArray[np.int64]:
        """Decode an already parsed response (its ``data`` items) for ``batch`` and :meth:`commit` it. Raises
        :class:`~finetune_embed.EmbeddingResponseError`, writing nothing, when the response cannot be matched
        to the request."""
        missing_pos = decode_into(data, expected=int(batch.size), dim=self.dim, put=self._put(batch),
                                  allow_missing=allow_missing)
        return self.commit(batch, missing_pos)

    def commit(
        self, batch: npt.NDArray[np.int64], missing_pos: Sequence[int], tokens: int | None = None
    ) -> npt.NDArray[np.int64]:
        """Mark the vectors of ``batch`` received (all but ``missing_pos``), flag unusable ones, write the
        good ones to the cache in one transaction, committed at once, and advance the progress bar (by
        ``tokens``, default: our count of what was received); returns the units still missing. Works in slices
        of rows, so it needs little memory of its own."""
        units = batch
        received = np.delete(units, list(missing_pos)) if len(missing_pos) else units
        flags = np.empty(received.size, dtype=bool)
        for start in range(0, received.size, _SLICE):
            flags[start : start + _SLICE] = row_flags(self.unit_vectors(received[start : start + _SLICE]))
        self.unit_ok[received] = flags
        self.unit_done[received] = True
        if self.cache is not None and self.keys is not None and self.dim and flags.any():
            keys = self.keys
            good = received[flags]

            def items() -> Iterator[tuple[bytes, bytes]]:
                for start in range(0, good.size, _SLICE):
                    part = good[start : start + _SLICE]
                    rows = self.unit_vectors(part).astype("<f4", copy=False)
                    for u, row in zip(part.tolist(), rows, strict=True):
                        yield keys[u], row.tobytes()

            self.cache.put_items(self.cache_model, self.dimensions, items(), self.dim)
        if tokens is None or len(missing_pos):
            tokens = self.batch_tokens(received)
        with self._lock:
            self._tokens_done += tokens
            if received.size:
                self._status = ""  # vectors arrived: whatever was awaited is over
            if self._bar is not None:
                self._bar.update(int(received.size))
                self._bar.set_postfix_str(self._postfix(), refresh=False)
        return units[list(missing_pos)] if len(missing_pos) else units[:0]

    # --- the result -------------------------------------------------------------------------------------------

    def finish(self, *, empty_inputs: EmptyPolicy, pieces: bool, default_dim: int | None) -> EmbeddingResult:
        """Assemble the result: copy duplicates, average cut inputs, fill empty rows, flag bad rows."""
        plan = self.plan
        if not bool(self.unit_done.all()):
            raise EmbeddingError(f"{int((~self.unit_done).sum())} texts were not embedded")  # pragma: no cover
        if self.out is None:
            self._allocate(default_dim or 0)
        out, aux = self.out, self.aux
        assert out is not None
        assert aux is not None
        invalid = np.zeros(plan.n, dtype=bool)
        # inputs sharing a unit with an earlier input
        single = np.flatnonzero(plan.input_unit >= 0)
        if single.size:
            units = plan.input_unit[single]
            src = self.unit_row[units]
            invalid[single] = ~self.unit_ok[units]
            dup = single[src != single]
            src_dup = src[src != single]
            for start in range(0, dup.size, _COPY_CHUNK):
                out[dup[start : start + _COPY_CHUNK]] = out[src_dup[start : start + _COPY_CHUNK]]
        # inputs cut into pieces: token-weighted mean, renormalised
        for i, refs in plan.multi.items():
            piece_units = np.fromiter((r.unit for r in refs), dtype=np.int64, count=len(refs))
            weights = np.fromiter((r.tokens for r in refs), dtype=np.float64, count=len(refs))
            vecs = self.unit_vectors(piece_units).astype(np.float64)
            mean = (weights[:, None] * vecs).sum(axis=0) / weights.sum()
            norm = float(np.linalg.norm(mean))
            ok = bool(self.unit_ok[piece_units].all()) and np.isfinite(norm) and norm > 0
            out[i] = (mean / norm) if ok else mean
            invalid[i] = not ok
        empty = plan.empty
        if empty.any():
            out[empty] = np.nan if empty_inputs == "nan" else 0.0
        result_pieces = self._pieces(out) if pieces else None
        with self._lock:
            stats = EmbeddingStats(
                inputs=plan.n,
                unique=plan.n_units,
                cached=self.cached,
                embedded=plan.n_units - self.cached,
                requests=self.requests,
                tokens=self.tokens_sent,
                rate_limited=self.rate_limited,
                splits=self.splits,
                seconds=time.monotonic() - self.started,
                timeouts=self.timeouts,
                rebilled_tokens=self.rebilled_tokens,
                size_errors=self.size_errors,
            )
        return EmbeddingResult(
            vectors=out,
            empty=empty,
            invalid=invalid,
            long=list(plan.long),
            truncated=list(plan.truncated),
            pieces=result_pieces,
            stats=stats,
        )

    def _pieces(self, out: npt.NDArray[np.float32]) -> Pieces:
        plan = self.plan
        inputs: list[int] = []
        units: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        for i in range(plan.n):
            for ref in plan.pieces_of(i):
                inputs.append(i)
                units.append(ref.unit)
                starts.append(ref.start)
                ends.append(ref.end)
        unit_arr = np.asarray(units, dtype=np.int64)
        counts = self.exact_counts(unit_arr) if unit_arr.size else np.empty(0, dtype=np.int64)
        vectors = self.unit_vectors(unit_arr) if unit_arr.size else np.empty((0, out.shape[1]), np.float32)
        return Pieces(
            vectors=vectors,
            input_index=np.asarray(inputs, dtype=np.int64),
            start=np.asarray(starts, dtype=np.int64),
            end=np.asarray(ends, dtype=np.int64),
            tokens=counts,
        )

    def mark_failed(self, units: list[int]) -> None:
        """Give up on ``units`` (they are embedded another way): done, without a usable vector."""
        idx = np.asarray(units, dtype=np.int64)
        self.unit_done[idx] = True
        self.unit_ok[idx] = False

    def ensure_dim(self, dim: int) -> None:
        """Allocate the buffers for vectors of size ``dim`` if no vector has arrived yet."""
        self._ensure(dim)

    def first_input_of(self, unit: int) -> int:
        """An input index that uses ``unit`` (for error messages)."""
        if self.unit_in_out[unit]:
            return int(self.unit_row[unit])
        for i, refs in self.plan.multi.items():
            if any(r.unit == unit for r in refs):
                return i
        return -1  # pragma: no cover

