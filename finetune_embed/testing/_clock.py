"""The fake's clock: manual (advanced explicitly by tests) or real time, optionally scaled."""

from __future__ import annotations

import threading
import time

from .._exceptions import InvalidArgumentError

__all__ = ["DEFAULT_START", "FakeClock"]

# 2026-01-01T00:00:00Z: a fixed, plausible "now" so ids, timestamps and expiries are reproducible
DEFAULT_START = 1_767_225_600.0


class FakeClock:
    """Seconds since the Unix epoch, as the fake service sees them.

    A manual clock (the default) only moves when :meth:`advance` or :meth:`sleep` is called, so tests decide
    exactly when rate-limit windows refill and when fine-tuning jobs and batches make progress. A real-time
    clock (:meth:`real`) runs with the wall clock, ``scale`` times faster; :meth:`advance` still jumps it
    forward. Thread-safe.

    >>> clock = FakeClock(start=1000.0)
    >>> clock.advance(2.5)
    1002.5
    >>> clock.now()
    1002.5
    """

    def __init__(self, start: float = DEFAULT_START, *, realtime: bool = False, scale: float = 1.0) -> None:
        if scale <= 0:
            raise InvalidArgumentError(f"FakeClock scale must be > 0, got {scale!r}", argument="scale")
        self._lock = threading.Lock()
        self._base = float(start)
        self._realtime = realtime
        self._scale = float(scale)
        self._anchor = time.monotonic()

    @classmethod
    def real(cls, *, scale: float = 1.0, start: float | None = None) -> FakeClock:
        """A clock that runs in real time, ``scale`` fake seconds per real second (``start`` defaults to now)."""
        return cls(time.time() if start is None else start, realtime=True, scale=scale)

    @property
    def realtime(self) -> bool:
        """Whether the clock runs by itself."""
        return self._realtime

    @property
    def scale(self) -> float:
        """Fake seconds per real second (real-time clocks)."""
        return self._scale

    def _now_locked(self) -> float:
        if not self._realtime:
            return self._base
        return self._base + (time.monotonic() - self._anchor) * self._scale

    def now(self) -> float:
        """The current fake time (seconds since the epoch)."""
        with self._lock:
            return self._now_locked()

    def advance(self, seconds: float) -> float:
        """Jump forward by ``seconds`` (≥ 0); returns the new time."""
        if seconds < 0:
            raise InvalidArgumentError(f"cannot move the clock backwards ({seconds!r} s)", argument="seconds")
        with self._lock:
            self._base += seconds
            return self._now_locked()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of fake time: a manual clock advances at once, a real-time one really sleeps
        ``seconds / scale``. Pass it as ``RetryPolicy(sleep=fake.sleep)`` so retries never wait in tests."""
        if seconds <= 0:
            return
        if self._realtime:
            time.sleep(seconds / self._scale)
        else:
            self.advance(seconds)

    def advance_to(self, when: float) -> float:
        """Move a manual clock forward to ``when`` if it is not there yet; returns the new time."""
        with self._lock:
            now = self._now_locked()
            if when > now:
                self._base += when - now
            return self._now_locked()

    def sleep_until(self, when: float) -> None:
        """Wait until fake time ``when``: a manual clock jumps there (never back: concurrent waits overlap, as
        they would in real time), a real-time one sleeps the remaining ``(when - now) / scale`` seconds."""
        if self._realtime:
            remaining = when - self.now()
            if remaining > 0:
                time.sleep(remaining / self._scale)
        else:
            self.advance_to(when)

    def set_realtime(self, realtime: bool, *, scale: float | None = None) -> None:
        """Switch between manual and real-time mode, continuing from the current time."""
        with self._lock:
            now = self._now_locked()
            self._base = now
            self._anchor = time.monotonic()
            self._realtime = realtime
            if scale is not None:
                if scale <= 0:
                    raise InvalidArgumentError(f"FakeClock scale must be > 0, got {scale!r}", argument="scale")
                self._scale = float(scale)

    def __repr__(self) -> str:
        mode = f"realtime, scale={self._scale:g}" if self._realtime else "manual"
        return f"FakeClock(now={self.now():.3f}, {mode})"
