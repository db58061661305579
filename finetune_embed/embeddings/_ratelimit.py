"""Pacing requests within the API's rate limits: adaptive concurrency plus sliding-window request and token budgets.

**The budget model.** A limit of ``L`` per minute is kept as a sliding window: what was sent in the last
:data:`WINDOW` seconds (a minute plus a small margin for network delays) never exceeds ``L``. A schedule that
respects a sliding window also respects a token bucket of the same size (OpenAI's documented model: ``L`` that
refills evenly and starts full), and both reach the same long-run rate, so one model is safe for both kinds of
server. Once a server's ``x-ratelimit-reset-*`` header shows a bucket (full again in ``used / rate`` seconds rather
than a minute after the last request), that budget is paced as the bucket, which lets requests through sooner
after a burst. What was sent is logged per (client, model) in a :class:`Quota`, which lives as long as the
client: a second call knows what the first one spent.

**Where the limits come from**, all of them optional:

* the user's ``rpm`` / ``tpm``;
* the ``x-ratelimit-limit-*`` headers of every response, and the ``Limit N, Used U`` of 429 messages (for servers
  that send no headers, such as Azure and many proxies);
* nothing at all: then only concurrency limits the rate, and it adapts to 429s.

**Other consumers** of the same key show up as a server that says less remains than our own log explains
(``x-ratelimit-remaining-*`` or a 429's ``Used``). The difference is logged as used by someone else at that
moment, so the pacing makes room for it. Headers are only used to learn limits, buckets and other consumers, never
to wait longer than our log says, so pacing with headers is never slower than without.

**Concurrency** is additive-increase / multiplicative-decrease between 1 and ``max_concurrency``: a 429 halves it
and pauses every sender for the ``Retry-After`` the server asked; each success adds ``1 / concurrency``. Until the
first response on a client arrives only one request is in flight, so the limits are known before any burst.

**Waiting** is done by one sender at a time (the others wait for it to wake up), so a simulated clock in tests
advances exactly as a real one would.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .._client import RateLimits
from .._exceptions import InvalidArgumentError

__all__ = ["AsyncGate", "Gate", "Quota", "RateState", "Window"]

INF = math.inf
WINDOW = 61.0  #: seconds a request counts against a per-minute limit here (60 s plus a 1 s margin)
_DEFAULT_429_PAUSE = 1.0
_MAX_SLEEP = 5.0  # re-check at least this often while waiting for budget
_MIN_SLEEP = 0.001  # never spin on waits below the clock's resolution
_INTERVAL_DECAY = 0.95  # without any budget known: each success shortens the learned spacing by 5 %
_EPS = 1e-6
_HISTORY = 120.0  # seconds an entry is kept after it left the window
_NETWORK_MARGIN = 1.0  # seconds between our send and the server's count that we allow for
_BUCKET_MARGIN = 0.005  # share of a bucket's capacity kept free (a 0.3 s refill at most)

WaitCallback = Callable[[float, str], None]


class Window:
    """A log of amounts sent, for a sliding-window budget over :data:`WINDOW` seconds. Entries that left the
    window are kept a little longer (:data:`_HISTORY` s) to compare with what a slow response says."""

    def __init__(self, span: float = WINDOW) -> None:
        self.span = span
        self._live: deque[list[float]] = deque()  # [time, amount], inside the window
        self._old: deque[list[float]] = deque()  # left the window, kept for history
        self._total = 0.0

    def _prune(self, now: float) -> None:
        cutoff = now - self.span
        live = self._live
        while live and live[0][0] <= cutoff:
            entry = live.popleft()
            self._total -= entry[1]
            self._old.append(entry)
        if not live:
            self._total = 0.0
        old = self._old
        while old and old[0][0] <= now - self.span - _HISTORY:
            old.popleft()

    def used(self, now: float, *, since: float | None = None) -> float:
        """What was sent in the window ending ``now``, or, with ``since``, in ``(since, now]``."""
        self._prune(now)
        total = max(0.0, self._total)
        if since is None:
            return total
        if since > now - self.span:
            return sum(a for t, a in self._live if t > since)
        return total + sum(a for t, a in self._old if t > since)

    def between(self, lo: float, hi: float) -> float:
        """What was sent at times in ``(lo, hi]`` (as far back as the history goes)."""
        return sum(a for t, a in self._old if lo < t <= hi) + sum(a for t, a in self._live if lo < t <= hi)

    def around(self, lo: float, entry: list[float]) -> tuple[float, float]:
        """What was sent after time ``lo`` up to and including ``entry``, and what was sent after ``entry``
        (by order in the log, so requests sent at the same instant are told apart)."""
        before = after = 0.0
        seen = False
        for log in (self._old, self._live):
            for e in log:
                if seen:
                    after += e[1]
                elif e[0] > lo:
                    before += e[1]
                if e is entry:
                    seen = True
        if not seen:  # the entry is gone from the history: fall back to times
            return self.between(lo, entry[0]), self.between(entry[0], math.inf)
        return before, after

    def wait_for(self, amount: float, now: float, capacity: float) -> float:
        """Seconds until ``amount`` fits under ``capacity`` (0.0: now)."""
        self._prune(now)
        amount = min(amount, capacity)
        need = self._total + amount - capacity
        if need <= _EPS:
            return 0.0
        for t, a in self._live:
            need -= a
            if need <= _EPS:
                return max(0.0, t + self.span - now)
        return self.span  # pragma: no cover - the amount alone is at most the capacity

    def take(self, amount: float, now: float) -> list[float]:
        """Log ``amount`` sent at ``now``; returns the entry (for :meth:`give_back`)."""
        self._prune(now)
        entry = [now, float(amount)]
        if self._live and self._live[-1][0] > now:  # keep the log ordered
            entry[0] = self._live[-1][0]
        self._live.append(entry)
        self._total += amount
        return entry

    def give_back(self, entry: list[float]) -> None:
        """The server did not count this request after all (a 429)."""
        if entry[1]:
            if any(e is entry for e in self._live):
                self._total -= entry[1]
            entry[1] = 0.0


class Budget:
    """Our log of one kind (requests or tokens). Paced as a sliding window, until the server's answers show a
    token bucket (more remains than a window would leave: it refills as it goes); then paced as that bucket,
    which lets requests through sooner after a burst."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.window = Window()
        self.bucket_capacity: float | None = None  # set once the server is known to be a bucket
        self.level = 0.0
        self.updated = 0.0

    @property
    def is_bucket(self) -> bool:
        return self.bucket_capacity is not None

    def _refill(self, now: float) -> None:
        cap = self.bucket_capacity
        if cap is not None and now > self.updated:
            self.level = min(cap, self.level + (now - self.updated) * cap / 60.0)
            self.updated = now

    def take(self, amount: float, now: float) -> list[float]:
        entry = self.window.take(amount, now)
        if self.is_bucket:
            self._refill(now)
            self.level -= amount
        return entry

    def give_back(self, entry: list[float], now: float) -> None:
        amount = entry[1]
        self.window.give_back(entry)
        if self.is_bucket and self.bucket_capacity is not None and amount:
            self._refill(now)
            self.level = min(self.bucket_capacity, self.level + amount)

    def used(self, now: float, capacity: float) -> float:
        """What counts against ``capacity`` now."""
        cap = self.bucket_capacity
        if cap is not None and capacity >= cap - _EPS:
            self._refill(now)
            return max(0.0, cap - self.level)
        return self.window.used(now)

    def wait_for(self, amount: float, now: float, capacity: float) -> float:
        cap = self.bucket_capacity
        if cap is not None and capacity >= cap - _EPS:  # the server's bucket is the binding limit
            self._refill(now)
            short = min(amount + _BUCKET_MARGIN * cap, cap) - self.level  # a little slack for rounding and delays
            return 0.0 if short <= _EPS else short / (cap / 60.0) + 0.01
        return self.window.wait_for(amount, now, capacity)

    def observe(
        self,
        limit: float,
        remaining: float,
        now: float,
        sent_at: float,
        *,
        reset: float | None = None,
        entry: list[float] | None = None,
    ) -> None:
        """The server said ``remaining`` of ``limit`` (full again in ``reset`` seconds) when it took the request sent
        at ``sent_at`` (its ``entry`` in our log, when known)."""
        window = self.window
        if entry is not None:  # what we sent after it
            _, ours_since = window.around(sent_at - 60.0, entry)
        else:
            ours_since = window.between(sent_at + _EPS, now)
        tolerance = 1.0 if self.kind == "requests" else max(1.0, 0.002 * limit)
        used = limit - remaining
        refills = (  # full again in used / rate, not a whole minute after the last request: a bucket
            reset is not None and 0 < used < 0.98 * limit and reset <= 60.0 * used / limit + 1.0
        )
        # (what remains is no proof: concurrent requests reach the server in another order than our log's)
        if not self.is_bucket and refills:
            # more is left than a minute's window would leave: a bucket that refills as it goes
            self.bucket_capacity = float(limit)
            self.level = min(float(limit), remaining + (now - sent_at) * limit / 60.0) - ours_since
            self.updated = now
            return
        if self.is_bucket:
            self.bucket_capacity = float(limit)
            self._refill(now)
            told = min(float(limit), remaining + (now - sent_at) * limit / 60.0) - ours_since
            if told < self.level - tolerance:  # someone else spends from the same budget
                self.level = told
            return
        server_used = float(limit) - float(remaining)
        ours = window.between(sent_at - 60.0 - _NETWORK_MARGIN, now)  # all we could have had in its window
        deficit = server_used - ours
        if deficit > tolerance:  # someone else spends from the same budget
            window.take(deficit, now)


class Quota:
    """What is known about one (client, model)'s rate limits, shared by every call on that client."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests = Budget("requests")
        self.tokens = Budget("tokens")
        self.limit_requests: int | None = None
        self.limit_tokens: int | None = None
        self.answered = False  # a response has come back (its headers, if any, were read)

    def learn(
        self,
        limits: RateLimits | None,
        now: float,
        *,
        sent_at: float | None = None,
        entries: tuple[list[float], list[float]] | None = None,
    ) -> None:
        """Take what a response (or a 429) says: its limits, and what it says remains, compared with our own log
        (``entries``: the request's own entries in it). Callers hold :attr:`lock`."""
        if limits is None or not limits.known:
            return
        at = now if sent_at is None else sent_at
        for i, kind in enumerate(("requests", "tokens")):
            limit = getattr(limits, f"limit_{kind}")
            if not limit:
                continue
            setattr(self, f"limit_{kind}", int(limit))
            remaining = getattr(limits, f"remaining_{kind}")
            if remaining is None:
                continue
            budget: Budget = getattr(self, kind)
            budget.observe(
                float(limit),
                float(remaining),
                now,
                at,
                reset=getattr(limits, f"reset_{kind}"),
                entry=entries[i] if entries is not None else None,
            )


class RateState:
    """The pure state machine behind :class:`Gate` / :class:`AsyncGate` for one call (not thread-safe by itself;
    the gate holds the quota's lock around every method)."""

    def __init__(
        self,
        *,
        max_concurrency: int,
        rpm: float | None = None,
        tpm: float | None = None,
        now: float,
        quota: Quota | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise InvalidArgumentError(
                f"max_concurrency must be at least 1, got {max_concurrency}", argument="max_concurrency"
            )
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value < 1:
                raise InvalidArgumentError(f"{name} must be at least 1 or None, got {value}", argument=name)
        self.max_concurrency = max_concurrency
        self.concurrency = float(max_concurrency)
        self.in_flight = 0
        self.sending = 0  # requests between taking their budget and their answer
        self.after_timeout = False
        self.user_rpm = float(rpm) if rpm else None
        self.user_tpm = float(tpm) if tpm else None
        self.quota = quota if quota is not None else Quota()
        self.pause_until = 0.0
        self.rate_limited = 0
        # fallback when the server says nothing about its limits: a spacing between request starts learned from
        # the Retry-After of its 429s
        self.min_interval = 0.0
        self.last_start = -INF
        self.started = now

    # --- what may be sent -----------------------------------------------------------------------------------

    @property
    def probing(self) -> bool:
        """One request in flight until the first answer on this client."""
        return not self.quota.answered

    def capacity(self, kind: str) -> float | None:
        """The per-minute limit in force for ``"requests"`` or ``"tokens"`` (the smaller of the user's and the
        server's), or ``None`` when none is known."""
        user = self.user_rpm if kind == "requests" else self.user_tpm
        server = self.quota.limit_requests if kind == "requests" else self.quota.limit_tokens
        known = [float(x) for x in (user, server) if x]
        return min(known) if known else None

    def max_request_tokens(self) -> float:
        """The largest request (in tokens) that the token budget can ever admit."""
        cap = self.capacity("tokens")
        return INF if cap is None else cap

    def available_tokens(self, now: float) -> float:
        """Tokens that could be sent right now without waiting (``INF`` without a token budget)."""
        cap = self.capacity("tokens")
        if cap is None:
            return INF
        return max(0.0, cap - self.quota.tokens.used(now, cap))

    def slots(self) -> int:
        return 1 if self.probing or self.after_timeout else max(1, int(self.concurrency))

    def on_timeout(self) -> None:
        """A request timed out: the server may still be busy with it, so one request at a time until an answer."""
        self.after_timeout = True

    def try_slot(self) -> bool:
        """Take a concurrency slot if one is free."""
        if self.in_flight >= self.slots():
            return False
        self.in_flight += 1
        return True

    def release_slot(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def budget_wait(self, tokens: int, now: float) -> tuple[float, str]:
        """How long until one request of ``tokens`` fits every budget, and why."""
        if now < self.pause_until:
            return self.pause_until - now, "rate limited by the server"
        wait, why = 0.0, ""
        req_cap = self.capacity("requests")
        if req_cap is not None:
            w = self.quota.requests.wait_for(1, now, req_cap)
            if w > wait:
                wait, why = w, f"pacing to the requests-per-minute limit ({int(req_cap):,})"
        tok_cap = self.capacity("tokens")
        if tok_cap is not None:
            w = self.quota.tokens.wait_for(tokens, now, tok_cap)
            if w > wait:
                wait, why = w, f"pacing to the tokens-per-minute limit ({int(tok_cap):,})"
        if self.min_interval > 0:
            w = self.last_start + self.min_interval - now
            if w > wait:
                wait, why = w, "spacing requests as the server asked"
        return (wait, why) if wait > _EPS else (0.0, "")

    def take_budget(self, tokens: int, now: float) -> tuple[list[float], list[float]]:
        """Log one request of ``tokens`` as sent now (after :meth:`budget_wait` said 0)."""
        self.last_start = now
        self.sending += 1
        return self.quota.requests.take(1, now), self.quota.tokens.take(tokens, now)

    def try_acquire(self, tokens: int, now: float) -> float:
        """Slot and budget at once: 0.0 if granted, else how long to wait (``INF``: until a request finishes)."""
        if now < self.pause_until:
            return self.pause_until - now
        if self.in_flight >= self.slots():
            return INF
        wait, _ = self.budget_wait(tokens, now)
        if wait > 0:
            return wait
        self.in_flight += 1
        self.take_budget(tokens, now)
        return 0.0

    def done_sending(self) -> None:
        """A request's answer (or failure) is in."""
        self.sending = max(0, self.sending - 1)

    # --- what happened --------------------------------------------------------------------------------------

    def learn(
        self,
        limits: RateLimits | None,
        now: float,
        sent_at: float | None = None,
        entries: tuple[list[float], list[float]] | None = None,
    ) -> None:
        self.quota.learn(limits, now, sent_at=sent_at, entries=entries)

    def on_success(
        self,
        limits: RateLimits | None,
        now: float,
        sent_at: float | None = None,
        entries: tuple[list[float], list[float]] | None = None,
    ) -> None:
        """A request came back with a 2xx (its headers in ``limits``); does not free its slot."""
        self.quota.answered = True
        self.after_timeout = False
        self.learn(limits, now, sent_at, entries)
        self.min_interval *= _INTERVAL_DECAY
        if self.min_interval < 1e-3:
            self.min_interval = 0.0
        if self.concurrency < self.max_concurrency:
            self.concurrency = min(float(self.max_concurrency), self.concurrency + 1.0 / self.concurrency)

    def on_rate_limited(
        self,
        limits: RateLimits | None,
        retry_after: float | None,
        tokens: int,
        now: float,
        entries: tuple[list[float], list[float]] | None = None,
        sent_at: float | None = None,
    ) -> None:
        """A 429 (not ``insufficient_quota``): back off everyone; the request was not counted by the server."""
        self.quota.answered = True
        self.rate_limited += 1
        if entries is not None:
            for budget, entry in zip((self.quota.requests, self.quota.tokens), entries, strict=True):
                budget.give_back(entry, now)
        self.learn(limits, now, sent_at, entries)
        self.concurrency = max(1.0, self.concurrency / 2.0)
        wait = retry_after if retry_after is not None else _DEFAULT_429_PAUSE
        self.pause_until = max(self.pause_until, now + wait)
        if self.capacity("requests") is None and self.capacity("tokens") is None:
            # nothing known about the budget: space requests by the wait the server asked for
            self.min_interval = max(self.min_interval, wait)

    def on_failure(self, now: float) -> None:
        """Any other failure (5xx, timeout, 4xx): nothing learned; the budget it took stays spent."""
        self.quota.answered = self.quota.answered or False


class Aborted(Exception):
    """Raised inside a waiting sender when the run is being stopped (another batch failed)."""


class Gate:
    """Thread-safe waiting room in front of :class:`RateState` for the sync embedder (and chat).

    ``acquire(tokens)`` takes a slot and the budget; ``success`` / ``rate_limited`` / ``failure`` report the
    outcome and free the slot. The embedder uses the finer :meth:`acquire_slot`, :meth:`acquire_budget` and
    :meth:`release_slot` so it can pack a request after it has a slot. ``on_wait(seconds, reason)`` is told of
    every wait of a second or more.
    """

    def __init__(
        self,
        state: RateState,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
        on_wait: WaitCallback | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.sleep = sleep
        self.on_wait = on_wait
        self._cond = threading.Condition(state.quota.lock)
        self._sleeper = False
        self.stopped = False

    # --- waiting ---------------------------------------------------------------------------------------------

    def _nap(self, wait: float, reason: str) -> None:
        """Sleep ``wait`` (capped) as the one sender that sleeps; called with the lock held, returns with it held."""
        self._sleeper = True
        self._cond.release()
        try:
            if self.on_wait is not None and wait >= 1.0:
                self.on_wait(wait, reason)
            self.sleep(min(max(wait, _MIN_SLEEP), _MAX_SLEEP))
        finally:
            self._cond.acquire()
            self._sleeper = False
            self._cond.notify_all()

    def acquire_slot(self) -> None:
        """Block until a concurrency slot is free and take it; raises :class:`Aborted` after :meth:`stop`."""
        with self._cond:
            while True:
                if self.stopped:
                    raise Aborted
                if self.state.try_slot():
                    return
                self._cond.wait(timeout=_MAX_SLEEP)

    def acquire_budget(self, tokens: int) -> tuple[list[float], list[float]]:
        """Block until a request of ``tokens`` fits every budget and log it as sent (the slot is already held)."""
        with self._cond:
            while True:
                if self.stopped:
                    raise Aborted
                wait, reason = self.state.budget_wait(tokens, self.clock())
                if wait == 0.0:
                    return self.state.take_budget(tokens, self.clock())
                if self._sleeper:
                    self._cond.wait(timeout=_MAX_SLEEP)
                elif self.state.sending:
                    # requests are on their way: wait for them (real time passes) rather than sleep the clock past
                    # their answers - the same with a real clock, and exact with a simulated one
                    self._cond.wait(timeout=min(max(wait, _MIN_SLEEP), _MAX_SLEEP))
                else:
                    self._nap(wait, reason)

    def acquire(self, tokens: int) -> None:
        """Slot and budget at once (freed by :meth:`success`, :meth:`rate_limited` or :meth:`failure`)."""
        self.acquire_slot()
        try:
            self.acquire_budget(tokens)
        except BaseException:
            self.release_slot()
            raise

    def release_slot(self) -> None:
        with self._cond:
            self.state.release_slot()
            self._cond.notify_all()

    # --- outcomes --------------------------------------------------------------------------------------------

    def report_success(
        self,
        limits: RateLimits | None,
        sent_at: float | None = None,
        entries: tuple[list[float], list[float]] | None = None,
    ) -> None:
        """A 2xx (the slot stays held)."""
        with self._cond:
            self.state.on_success(limits, self.clock(), sent_at, entries)
            self._cond.notify_all()

    def report_timeout(self) -> None:
        with self._cond:
            self.state.on_timeout()
            self._cond.notify_all()

    def done_sending(self) -> None:
        """A request's answer or failure is in (call once per :meth:`acquire_budget`)."""
        with self._cond:
            self.state.done_sending()
            self._cond.notify_all()

    def report_rate_limited(
        self,
        limits: RateLimits | None,
        retry_after: float | None,
        tokens: int,
        entries: tuple[list[float], list[float]] | None = None,
        sent_at: float | None = None,
    ) -> None:
        """A 429 (the slot stays held)."""
        with self._cond:
            self.state.on_rate_limited(limits, retry_after, tokens, self.clock(), entries, sent_at)
            self._cond.notify_all()

    def refund(self, entries: tuple[list[float], list[float]] | None) -> None:
        """The server did not count a request (e.g. "Request too large"): take it out of the log."""
        if entries is None:
            return
        with self._cond:
            for budget, entry in zip((self.state.quota.requests, self.state.quota.tokens), entries, strict=True):
                budget.give_back(entry, self.clock())
            self._cond.notify_all()

    def success(self, limits: RateLimits | None) -> None:
        self.report_success(limits)
        self.done_sending()
        self.release_slot()

    def rate_limited(self, limits: RateLimits | None, retry_after: float | None, tokens: int) -> None:
        self.report_rate_limited(limits, retry_after, tokens)
        self.done_sending()
        self.release_slot()

    def failure(self) -> None:
        self.done_sending()
        self.release_slot()

    def learn(self, limits: RateLimits | None) -> None:
        with self._cond:
            self.state.learn(limits, self.clock())
            self._cond.notify_all()

    def max_request_tokens(self) -> float:
        with self._cond:
            return self.state.max_request_tokens()

    def available_tokens(self) -> float:
        with self._cond:
            return self.state.available_tokens(self.clock())

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()


class AsyncGate:
    """The asyncio twin of :class:`Gate` (one event loop; the quota's lock is only held for instants)."""

    def __init__(
        self,
        state: RateState,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] | None = None,
        on_wait: WaitCallback | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self._sleep = sleep
        self.on_wait = on_wait
        self._changed: asyncio.Event | None = None
        self._sleeper = False
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

    async def _wait_change(self, timeout: float = _MAX_SLEEP) -> None:
        event = self._event()
        event.clear()
        try:
            await asyncio.wait_for(event.wait(), timeout=timeout)
        except TimeoutError:
            pass

    async def _nap(self, wait: float, reason: str) -> None:
        self._sleeper = True
        try:
            if self.on_wait is not None and wait >= 1.0:
                self.on_wait(wait, reason)
            await self._sleep_for(min(max(wait, _MIN_SLEEP), _MAX_SLEEP))
        finally:
            self._sleeper = False
            self._notify()

    async def acquire_slot(self) -> None:
        while True:
            if self.stopped:
                raise Aborted
            with self.state.quota.lock:
                if self.state.try_slot():
                    return
            await self._wait_change()

    async def acquire_budget(self, tokens: int) -> tuple[list[float], list[float]]:
        while True:
            if self.stopped:
                raise Aborted
            with self.state.quota.lock:
                wait, reason = self.state.budget_wait(tokens, self.clock())
                if wait == 0.0:
                    return self.state.take_budget(tokens, self.clock())
                sending = self.state.sending
            if self._sleeper:
                await self._wait_change()
            elif sending:  # see Gate.acquire_budget
                await self._wait_change(min(max(wait, _MIN_SLEEP), _MAX_SLEEP))
            else:
                await self._nap(wait, reason)

    async def acquire(self, tokens: int) -> None:
        """Slot and budget at once (freed by :meth:`success`, :meth:`rate_limited` or :meth:`failure`)."""
        await self.acquire_slot()
        try:
            await self.acquire_budget(tokens)
        except BaseException:
            self.release_slot()
            raise

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def release_slot(self) -> None:
        with self.state.quota.lock:
            self.state.release_slot()
        self._notify()

    def report_success(
        self,
        limits: RateLimits | None,
        sent_at: float | None = None,
        entries: tuple[list[float], list[float]] | None = None,
    ) -> None:
        with self.state.quota.lock:
            self.state.on_success(limits, self.clock(), sent_at, entries)
        self._notify()

    def done_sending(self) -> None:
        with self.state.quota.lock:
            self.state.done_sending()
        self._notify()

    def report_timeout(self) -> None:
        with self.state.quota.lock:
            self.state.on_timeout()
        self._notify()

    def report_rate_limited(
        self,
        limits: RateLimits | None,
        retry_after: float | None,
        tokens: int,
        entries: tuple[list[float], list[float]] | None = None,
        sent_at: float | None = None,
    ) -> None:
        with self.state.quota.lock:
            self.state.on_rate_limited(limits, retry_after, tokens, self.clock(), entries, sent_at)
        self._notify()

    def refund(self, entries: tuple[list[float], list[float]] | None) -> None:
        """The server did not count a request (e.g. "Request too large"): take it out of the log."""
        if entries is None:
            return
        with self.state.quota.lock:
            for budget, entry in zip((self.state.quota.requests, self.state.quota.tokens), entries, strict=True):
                budget.give_back(entry, self.clock())
        self._notify()

    def success(self, limits: RateLimits | None) -> None:
        self.report_success(limits)
        self.done_sending()
        self.release_slot()

    def rate_limited(self, limits: RateLimits | None, retry_after: float | None, tokens: int) -> None:
        self.report_rate_limited(limits, retry_after, tokens)
        self.done_sending()
        self.release_slot()

    def failure(self) -> None:
        self.done_sending()
        self.release_slot()

    def learn(self, limits: RateLimits | None) -> None:
        with self.state.quota.lock:
            self.state.learn(limits, self.clock())
        self._notify()

    def max_request_tokens(self) -> float:
        with self.state.quota.lock:
            return self.state.max_request_tokens()

    def available_tokens(self) -> float:
        with self.state.quota.lock:
            return self.state.available_tokens(self.clock())

    def stop(self) -> None:
        self.stopped = True
        self._notify()
