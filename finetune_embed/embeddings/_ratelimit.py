"""Pacing requests within the API's rate limits: adaptive concurrency plus request and token budgets.

The model is OpenAI's own: a limit of ``L`` per minute is a bucket of ``L`` that refills evenly, ``L / 60`` per
second, and starts full. Three sources feed the buckets:

* the user's ``rpm`` / ``tpm`` (optional): buckets of exactly that size;
* the ``x-ratelimit-limit-*`` / ``x-ratelimit-remaining-*`` headers of every response: the server's buckets,
  whose level is pulled down to what the server says remains (never up: requests we sent since then are
  already deducted locally);
* nothing at all (Azure and many compatible servers send ``-1`` or no headers): then only concurrency limits
  the rate, and it adapts to 429s.

Concurrency is additive-increase / multiplicative-decrease between 1 and ``max_concurrency``: a 429 halves it
and pauses every sender for the ``Retry-After`` the server asked; each success adds ``1 / concurrency``. Until
the first response arrives only one request is in flight, so the limits are known before any burst.

Each request reserves its exact token count before it is sent (and again before each retry), so as long as the
server counts tokens the same way, requests never outrun its bucket.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._client import RateLimits

__all__ = ["AsyncGate", "Bucket", "Gate", "RateState"]

INF = math.inf
_DEFAULT_429_PAUSE = 1.0
_MAX_SLEEP = 5.0  # re-check at least this often while waiting for budget
_MIN_SLEEP = 0.001  # never spin on waits below the clock's resolution
_INTERVAL_DECAY = 0.95  # without any budget known: each success shortens the learned spacing by 5 %


@dataclass
class Bucket:
    """A per-minute budget that refills evenly and starts full."""

    capacity: float
    level: float
    updated: float

    @classmethod
    def full(cls, capacity: float, now: float) -> Bucket:
        return cls(float(capacity), float(capacity), now)

    @property
    def rate(self) -> float:
        return self.capacity / 60.0

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        self.refill(now)
        amount = min(amount, self.capacity)
        short = amount - self.level
        return 0.0 if short <= 1e-6 else short / self.rate

    def take(self, amount: float) -> None:
        self.level -= min(amount, self.capacity)

    def give_back(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)

    def resize(self, capacity: float, now: float) -> None:
        self.refill(now)
        if capacity != self.capacity:
            self.level = min(capacity, self.level + (capacity - self.capacity))
            self.capacity = float(capacity)

    def observe(self, remaining: float, now: float) -> None:
        """The server says ``remaining`` is left: never believe more than that."""
        self.refill(now)
        self.level = min(self.level, float(remaining))


def _server_bucket(bucket: Bucket | None, limit: int, remaining: int | None, now: float) -> Bucket:
    """The server's bucket once a response said ``limit`` per minute, ``remaining`` left: a new one holding
    ``remaining`` (else full) the first time, later ``bucket`` resized with its level pulled down to ``remaining``."""
    if bucket is None:
        return Bucket(float(limit), float(remaining if remaining is not None else limit), now)
    bucket.resize(limit, now)
    if remaining is not None:
        bucket.observe(remaining, now)
    return bucket


class RateState:
    """The pure state machine behind :class:`Gate` / :class:`AsyncGate` (not thread-safe by itself)."""

    def __init__(self, *, max_concurrency: int, rpm: int | None = None, tpm: int | None = None, now: float) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 or None, got {value}")
        self.max_concurrency = max_concurrency
        self.concurrency = float(max_concurrency)
        self.in_flight = 0
        self.user_requests = Bucket.full(rpm, now) if rpm else None
        self.user_tokens = Bucket.full(tpm, now) if tpm else None
        self.server_requests: Bucket | None = None
        self.server_tokens: Bucket | None = None
        self.pause_until = 0.0
        self.probing = True  # one request in flight until the first answer
        self.rate_limited = 0
        # fallback when the server says nothing about its limits: a spacing between request starts learned from
        # the Retry-After of its 429s
        self.min_interval = 0.0
        self.last_start = -INF

    # --- what may be sent -----------------------------------------------------------------------------------

    def _buckets(self) -> tuple[list[Bucket], list[Bucket]]:
        req = [b for b in (self.user_requests, self.server_requests) if b is not None]
        tok = [b for b in (self.user_tokens, self.server_tokens) if b is not None]
        return req, tok

    def max_request_tokens(self) -> float:
        """The largest request (in tokens) that any known token budget can ever admit."""
        _, tok = self._buckets()
        return min((b.capacity for b in tok), default=INF)

    def slots(self) -> int:
        return 1 if self.probing else max(1, int(self.concurrency))

    def try_acquire(self, tokens: int, now: float) -> float:
        """Reserve one request of ``tokens`` tokens: 0.0 if granted, else how long to wait (``INF``: until a
        request finishes)."""
        if now < self.pause_until:
            return self.pause_until - now
        if self.in_flight >= self.slots():
            return INF
        req, tok = self._buckets()
        wait = max([b.wait_for(1, now) for b in req] + [b.wait_for(tokens, now) for b in tok], default=0.0)
        if self.min_interval > 0:
            wait = max(wait, self.last_start + self.min_interval - now)
        if wait > 1e-6:
            return wait
        for b in req:
            b.take(1)
        for b in tok:
            b.take(tokens)
        self.in_flight += 1
        self.last_start = now
        return 0.0

    # --- what happened --------------------------------------------------------------------------------------

    def learn(self, limits: RateLimits | None, now: float) -> None:
        if limits is None or not limits.known:
            return
        if limits.limit_requests:
            self.server_requests = _server_bucket(
                self.server_requests, limits.limit_requests, limits.remaining_requests, now
            )
        if limits.limit_tokens:
            self.server_tokens = _server_bucket(self.server_tokens, limits.limit_tokens, limits.remaining_tokens, now)

    def on_success(self, limits: RateLimits | None, now: float) -> None:
        """A request came back with a 2xx (its headers in ``limits``)."""
        self.in_flight = max(0, self.in_flight - 1)
        self.probing = False
        self.learn(limits, now)
        self.min_interval *= _INTERVAL_DECAY
        if self.min_interval < 1e-3:
            self.min_interval = 0.0
        if self.concurrency < self.max_concurrency:
            self.concurrency = min(float(self.max_concurrency), self.concurrency + 1.0 / self.concurrency)

    def on_rate_limited(
        self, limits: RateLimits | None, retry_after: float | None, tokens: int, now: float
    ) -> None:
        """A 429 (not ``insufficient_quota``): back off everyone and give the tokens back (the server did not
        count them)."""
        self.in_flight = max(0, self.in_flight - 1)
        self.probing = False
        self.rate_limited += 1
        req, tok = self._buckets()
        for b in req:
            b.give_back(1)
        for b in tok:
            b.give_back(tokens)
        self.learn(limits, now)
        self.concurrency = max(1.0, self.concurrency / 2.0)
        wait = retry_after if retry_after is not None else _DEFAULT_429_PAUSE
        self.pause_until = max(self.pause_until, now + wait)
        if not req and not tok:
            # nothing known about the budget: space requests by the wait the server asked for
            self.min_interval = max(self.min_interval, wait)

    def on_failure(self, now: float) -> None:
        """Any other failure (5xx, timeout, 4xx): the request no longer occupies a slot."""
        self.in_flight = max(0, self.in_flight - 1)
        self.probing = False


class Aborted(Exception):
    """Raised inside a waiting sender when the run is being stopped (another batch failed)."""


class Gate:
    """Thread-safe waiting room in front of :class:`RateState` for the sync embedder."""

    def __init__(
        self,
        state: RateState,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.state = state
        self.clock = clock
        self.sleep = sleep
        self._cond = threading.Condition()
        self.stopped = False

    def acquire(self, tokens: int) -> None:
        """Block until a request of ``tokens`` tokens may be sent; raises :class:`Aborted` after :meth:`stop`."""
        while True:
            with self._cond:
                if self.stopped:
                    raise Aborted
                wait = self.state.try_acquire(tokens, self.clock())
                if wait == 0.0:
                    return
                if wait == INF:
                    self._cond.wait(timeout=_MAX_SLEEP)
                    continue
            self.sleep(min(max(wait, _MIN_SLEEP), _MAX_SLEEP))

    def _notify(self, fn: Callable[..., None], *args: Any) -> None:
        with self._cond:
            fn(*args, self.clock())
            self._cond.notify_all()

    def success(self, limits: RateLimits | None) -> None:
        self._notify(self.state.on_success, limits)

    def rate_limited(self, limits: RateLimits | None, retry_after: float | None, tokens: int) -> None:
        self._notify(self.state.on_rate_limited, limits, retry_after, tokens)

    def failure(self) -> None:
        self._notify(self.state.on_failure)

    def learn(self, limits: RateLimits | None) -> None:
        self._notify(self.state.learn, limits)

    def max_request_tokens(self) -> float:
        with self._cond:
            return self.state.max_request_tokens()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()


class AsyncGate:
    """The asyncio twin of :class:`Gate` (one event loop; no locks needed)."""

    def __init__(
        self,
        state: RateState,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self._sleep = sleep
        self._changed: asyncio.Event | None = None
        self.stopped = False

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    async def _sleep_for(self, seconds: float) -> None:
        if self._sleep is None:
            await asyncio.sleep(seconds)
            return
        result = self._sleep(seconds)
        if inspect.isawaitable(result):
            await result
        else:
            await asyncio.sleep(0)

    async def acquire(self, tokens: int) -> None:
        """Wait until a request of ``tokens`` tokens may be sent; raises :class:`Aborted` after :meth:`stop`."""
        while True:
            if self.stopped:
                raise Aborted
            wait = self.state.try_acquire(tokens, self.clock())
            if wait == 0.0:
                return
            if wait == INF:
                event = self._event()
                event.clear()
                try:
                    await asyncio.wait_for(event.wait(), timeout=_MAX_SLEEP)
                except TimeoutError:
                    pass
                continue
            await self._sleep_for(min(max(wait, _MIN_SLEEP), _MAX_SLEEP))

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def success(self, limits: RateLimits | None) -> None:
        self.state.on_success(limits, self.clock())
        self._notify()

    def rate_limited(self, limits: RateLimits | None, retry_after: float | None, tokens: int) -> None:
        self.state.on_rate_limited(limits, retry_after, tokens, self.clock())
        self._notify()

    def failure(self) -> None:
        self.state.on_failure(self.clock())
        self._notify()

    def learn(self, limits: RateLimits | None) -> None:
        self.state.learn(limits, self.clock())
        self._notify()

    def max_request_tokens(self) -> float:
        return self.state.max_request_tokens()

    def stop(self) -> None:
        self.stopped = True
        self._notify()
