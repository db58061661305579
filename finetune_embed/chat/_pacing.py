"""Rate pacing for chat requests, on the Embedder's machinery (:mod:`finetune_embed.embeddings._ratelimit`).

This module is the only place that knows that machinery's interface: a gate built from ``max_concurrency``,
``rpm``, ``tpm`` and a clock; ``acquire(tokens)`` before each attempt; ``success(limits)``,
``rate_limited(limits, retry_after, tokens)`` or ``failure()`` after it. Chat requests reserve their estimated
prompt tokens plus the completion tokens they may produce, as OpenAI's own limiter counts them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._client import RateLimits
from ..embeddings._base import limits_from_message
from ..embeddings._ratelimit import Aborted, AsyncGate, Gate, RateState
from ..retry import retry_after_seconds

__all__ = ["Aborted", "AsyncGate", "Gate", "new_async_gate", "new_gate", "report_error", "report_success"]


def new_gate(
    *,
    max_concurrency: int,
    rpm: int | None,
    tpm: int | None,
    clock: Callable[[], float],
    sleep: Callable[[float], Any] | None,
) -> Gate:
    """A thread-safe gate for one model."""
    state = RateState(max_concurrency=max_concurrency, rpm=rpm, tpm=tpm, now=clock())
    return Gate(state, clock=clock, sleep=sleep or time.sleep)


def new_async_gate(
    *,
    max_concurrency: int,
    rpm: int | None,
    tpm: int | None,
    clock: Callable[[], float],
    sleep: Callable[[float], Any] | None,
) -> AsyncGate:
    """An asyncio gate for one model (one event loop)."""
    state = RateState(max_concurrency=max_concurrency, rpm=rpm, tpm=tpm, now=clock())
    return AsyncGate(state, clock=clock, sleep=sleep)


def report_success(gate: Gate | AsyncGate, headers: Any) -> None:
    """A 2xx came back: free the slot and learn the server's limits from its headers."""
    gate.success(RateLimits.from_headers(headers) if headers is not None else None)


def report_error(gate: Gate | AsyncGate, exc: BaseException, tokens: int) -> None:
    """Any failure of an attempt: a 429 (not ``insufficient_quota``) slows every sender down and pauses them for
    the server's ``Retry-After``; anything else just frees the slot."""
    import openai

    if not isinstance(exc, openai.RateLimitError) or getattr(exc, "code", None) == "insufficient_quota":
        gate.failure()
        return
    response = getattr(exc, "response", None)
    limits = RateLimits.from_headers(response.headers) if response is not None else None
    if limits is None or not limits.known:
        message = str(getattr(exc, "message", "") or exc)
        limits = limits_from_message(message, getattr(exc, "type", None)) or limits
    gate.rate_limited(limits, retry_after_seconds(exc), tokens)
