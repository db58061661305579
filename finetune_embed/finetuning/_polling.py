"""The I/O-free parts of following a job: statuses, the poll backoff, event de-duplication, progress.

Shared by :class:`~finetune_embed.finetuning.JobManager` and its async twin, and unit-tested on their own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import InvalidArgumentError

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "EventTracker",
    "JobProgress",
    "PollBackoff",
    "SleepClock",
    "await_sleep",
    "is_terminal",
    "next_poll_delay",
    "status_of",
]

#: Statuses after which a job never changes again.
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
#: Statuses of a job that may still change (``paused`` is not in the API's enum, but the server sends it).
ACTIVE_STATUSES = frozenset({"validating_files", "queued", "running", "paused"})


def status_of(obj: Any) -> str:
    """The ``status`` of a job (or file) as a plain string; any value the server sends is accepted."""
    status = getattr(obj, "status", None)
    if status is None and isinstance(obj, Mapping):
        status = obj.get("status")
    return str(status) if status is not None else "unknown"


def is_terminal(status: str) -> bool:
    """Whether a job in ``status`` will never change again. Unknown statuses count as still active."""
    return status in TERMINAL_STATUSES


@dataclass
class PollBackoff:
    """Delays between polls: ``initial``, then times ``factor`` each poll, capped at ``maximum``.

    ``reset()`` goes back to ``initial`` (called when the job's status changes, so a new phase is watched
    closely). The defaults poll after 5 s, 7.5 s, 11.3 s, ... and every 60 s from the eighth poll on.
    """

    initial: float = 5.0
    maximum: float = 60.0
    factor: float = 1.5
    _next: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial) and self.initial > 0):
            raise InvalidArgumentError(
                f"poll_interval must be a number > 0, got {self.initial!r}", argument="poll_interval"
            )
        if not (math.isfinite(self.maximum) and self.maximum >= self.initial):
            raise InvalidArgumentError(
                f"max_poll_interval must be >= poll_interval ({self.initial}), got {self.maximum!r}",
                argument="max_poll_interval",
            )
        if not self.factor >= 1:
            raise InvalidArgumentError(f"the backoff factor must be >= 1, got {self.factor!r}", argument="factor")
        self._next = self.initial

    def next_delay(self) -> float:
        """The delay before the next poll (and advance the schedule)."""
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return delay

    def reset(self) -> None:
        """Start again from ``initial``."""
        self._next = self.initial


class SleepClock:
    """Time spent waiting: the larger of the wall clock and the sum of the sleeps asked for.

    With a real ``sleep`` both agree; with a test's fake sleep (which returns at once) the sum still moves,
    so a timeout is reached after the same number of polls either way.
    """

    def __init__(self, monotonic: Any = None) -> None:
        import time

        self._monotonic = monotonic or time.monotonic
        self._start = self._monotonic()
        self._slept = 0.0

    def add_sleep(self, seconds: float) -> None:
        """Record a sleep of ``seconds``."""
        self._slept += max(0.0, seconds)

    def elapsed(self) -> float:
        """Seconds spent so far."""
        return max(self._monotonic() - self._start, self._slept)


def next_poll_delay(
    backoff: PollBackoff, clock: SleepClock, timeout: float | None, timed_out: Callable[[float], Exception]
) -> float:
    """The delay before the next poll: the backoff's, cut short so as not to wait past ``timeout`` seconds
    (``None``: no limit), and recorded on ``clock``. Raises ``timed_out(timeout)`` once they have passed."""
    delay = backoff.next_delay()
    if timeout is not None:
        remaining = timeout - clock.elapsed()
        if remaining <= 0:
            raise timed_out(timeout)
        delay = min(delay, remaining)
    clock.add_sleep(delay)
    return delay


async def await_sleep(sleep: Callable[[float], Any], seconds: float) -> None:
    """Call ``sleep(seconds)`` and await its result when it is awaitable (``sleep`` may be sync or async)."""
    result = sleep(seconds)
    if isinstance(result, Awaitable):
        await result


def _event_key(event: Any) -> str:
    event_id = getattr(event, "id", None)
    if event_id:
        return str(event_id)
    return f"{getattr(event, 'created_at', '')}|{getattr(event, 'message', '')}"


def _created(event: Any) -> float:
    value = getattr(event, "created_at", None)
    return float(value) if isinstance(value, int | float) else 0.0


class EventTracker:
    """Remembers which events were already seen, so that each event is reported once and in order.

    The events API lists events newest first, in pages. To collect what is new, page from the newest:
    :meth:`scan` each page, stop as soon as it reports that a seen event was met (or the pages end), then
    :meth:`commit` everything collected, which marks it seen and returns it oldest first.
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._oldest_first = False

    def __len__(self) -> int:
        return len(self._seen)

    def scan(self, page: Sequence[Any]) -> tuple[list[Any], bool]:
        """The unseen events of ``page`` (in the page's order) and whether paging can stop here.

        Paging stops at the first seen event on a newest-first page; a page in oldest-first order (some
        OpenAI-compatible servers) never stops the paging early, since new events come last there.
        """
        fresh = [event for event in page if _event_key(event) not in self._seen]
        if len(page) >= 2 and _created(page[0]) < _created(page[-1]):
            self._oldest_first = True
        met_seen = len(fresh) < len(page)
        return fresh, met_seen and not self._oldest_first

    def commit(self, collected: Iterable[Any]) -> list[Any]:
        """Mark ``collected`` (events in the API's order, newest first) seen; returns the new ones oldest first."""
        events = list(collected)
        out: list[Any] = []
        for event in events if self._oldest_first else reversed(events):
            key = _event_key(event)
            if key not in self._seen:
                self._seen.add(key)
                out.append(event)
        out.sort(key=_created)  # stable: events with the same timestamp keep their order
        return out


_STEP_MESSAGE = re.compile(r"(?i)step\s+(\d+)\s*/\s*(\d+)(?:.*?training loss\s*=\s*([-+0-9.eE]+|nan))?")
_VALID_LOSS = re.compile(r"(?i)validation loss\s*=\s*([-+0-9.eE]+|nan)")


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


@dataclass
class JobProgress:
    """What is known about a running job: status, step, total steps, latest losses (from metrics events)."""

    status: str = "unknown"
    step: int | None = None
    total_steps: int | None = None
    train_loss: float | None = None
    valid_loss: float | None = None

    def update_from_event(self, event: Any) -> None:
        """Take step and losses from a ``metrics`` event's ``data`` (or, failing that, its message)."""
        data = getattr(event, "data", None)
        if isinstance(data, Mapping) and ("step" in data or "train_loss" in data):
            step = _number(data.get("step"))
            total = _number(data.get("total_steps"))
            if step is not None:
                self.step = int(step)
            if total is not None:
                self.total_steps = int(total)
            train = _number(data.get("train_loss"))
            valid = _number(data.get("valid_loss"))
            if train is not None:
                self.train_loss = train
            if valid is not None:
                self.valid_loss = valid
            return
        message = getattr(event, "message", None)
        if not isinstance(message, str):
            return
        match = _STEP_MESSAGE.search(message)
        if match:
            self.step, self.total_steps = int(match.group(1)), int(match.group(2))
            if match.group(3):
                self.train_loss = float(match.group(3))
            valid_match = _VALID_LOSS.search(message)
            if valid_match:
                self.valid_loss = float(valid_match.group(1))

    def update_from_job(self, job: Any) -> None:
        """Take the status from a job object."""
        self.status = status_of(job)

    def describe(self) -> str:
        """One line, e.g. ``running, step 40/100, train loss 0.532``."""
        parts = [self.status]
        if self.step is not None:
            parts.append(f"step {self.step}" + (f"/{self.total_steps}" if self.total_steps else ""))
        if self.train_loss is not None:
            parts.append(f"train loss {self.train_loss:.4g}")
        if self.valid_loss is not None:
            parts.append(f"valid loss {self.valid_loss:.4g}")
        return ", ".join(parts)

    def postfix(self) -> dict[str, str]:
        """The fields for a progress bar's postfix."""
        fields = {"status": self.status}
        if self.train_loss is not None:
            fields["loss"] = f"{self.train_loss:.4g}"
        if self.valid_loss is not None:
            fields["valid_loss"] = f"{self.valid_loss:.4g}"
        return fields
