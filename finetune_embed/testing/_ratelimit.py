"""Requests- and tokens-per-minute limits on the fake clock, with OpenAI's headers and 429s.

Two models of a per-minute limit ``L``: a token bucket (``window="bucket"``, the default: ``L`` that refills
evenly, ``L / 60`` per second, and starts full - OpenAI's documented model) or a sliding window
(``window="sliding"``: what was accepted in the last 60 seconds never exceeds ``L``, as many gateways and some
Azure deployments enforce it).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from .._exceptions import InvalidArgumentError
from ._errors import ApiError, error_body

__all__ = ["RateLimiter", "SlidingWindow", "TokenBucket", "format_duration"]

WINDOW_SECONDS = 60.0

RATE_LIMITS_URL = "https://platform.openai.com/account/rate-limits"


def format_duration(seconds: float) -> str:
    """A duration the way OpenAI writes it in ``x-ratelimit-reset-*`` and 429 messages: ``12ms``, ``1.2s``,
    ``6m0s``, ``1h2m3s``.

    >>> [format_duration(s) for s in (0, 0.012, 1.2, 6.0, 360, 3723.5)]
    ['0s', '12ms', '1.2s', '6s', '6m0s', '1h2m3.5s']
    """
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    seconds = math.ceil(seconds * 1000) / 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec_text}"
    if minutes:
        return f"{int(minutes)}m{sec_text}"
    return sec_text


@dataclass
class TokenBucket:
    """A bucket of ``capacity`` units that refills continuously, all of it per minute."""

    capacity: float
    level: float = field(default=-1.0)
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.level < 0:
            self.level = self.capacity

    @property
    def rate(self) -> float:
        """Units per second."""
        return self.capacity / 60.0

    def refill(self, now: float) -> None:
        """Bring the level up to date."""
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` units are available (after :meth:`refill`)."""
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        """Accept ``amount`` units (after :meth:`refill`)."""
        self.level -= amount

    def reset_in(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.capacity - self.level) / self.rate


class SlidingWindow:
    """At most ``capacity`` units accepted in any :data:`WINDOW_SECONDS` seconds (the same interface as
    :class:`TokenBucket`: ``level`` is what is left now)."""

    def __init__(self, capacity: float, now: float = 0.0) -> None:
        self.capacity = float(capacity)
        self.entries: deque[tuple[float, float]] = deque()
        self.used = 0.0
        self.updated = now

    @property
    def level(self) -> float:
        return self.capacity - self.used

    def take(self, amount: float) -> None:
        """Accept ``amount`` units now (after :meth:`refill`)."""
        self.entries.append((self.updated, amount))
        self.used += amount

    def refill(self, now: float) -> None:
        self.updated = max(self.updated, now)
        while self.entries and self.entries[0][0] <= self.updated - WINDOW_SECONDS:
            self.used -= self.entries.popleft()[1]
        if not self.entries:
            self.used = 0.0

    def wait_for(self, amount: float) -> float:
        short = self.used + amount - self.capacity
        if short <= 0:
            return 0.0
        for t, a in self.entries:
            short -= a
            if short <= 0:
                return t + WINDOW_SECONDS - self.updated
        return WINDOW_SECONDS  # pragma: no cover

    def reset_in(self) -> float:
        """Seconds until the window is empty again."""
        return self.entries[-1][0] + WINDOW_SECONDS - self.updated if self.entries else 0.0


Limit = TokenBucket | SlidingWindow


class RateLimiter:
    """RPM and TPM limits per model. ``None`` means unlimited (and no headers for that limit)."""

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        *,
        headers: bool = True,
        organization: str = "",
        window: Literal["bucket", "sliding"] = "bucket",
    ) -> None:
        self._lock = threading.Lock()
        self.organization = organization
        self.configure(rpm=rpm, tpm=tpm, headers=headers, window=window)

    def configure(
        self,
        *,
        rpm: int | None,
        tpm: int | None,
        headers: bool = True,
        window: Literal["bucket", "sliding"] = "bucket",
    ) -> None:
        """Set new limits; the budgets start full."""
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value < 1:
                raise InvalidArgumentError(f"{name} must be ≥ 1 or None, got {value!r}", argument=name)
        if window not in ("bucket", "sliding"):
            raise InvalidArgumentError(f"window must be 'bucket' or 'sliding', got {window!r}", argument="window")
        with self._lock:
            self.rpm = rpm
            self.tpm = tpm
            self.headers = headers
            self.window = window
            self._requests: dict[str, Limit] = {}
            self._tokens: dict[str, Limit] = {}

    def _new(self, capacity: float, now: float) -> Limit:
        return SlidingWindow(capacity, now) if self.window == "sliding" else TokenBucket(capacity, updated=now)

    def _buckets(self, model: str, now: float) -> tuple[Limit | None, Limit | None]:
        req = tok = None
        if self.rpm is not None:
            req = self._requests.get(model) or self._requests.setdefault(model, self._new(float(self.rpm), now))
            req.refill(now)
        if self.tpm is not None:
            tok = self._tokens.get(model) or self._tokens.setdefault(model, self._new(float(self.tpm), now))
            tok.refill(now)
        return req, tok

    def _headers(self, req: Limit | None, tok: Limit | None) -> dict[str, str]:
        if not self.headers:
            return {}
        out: dict[str, str] = {}
        if req is not None:
            out["x-ratelimit-limit-requests"] = str(int(req.capacity))
            out["x-ratelimit-remaining-requests"] = str(max(0, math.floor(req.level)))
            out["x-ratelimit-reset-requests"] = format_duration(req.reset_in())
        if tok is not None:
            out["x-ratelimit-limit-tokens"] = str(int(tok.capacity))
            out["x-ratelimit-remaining-tokens"] = str(max(0, math.floor(tok.level)))
            out["x-ratelimit-reset-tokens"] = format_duration(tok.reset_in())
        return out

    def acquire(self, model: str, tokens: int, now: float) -> dict[str, str]:
        """Take one request and ``tokens`` tokens, returning the headers for the response; raises a 429
        :class:`ApiError` (buckets untouched) when either limit would be exceeded."""
        with self._lock:
            req, tok = self._buckets(model, now)
            org = self.organization
            if tok is not None and tokens > tok.capacity:
                message = (
                    f"Request too large for {model} in organization {org} on tokens per min (TPM): "
                    f"Limit {int(tok.capacity)}, Requested {tokens}. The input or output tokens must be reduced "
                    f"in order to run successfully. Visit {RATE_LIMITS_URL} to learn more."
                )
                raise ApiError(
                    429,
                    message,
                    body=error_body(message, type="tokens", code="rate_limit_exceeded"),
                    headers=self._headers(req, tok),
                )
            if req is not None and req.level < 1 - 1e-9:
                self._raise(model, "requests", req, 1, req.wait_for(1), req, tok)
            if tok is not None and tok.level < tokens - 1e-6:
                self._raise(model, "tokens", tok, tokens, tok.wait_for(tokens), req, tok)
            if req is not None:
                req.take(1)
            if tok is not None:
                tok.take(tokens)
            return self._headers(req, tok)

    def peek_headers(self, model: str, now: float) -> dict[str, str]:
        """The headers describing the current state, without taking anything."""
        with self._lock:
            return self._headers(*self._buckets(model, now))

    def _raise(
        self,
        model: str,
        kind: str,
        bucket: Limit,
        requested: int,
        wait: float,
        req: Limit | None,
        tok: Limit | None,
    ) -> None:
        label = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
        used = max(0, math.ceil(bucket.capacity - bucket.level))
        message = (
            f"Rate limit reached for {model} in organization {self.organization} on {label}: "
            f"Limit {int(bucket.capacity)}, Used {used}, Requested {requested}. "
            f"Please try again in {format_duration(wait)}. Visit {RATE_LIMITS_URL} to learn more."
        )
        headers = self._headers(req, tok)
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        raise ApiError(429, message, body=error_body(message, type=kind, code="rate_limit_exceeded"), headers=headers)
