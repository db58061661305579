"""Requests- and tokens-per-minute limits as token buckets on the fake clock, with OpenAI's headers and 429s."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from ._errors import ApiError, error_body

__all__ = ["RateLimiter", "TokenBucket", "format_duration"]

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

    def reset_in(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.capacity - self.level) / self.rate


class RateLimiter:
    """RPM and TPM buckets per model. ``None`` means unlimited (and no headers for that limit)."""

    def __init__(
        self, rpm: int | None = None, tpm: int | None = None, *, headers: bool = True, organization: str = ""
    ) -> None:
        self._lock = threading.Lock()
        self.organization = organization
        self.configure(rpm=rpm, tpm=tpm, headers=headers)

    def configure(self, *, rpm: int | None, tpm: int | None, headers: bool = True) -> None:
        """Set new limits; the buckets start full."""
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be ≥ 1 or None, got {value!r}")
        with self._lock:
            self.rpm = rpm
            self.tpm = tpm
            self.headers = headers
            self._requests: dict[str, TokenBucket] = {}
            self._tokens: dict[str, TokenBucket] = {}

    def _buckets(self, model: str, now: float) -> tuple[TokenBucket | None, TokenBucket | None]:
        req = tok = None
        if self.rpm is not None:
            req = self._requests.setdefault(model, TokenBucket(float(self.rpm), updated=now))
            req.refill(now)
        if self.tpm is not None:
            tok = self._tokens.setdefault(model, TokenBucket(float(self.tpm), updated=now))
            tok.refill(now)
        return req, tok

    def _headers(self, req: TokenBucket | None, tok: TokenBucket | None) -> dict[str, str]:
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
            if req is not None and req.level < 1:
                self._raise(model, "requests", req, 1, req.wait_for(1), req, tok)
            if tok is not None and tok.level < tokens:
                self._raise(model, "tokens", tok, tokens, tok.wait_for(tokens), req, tok)
            if req is not None:
                req.level -= 1
            if tok is not None:
                tok.level -= tokens
            return self._headers(req, tok)

    def peek_headers(self, model: str, now: float) -> dict[str, str]:
        """The headers describing the current state, without taking anything."""
        with self._lock:
            return self._headers(*self._buckets(model, now))

    def _raise(
        self,
        model: str,
        kind: str,
        bucket: TokenBucket,
        requested: int,
        wait: float,
        req: TokenBucket | None,
        tok: TokenBucket | None,
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
