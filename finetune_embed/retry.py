"""One retry layer for every API call: :class:`RetryPolicy`, built on tenacity.

What is retried: connection errors, timeouts, HTTP 408, 409, 429 and 5xx (``x-should-retry: true|false`` from
the server wins). What is never retried: ``insufficient_quota`` (a billing stop, not a throttle) and other 4xx.

How long to wait: the server's ``retry-after-ms``, then ``retry-after`` (seconds or an HTTP date), then a
"try again in 1.5s" hint in the error message; otherwise exponential backoff with jitter. Unlike the openai
SDK there is no 120 s cap on a server-requested wait; instead the whole call has a deadline
(``max_elapsed``): a wait that would end past it stops the retries at once and raises the last error.

The SDK's own retries are switched off for every client the library wraps, so one ``RetryPolicy`` is the
only retry layer. Each retry is logged at WARNING on the ``finetune_embed.retry`` logger, without secrets.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import tenacity
from tenacity.wait import wait_base

from ._exceptions import InvalidArgumentError
from ._logging import get_logger
from ._redact import redact

__all__ = ["RetryPolicy", "is_retryable", "retry_after_seconds", "wait_retry_after"]

logger = get_logger("retry")

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429})
_TRY_AGAIN = re.compile(
    r"(?i)try again in\s+((?:\d+(?:\.\d+)?\s*(?:ms|h|m|s)\s*)+)",
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)")


def parse_duration(text: str) -> float | None:
    """Parse an OpenAI duration such as ``"1s"``, ``"6m0s"``, ``"12ms"`` or ``"1.5s"`` into seconds."""
    parts = _DURATION_PART.findall(text.strip())
    if not parts:
        try:
            return float(text)
        except ValueError:
            return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def _headers(exc: BaseException) -> Mapping[str, str]:
    headers = getattr(exc, "headers", None)
    if isinstance(headers, Mapping) and headers:
        return headers
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            return {str(k).lower(): str(v) for k, v in response.headers.items()}
        except Exception:
            return {}
    return {}


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def retry_after_seconds(exc: BaseException) -> float | None:
    """The wait (seconds) the server asked for in ``exc``: ``retry-after-ms``, ``retry-after``, or the message.

    Works on our :class:`~finetune_embed.APIError`, the SDK's ``openai.APIStatusError`` and
    ``httpx.HTTPStatusError`` alike. Returns ``None`` when the server gave no usable hint.
    """
    headers = {k.lower(): v for k, v in _headers(exc).items()}
    value = headers.get("retry-after-ms")
    if value:
        try:
            ms = float(value)
            if math.isfinite(ms) and ms >= 0:
                return ms / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            seconds = float(value)
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    message = str(getattr(exc, "message", None) or exc)
    match = _TRY_AGAIN.search(message)
    if match:
        return parse_duration(match.group(1))
    return None


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed call is worth trying again (see the module docstring for the rules)."""
    from ._exceptions import APIConnectionError, FinetuneEmbedError

    if getattr(exc, "code", None) == "insufficient_quota":
        return False
    headers = {k.lower(): v for k, v in _headers(exc).items()}
    should = headers.get("x-should-retry")
    if should == "true":
        return True
    if should == "false":
        return False
    if isinstance(exc, APIConnectionError):
        return True
    status = _status(exc)
    if status is not None:
        return status in RETRYABLE_STATUS or status >= 500
    if isinstance(exc, FinetuneEmbedError):
        return False
    # the SDK's and httpx's own connection / timeout errors, for users who use the policy directly
    try:
        import openai

        if isinstance(exc, openai.APIConnectionError):
            return True
    except ImportError:  # pragma: no cover - openai is a core dependency
        pass
    try:
        import httpx

        if isinstance(exc, httpx.TransportError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, ConnectionError | TimeoutError)


class wait_retry_after(wait_base):
    """A tenacity wait that honours the server's requested delay and falls back to ``fallback`` otherwise.

    The result is ``max(server's delay, fallback)`` when ``at_least_fallback`` is true (so jitter still spreads
    clients out), else the server's delay. ``cap`` bounds the wait (``None``: no cap; the policy's deadline
    decides instead).
    """

    def __init__(self, fallback: wait_base, *, cap: float | None = None, at_least_fallback: bool = False) -> None:
        self.fallback = fallback
        self.cap = cap
        self.at_least_fallback = at_least_fallback

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        fallback = float(self.fallback(retry_state))
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        hinted = retry_after_seconds(exc) if exc is not None else None
        if hinted is None:
            wait = fallback
        else:
            wait = max(hinted, fallback) if self.at_least_fallback else hinted
        if self.cap is not None:
            wait = min(wait, self.cap)
        return max(0.0, wait)


class _wait_backoff(wait_base):
    """Exponential backoff ``initial * 2**(n-1)``, capped at ``maximum``, plus uniform jitter ``[0, jitter)``."""

    def __init__(self, initial: float, maximum: float, jitter: float, rng: random.Random) -> None:
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exponent = max(0, retry_state.attempt_number - 1)
        base = min(self.maximum, self.initial * (2.0 ** min(exponent, 60)))
        return min(self.maximum, base + self.rng.uniform(0.0, self.jitter))


@dataclass(frozen=True)
class RetryPolicy:
    """How API calls are retried.

    **Parameters:**

    * ``max_attempts`` - attempts in all, the first included (1 disables retries).
    * ``max_elapsed`` - deadline in seconds for the whole call, waits included; a wait that would end past it
      is not taken (``None``: no deadline).
    * ``initial_wait``, ``max_wait``, ``jitter`` - exponential backoff when the server gives no hint.
    * ``respect_retry_after`` - wait as long as the server asks (``retry-after-ms`` / ``retry-after`` / message).
    * ``sleep`` - the function used to sleep (tests pass a recorder); ``None`` means ``time.sleep`` /
      ``asyncio.sleep``.

    >>> policy = RetryPolicy(max_attempts=4, max_elapsed=60)
    >>> policy.call(lambda: 42)
    42
    """

    max_attempts: int = 6
    max_elapsed: float | None = 300.0
    initial_wait: float = 1.0
    max_wait: float = 60.0
    jitter: float = 1.0
    respect_retry_after: bool = True
    sleep: Callable[[float], Any] | None = field(default=None, compare=False, repr=False)
    seed: int | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidArgumentError(
                f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}", argument="max_attempts"
            )
        if self.max_elapsed is not None and self.max_elapsed <= 0:
            raise InvalidArgumentError(
                f"RetryPolicy.max_elapsed must be > 0 or None, got {self.max_elapsed}", argument="max_elapsed"
            )
        if self.initial_wait < 0 or self.max_wait < 0 or self.jitter < 0:
            raise InvalidArgumentError(
                f"RetryPolicy waits must be >= 0, got initial_wait={self.initial_wait}, max_wait={self.max_wait}, "
                f"jitter={self.jitter}",
                argument="initial_wait" if self.initial_wait < 0 else "max_wait" if self.max_wait < 0 else "jitter",
            )

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def _wait(self) -> wait_base:
        backoff = _wait_backoff(self.initial_wait, self.max_wait, self.jitter, random.Random(self.seed))
        if self.respect_retry_after:
            return wait_retry_after(backoff)
        return backoff

    def _stop(self) -> tenacity.stop.stop_base:
        stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(self.max_attempts)
        if self.max_elapsed is not None:
            stop = stop | tenacity.stop_before_delay(self.max_elapsed)
        return stop

    def _before_sleep(self, description: str) -> Callable[[tenacity.RetryCallState], None]:
        def log(state: tenacity.RetryCallState) -> None:
            outcome = state.outcome
            exc = outcome.exception() if outcome is not None else None
            logger.warning(
                "Retrying %s in %.2fs (attempt %d of %d failed): %s",
                description,
                state.upcoming_sleep,
                state.attempt_number,
                self.max_attempts,
                redact(f"{type(exc).__name__}: {exc}") if exc is not None else "no result",
            )

        return log

    def retrying(self, *, description: str = "the call") -> tenacity.Retrying:
        """A configured ``tenacity.Retrying`` (``reraise=True``: the last real error is raised)."""
        kwargs: dict[str, Any] = {}
        if self.sleep is not None:
            kwargs["sleep"] = self.sleep
        return tenacity.Retrying(
            stop=self._stop(),
            wait=self._wait(),
            retry=tenacity.retry_if_exception(is_retryable),
            reraise=True,
            before_sleep=self._before_sleep(description),
            **kwargs,
        )

    def async_retrying(self, *, description: str = "the call") -> tenacity.AsyncRetrying:
        """The ``tenacity.AsyncRetrying`` twin of :meth:`retrying`."""
        kwargs: dict[str, Any] = {}
        if self.sleep is not None:
            sleep = self.sleep

            async def _sleep(seconds: float) -> None:
                result = sleep(seconds)
                if isinstance(result, Awaitable):
                    await result

            kwargs["sleep"] = _sleep
        return tenacity.AsyncRetrying(
            stop=self._stop(),
            wait=self._wait(),
            retry=tenacity.retry_if_exception(is_retryable),
            reraise=True,
            before_sleep=self._before_sleep(description),
            **kwargs,
        )

    def call(self, fn: Callable[..., T], *args: Any, description: str = "the call", **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)`` under this policy; the error raised carries ``.attempts``."""
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return fn(*args, **kwargs)

        try:
            return self.retrying(description=description)(attempt)
        except BaseException as exc:
            _set_attempts(exc, attempts)
            raise

    async def acall(
        self, fn: Callable[..., Awaitable[T]], *args: Any, description: str = "the call", **kwargs: Any
    ) -> T:
        """Await ``fn(*args, **kwargs)`` under this policy (the async twin of :meth:`call`)."""
        attempts = 0

        async def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return await fn(*args, **kwargs)

        try:
            return await self.async_retrying(description=description)(attempt)
        except BaseException as exc:
            _set_attempts(exc, attempts)
            raise


def _set_attempts(exc: BaseException, attempts: int) -> None:
    try:
        exc.attempts = attempts  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - exceptions with __slots__
        pass
