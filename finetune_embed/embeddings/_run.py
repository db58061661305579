"""One embedding call's moving parts, shared by the sync and async embedders (no I/O here).

* :class:`Feed` - the work queue: requests to send again first (splits, retries), then the counted texts, packed
  into a request only when a sender is ready for one, so each request is sized with what is known *then* (the
  adaptive size, the token budget, what the window has room for).
* :class:`RunContext` - the call's bookkeeping: timeouts and the tokens they may have billed twice (against a
  budget), inputs a server found too long, consecutive 429s, errors.
* :class:`Feedback` - waits and retries of a second or more, in the progress bar and at INFO level.
* The outcomes a request attempt can end in besides success, as exceptions the retry policy does not retry:
  :class:`RateLimited`, :class:`TimedOut`, :class:`SizeRefused`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .._exceptions import EmbeddingTimeoutError
from .._logging import get_logger
from ..batching import pack_by_tokens
from ._sizing import RequestSizer, SizeLimit, parse_size_error

__all__ = [
    "NOT_YET",
    "Feed",
    "Feedback",
    "RateLimited",
    "RunContext",
    "SizeRefused",
    "TimedOut",
    "classify_status_error",
    "is_timeout",
]

logger = get_logger("embeddings")

REBILL_FLOOR = 100_000  #: the re-billing budget is never below this many tokens ...
REBILL_SHARE = 0.10  #: ... and otherwise this share of the call's tokens
MAX_CONSECUTIVE_429 = 60  #: rounds of 429s without a single success before giving up
MAX_RESENDS = 2  #: times one text may be asked again after a response left it out
_FEEDBACK_MIN = 1.0  # seconds: shorter waits are not worth a line

Batch = npt.NDArray[np.int64]


class _NotYet:
    def __repr__(self) -> str:
        return "NOT_YET"


#: :meth:`Feed.take` has nothing to give now, but more may come
NOT_YET: Any = _NotYet()


# --- outcomes of an attempt ---------------------------------------------------------------------------------


class RateLimited(Exception):
    """A 429 (not ``insufficient_quota``, not "request too large"): the batch goes back to the queue and waits
    with every other sender."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class TimedOut(Exception):
    """The client gave up waiting for the answer (the server may still compute and bill it)."""


class SizeRefused(Exception):
    """The server refused the request's size: too many inputs (413 / 422), or one input too long for it."""

    def __init__(self, limit: SizeLimit, message: str, status: int | None) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message
        self.status = status


def is_timeout(exc: BaseException) -> bool:
    """An SDK or httpx timeout (before or while the body is read)."""
    names = {c.__name__ for c in type(exc).__mro__}
    module = type(exc).__module__.split(".")[0]
    if module == "openai":
        return "APITimeoutError" in names
    return module in ("httpx", "httpx2", "httpcore") and ("TimeoutException" in names or "TimeoutError" in names)


def error_text(exc: BaseException) -> str:
    """What the server said in an SDK status error, whatever the shape of its body (the SDK's own message only
    keeps ``error.message``; text-embeddings-inference sends ``{"error": "<text>"}``, vLLM a top-level
    ``message``)."""
    body = getattr(exc, "body", None)
    if isinstance(body, str) and body:
        return body
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    return str(getattr(exc, "message", "") or exc)


def classify_status_error(exc: BaseException) -> SizeRefused | None:
    """A :class:`SizeRefused` for an SDK status error that is about size (see
    :func:`~finetune_embed.embeddings._sizing.parse_size_error`), else ``None``."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int) or status == 429:
        return None
    message = error_text(exc)
    limit = parse_size_error(status, message)
    if limit is None:
        return None
    return SizeRefused(limit, message, status)


# --- the queue ------------------------------------------------------------------------------------------------


class Feed:
    """The work queue of one call (see the module docstring). Thread-safe; ``on_change`` is called (with the
    lock held) whenever something a waiting sender cares about changed."""

    def __init__(self, unit_tokens: npt.NDArray[np.int64], on_change: Callable[[], None] | None = None) -> None:
        self.unit_tokens = unit_tokens
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.on_change = on_change
        self.front: deque[tuple[Batch, bool]] = deque()  # (batch, may be merged with others)
        self.pending: deque[int] = deque()
        self.pending_tokens = 0
        self.producing = True
        self.outstanding = 0  # batches taken and not settled yet

    def _notify(self) -> None:
        self.changed.notify_all()
        if self.on_change is not None:
            self.on_change()

    def add(self, units: Batch) -> None:
        """Counted units, in order, ready to be packed."""
        if not units.size:
            return
        with self.lock:
            self.pending.extend(units.tolist())
            self.pending_tokens += int(self.unit_tokens[units].sum())
            self._notify()

    def push_front(self, batches: list[Batch], *, mergeable: bool = True) -> None:
        """Requests to send before anything else (their order kept). ``mergeable=False`` keeps each one a request
        of its own (halves of a request that timed out or held an input the server refused)."""
        with self.lock:
            for b in reversed(batches):
                if b.size:
                    self.front.appendleft((b, mergeable))
            self._notify()

    def done_producing(self) -> None:
        with self.lock:
            self.producing = False
            self._notify()

    def settle(self) -> None:
        """A batch from :meth:`take` is dealt with (sent, or split / put back with :meth:`push_front`)."""
        with self.lock:
            self.outstanding = max(0, self.outstanding - 1)
            self._notify()

    def wake(self) -> None:
        with self.lock:
            self._notify()

    def _cut(self, batch: Batch, max_inputs: int, max_tokens: int) -> list[Batch]:
        counts = self.unit_tokens[batch]
        if batch.size <= max_inputs and int(counts.sum()) <= max_tokens:
            return [batch]
        capped = np.minimum(counts, max_tokens).tolist()
        return [batch[r.start : r.stop] for r in pack_by_tokens(capped, max_inputs=max_inputs, max_tokens=max_tokens)]

    def take(self, max_inputs: int, max_tokens: int) -> Batch | Any | None:
        """The next request within the limits; :data:`NOT_YET` when more may come; ``None`` when all is done."""
        with self.lock:
            if self.front:
                head, mergeable = self.front.popleft()
                pieces = self._cut(head, max_inputs, max_tokens)
                self.front.extendleft((p, mergeable) for p in reversed(pieces[1:]))
                self.outstanding += 1
                if len(pieces) > 1 or not mergeable:
                    return pieces[0]
                return self._top_up(pieces[0], max_inputs, max_tokens)
            pending = self.pending
            if pending:
                if self.producing and len(pending) < max_inputs and self.pending_tokens < max_tokens:
                    return NOT_YET  # wait for a full request
                tokens = self.unit_tokens
                units: list[int] = []
                total = 0
                while pending and len(units) < max_inputs:
                    t = int(tokens[pending[0]])
                    if units and total + t > max_tokens:
                        break
                    units.append(pending.popleft())
                    total += t
                    if total >= max_tokens:
                        break
                self.pending_tokens -= total
                self.outstanding += 1
                return np.asarray(units, dtype=np.int64)
            if self.producing or self.outstanding:
                return NOT_YET
            return None

    def _top_up(self, batch: Batch, max_inputs: int, max_tokens: int) -> Batch:
        """Fill a request taken from the front with more work (other mergeable requests, then counted texts), so
        that leftovers of cut requests do not each cost a request of their own."""
        tokens = self.unit_tokens
        parts = [batch]
        count = int(batch.size)
        total = int(tokens[batch].sum())
        while self.front and self.front[0][1]:
            nxt = self.front[0][0]
            size = int(nxt.size)
            t = int(tokens[nxt].sum())
            if count + size > max_inputs or total + t > max_tokens:
                break
            self.front.popleft()
            parts.append(nxt)
            count += size
            total += t
        if not self.front:
            extra: list[int] = []
            pending = self.pending
            while pending and count < max_inputs:
                t = int(tokens[pending[0]])
                if total + t > max_tokens:
                    break
                extra.append(pending.popleft())
                count += 1
                total += t
                self.pending_tokens -= t
            if extra:
                parts.append(np.asarray(extra, dtype=np.int64))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def wait_take(self, limits: Callable[[], tuple[int, int]], stopped: Callable[[], bool]) -> Batch | None:
        """:meth:`take`, blocking while it says :data:`NOT_YET` (``None`` also when ``stopped()``)."""
        while True:
            if stopped():
                return None
            max_inputs, max_tokens = limits()
            batch = self.take(max_inputs, max_tokens)
            if batch is not NOT_YET:
                result: Batch | None = batch
                return result
            with self.lock:
                if self.producing or self.outstanding:
                    self.changed.wait(0.25)


# --- feedback -------------------------------------------------------------------------------------------------


class Feedback:
    """Tells the user about waits and retries of :data:`_FEEDBACK_MIN` seconds or more: one INFO line per wait
    (not per re-check) and the progress bar's status."""

    def __init__(self, set_status: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.set_status = set_status
        self.clock = clock
        self._lock = threading.Lock()
        self._last: tuple[str, float] = ("", -math.inf)

    def _say(self, text: str, seconds: float, key: str) -> None:
        now = self.clock()
        with self._lock:
            last_key, until = self._last
            fresh = key != last_key or now >= until
            self._last = (key, now + seconds)
        if fresh:
            logger.info("Embedding: %s", text)
        self.set_status(text)

    def wait(self, seconds: float, reason: str) -> None:
        """A sender waits ``seconds`` for ``reason`` (rate limit, budget, spacing)."""
        if seconds >= _FEEDBACK_MIN:
            self._say(f"{reason}, waiting {seconds:.0f} s", seconds, reason)

    def retrying(self, seconds: float, error: BaseException | None, description: str) -> None:
        """The retry policy sleeps ``seconds`` after ``error``."""
        what = "the server could not be reached" if _is_connection(error) else (
            f"{type(error).__name__}" if error is not None else "the request failed"
        )
        if seconds >= _FEEDBACK_MIN or _is_connection(error):
            self._say(f"{what}; retrying {description} in {seconds:.0f} s", seconds, f"retry:{what}")

    def note(self, text: str) -> None:
        """Something worth a line that is not a wait (a timeout, a size the server refused)."""
        logger.info("Embedding: %s", text)
        self.set_status(text)

    def clear(self) -> None:
        self.set_status("")


def _is_connection(error: BaseException | None) -> bool:
    from .._exceptions import APIConnectionError, APITimeoutError

    return isinstance(error, APIConnectionError) and not isinstance(error, APITimeoutError)


# --- the call's bookkeeping -----------------------------------------------------------------------------------


@dataclass
class RunContext:
    """What one call tracks besides the vectors (see the module docstring)."""

    sizer: RequestSizer
    feedback: Feedback
    unit_tokens: npt.NDArray[np.int64]
    base_timeout: float | None
    max_timeout: float | None
    max_rebilled_tokens: int | None = None
    #: exact tokens of the call's texts known so far (``None``: ``unit_tokens`` are all exact)
    exact_total: Callable[[], int] | None = None
    rebilled_tokens: int = 0
    timeouts: int = 0
    size_errors: int = 0
    consecutive_429: int = 0
    sent_tokens: int = 0
    unit_timeout: dict[int, float] = field(default_factory=dict)
    #: how often each text a response left out was asked again
    resends: dict[int, int] = field(default_factory=dict)
    #: units a server refused as too long for it, with its message
    too_long: dict[int, SizeRefused] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_resends(self, missing: Batch, first_input_of: Callable[[int], int]) -> None:
        """Count how often each left-out text was asked again; give up past :data:`MAX_RESENDS`."""
        from .._exceptions import EmbeddingResponseError

        with self.lock:
            for u in missing.tolist():
                self.resends[u] = self.resends.get(u, 0) + 1
                if self.resends[u] > MAX_RESENDS:
                    raise EmbeddingResponseError(
                        f"the server left input {first_input_of(u)} out of its response {self.resends[u]} times; "
                        "giving up (the other vectors are cached)"
                    )
        logger.warning("A response left out %d of its vectors; asking for them again", missing.size)

    def rebill_budget(self) -> int:
        """Tokens that may be billed twice before the call gives up."""
        if self.max_rebilled_tokens is not None:
            return self.max_rebilled_tokens
        if self.exact_total is not None:
            total = self.exact_total()
        else:
            total = int(self.unit_tokens[self.unit_tokens > 0].sum())
        return max(REBILL_FLOOR, int(REBILL_SHARE * total))

    def timeout_for(self, batch: Batch) -> float | None:
        """The read timeout for ``batch``: the client's, or a longer one for a single input that timed out."""
        if batch.size == 1:
            return self.unit_timeout.get(int(batch[0]), self.base_timeout)
        return self.base_timeout

    def on_timeout(self, batch: Batch, tokens: int, timeout: float | None, billed: int | None = None) -> list[Batch]:
        """Record a timed-out request of ``tokens`` (as packed; ``billed``: its exact count, when that differs);
        returns what to send instead (its halves, or the single input again with a doubled timeout), or raises
        :class:`~finetune_embed.EmbeddingTimeoutError` once the re-billing budget or the longest timeout is used
        up."""
        with self.lock:
            self.timeouts += 1
            self.rebilled_tokens += tokens if billed is None else billed
            rebilled = self.rebilled_tokens
            sent = self.sent_tokens
        self.sizer.on_timeout(int(batch.size), tokens)
        budget = self.rebill_budget()
        where = f"after {timeout:g} s" if timeout else ""
        if rebilled > budget:
            raise EmbeddingTimeoutError(
                f"Embedding requests kept timing out {where} although they were made smaller: up to {rebilled:,} "
                f"tokens may have been billed twice, over the budget of {budget:,} (max_rebilled_tokens). Raise the "
                "client's timeout, lower max_batch_inputs, or check the server; everything that arrived is cached.",
                rebilled_tokens=rebilled,
                sent_tokens=sent,
            )
        if batch.size > 1:
            half = batch.size // 2
            self.feedback.note(
                f"a request of {batch.size} inputs timed out {where}; sending it again as two of {half} and "
                f"{batch.size - half}"
            )
            return [batch[:half], batch[half:]]
        unit = int(batch[0])
        current = self.unit_timeout.get(unit, self.base_timeout)
        if current is None or self.max_timeout is None or current >= self.max_timeout:
            raise EmbeddingTimeoutError(
                f"One input kept timing out, the last time {where} (the longest timeout allowed, from the retry "
                f"policy's max_elapsed); up to {rebilled:,} tokens may have been billed twice. The server is too "
                "slow for it: raise the client's timeout or check the server.",
                rebilled_tokens=rebilled,
                sent_tokens=sent,
            )
        longer = min(self.max_timeout, current * 2.0)
        self.unit_timeout[unit] = longer
        self.feedback.note(f"one input timed out {where}; sending it again with a {longer:g} s timeout")
        return [batch]
