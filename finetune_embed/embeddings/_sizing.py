"""Adaptive request sizing: how many inputs and tokens one embeddings request carries.

A :class:`RequestSizer` starts from what the provider is known to take (OpenAI and Azure OpenAI: the API's 2048
inputs and 300,000 tokens; an OpenAI-compatible server: a small request, :data:`COMPATIBLE_START_INPUTS` inputs)
and then follows what the server does:

* **Fast answers grow the size**, at most doubling per answer, towards a latency of
  :data:`TARGET_LATENCY_SHARE` of the client's timeout.
* **Slow answers shrink it**: an answer that took more than :data:`SLOW_LATENCY_SHARE` of the timeout (latency
  approaching the timeout) brings the size down in proportion.
* **A timeout halves it**, and the timed-out request itself is split in two before it is sent again: a request is
  never re-sent at the size that timed out. A single input that times out is sent again with twice the timeout.
* **A size error sets a hard limit** for the client's lifetime: an HTTP 413 / 422, or a 500 whose message names
  a batch or input size (text-embeddings-inference's ``batch size 64 > maximum allowed batch size 32``,
  llama.cpp's ``input (992 tokens) is too large to process ... (current batch size: 512)``). The limit is parsed
  from the message where it gives one; otherwise the failed size is halved.

The sizer is shared by every embedder that uses the same client and model (see :func:`server_state`), so what
one call learns, the next one starts from. All methods are thread-safe.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COMPATIBLE_START_INPUTS",
    "RequestSizer",
    "ServerState",
    "SizeLimit",
    "parse_size_error",
    "server_state",
]

#: inputs in the first request to an OpenAI-compatible server (text-embeddings-inference's default limit)
COMPATIBLE_START_INPUTS = 32
#: tokens in the first request to an OpenAI-compatible server
COMPATIBLE_START_TOKENS = 32 * 512
#: aim for answers within this share of the client's timeout
TARGET_LATENCY_SHARE = 0.25
#: an answer slower than this share of the timeout shrinks the size
SLOW_LATENCY_SHARE = 0.5

_BATCH_LIMIT = re.compile(r"(?i)batch size (\d+) > maximum allowed batch size (\d+)")
#: "too many inputs in one request: 1200 > 20", "inputs: 64 > max 32" - a given count over a limit
_INPUTS_OVER = re.compile(r"(?i)(?:too many inputs|inputs?\b)[^\d\n]{0,40}?(\d+)\s*>\s*(?:max(?:imum)?\s*)?(\d+)")
_PHYSICAL_BATCH = re.compile(
    r"(?i)input \((\d+) tokens\) is too large to process.*?current batch size:\s*(\d+)", re.S
)
_MUST_HAVE_LESS = re.compile(r"(?i)must have less than (\d+) tokens\.?\s*Given:\s*(\d+)")
_CONTEXT_LENGTH = re.compile(
    r"(?i)maximum context length is (\d+) tokens.*?(?:requested|however,? you requested) (\d+)", re.S
)
_GENERIC_SIZE = re.compile(
    r"(?i)(batch size|too many inputs|too large|payload too large|request entity too large|"
    r"exceeds? (?:the )?(?:maximum|max)|maximum allowed|max_client_batch_size|max_batch_tokens)"
)


@dataclass(frozen=True)
class SizeLimit:
    """What a size error says: ``per_request`` - the most inputs one request may carry; ``per_input`` - the most
    tokens (the server's own count) one input may have, with ``given``: how many the refused input had."""

    per_request: int | None = None
    per_input: int | None = None
    given: int | None = None

    @property
    def is_input_limit(self) -> bool:
        """Whether the error is about one input being too long (not about the request's size)."""
        return self.per_input is not None


def parse_size_error(status: int | None, message: str) -> SizeLimit | None:
    """The size limit a server's error states, or ``None`` if the error is not about size.

    >>> parse_size_error(413, "batch size 64 > maximum allowed batch size 32")
    SizeLimit(per_request=32, per_input=None, given=None)
    >>> parse_size_error(500, "input (992 tokens) is too large to process. increase the physical batch size "
    ...                       "(current batch size: 512)")
    SizeLimit(per_request=None, per_input=512, given=992)
    >>> parse_size_error(500, "The server had an error") is None
    True
    """
    m = _BATCH_LIMIT.search(message)
    if m:
        return SizeLimit(per_request=int(m.group(2)))
    m = _INPUTS_OVER.search(message)
    if m and status in (400, 413, 422) and int(m.group(2)) < int(m.group(1)):
        return SizeLimit(per_request=int(m.group(2)))
    m = _PHYSICAL_BATCH.search(message)
    if m:
        return SizeLimit(per_input=int(m.group(2)), given=int(m.group(1)))
    m = _MUST_HAVE_LESS.search(message)
    if m:
        return SizeLimit(per_input=int(m.group(1)) - 1, given=int(m.group(2)))
    if status in (413, 422) or (status is not None and status >= 500):
        m = _CONTEXT_LENGTH.search(message)
        if m:
            return SizeLimit(per_input=int(m.group(1)), given=int(m.group(2)))
    if status == 413:
        return SizeLimit()
    if status in (422, 500) and _GENERIC_SIZE.search(message):
        return SizeLimit()
    return None


@dataclass
class RequestSizer:
    """The size of the next request (see the module docstring). ``hard_*`` are what the server accepts at most;
    ``target_*`` what the sizer aims for now."""

    hard_inputs: int
    hard_tokens: int
    target_inputs: float
    target_tokens: float
    adaptive: bool = True
    #: a per-input limit in the server's own tokens, and the largest ratio server tokens / our tokens seen
    input_limit: int | None = None
    token_ratio: float = 1.0
    timeouts: int = 0
    size_errors: int = 0
    #: the largest request that came back well; a larger one is tried by one request at a time
    proven_inputs: int = 0
    proven_tokens: int = 0
    trial: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.proven_inputs = self.proven_inputs or int(self.target_inputs)
        self.proven_tokens = self.proven_tokens or int(self.target_tokens)

    @classmethod
    def for_provider(cls, provider: str, *, max_inputs: int, max_tokens: int) -> RequestSizer:
        """OpenAI / Azure: start at the API's limits. A compatible server: start small and grow."""
        if provider in ("openai", "azure"):
            return cls(max_inputs, max_tokens, float(max_inputs), float(max_tokens), adaptive=True)
        return cls(
            max_inputs,
            max_tokens,
            float(min(max_inputs, COMPATIBLE_START_INPUTS)),
            float(min(max_tokens, COMPATIBLE_START_TOKENS)),
        )

    def limits(self, user_inputs: int, user_tokens: int, *, trial: bool = True) -> tuple[int, int]:
        """``(inputs, tokens)`` of the next request, within the user's own caps: the target size for the one
        request that may try a size larger than any that came back (``trial``), else no more than that size."""
        with self._lock:
            target_inputs, target_tokens = max(1, int(self.target_inputs)), max(1, int(self.target_tokens))
            if not trial:
                target_inputs = min(target_inputs, max(1, self.proven_inputs))
                target_tokens = min(target_tokens, max(1, self.proven_tokens))
            inputs = min(user_inputs, self.hard_inputs, target_inputs)
            tokens = min(user_tokens, self.hard_tokens, target_tokens)
        return max(1, inputs), max(1, tokens)

    def claim_trial(self) -> bool:
        """Whether the caller may send the one request larger than what is proven (and now holds that right)."""
        with self._lock:
            if self.trial or (self.target_inputs <= self.proven_inputs and self.target_tokens <= self.proven_tokens):
                return False
            self.trial = True
            return True

    def end_trial(self) -> None:
        with self._lock:
            self.trial = False

    def on_success(self, inputs: int, tokens: int, latency: float, timeout: float | None) -> None:
        """A request of ``inputs`` / ``tokens`` came back after ``latency`` seconds."""
        if not self.adaptive or timeout is None or timeout <= 0 or inputs < 1:
            return
        with self._lock:
            self.proven_inputs = max(self.proven_inputs, inputs)
            self.proven_tokens = max(self.proven_tokens, tokens)
            target = TARGET_LATENCY_SHARE * timeout
            if latency > SLOW_LATENCY_SHARE * timeout:
                factor = max(0.1, target / latency)  # approaching the timeout: come back to the target
            else:
                factor = min(2.0, target / max(latency, 1e-3))
            if factor >= 1.0:
                # grow from what was actually sent, never past what the answer supports
                if inputs >= 0.5 * self.target_inputs:
                    self.target_inputs = max(self.target_inputs, min(self.hard_inputs, inputs * factor))
                if tokens >= 0.5 * self.target_tokens:
                    self.target_tokens = max(self.target_tokens, min(self.hard_tokens, tokens * factor))
            else:
                self.target_inputs = max(1.0, min(self.target_inputs, inputs * factor))
                self.target_tokens = max(1.0, min(self.target_tokens, tokens * factor))

    def on_timeout(self, inputs: int, tokens: int) -> None:
        """A request of ``inputs`` / ``tokens`` timed out: aim at half of it from now on."""
        with self._lock:
            self.timeouts += 1
            self.target_inputs = max(1.0, min(self.target_inputs, inputs / 2.0))
            self.target_tokens = max(1.0, min(self.target_tokens, tokens / 2.0))
            self.proven_inputs = min(self.proven_inputs, int(self.target_inputs))
            self.proven_tokens = min(self.proven_tokens, int(self.target_tokens))

    def on_size_error(self, limit: SizeLimit, inputs: int, tokens: int) -> None:
        """The server refused a request of ``inputs`` / ``tokens`` as too large (``limit``: what it said)."""
        with self._lock:
            self.size_errors += 1
            if limit.per_input is not None:
                self.input_limit = limit.per_input if self.input_limit is None else min(self.input_limit,
                                                                                        limit.per_input)
                return
            if limit.per_request is not None:
                cap = max(1, min(limit.per_request, inputs - 1 if inputs > 1 else 1))
                self.hard_inputs = min(self.hard_inputs, cap)
                self.target_inputs = min(self.target_inputs, float(cap))
                self.proven_inputs = min(self.proven_inputs, cap)
                return
            # a size error without a number: half of what failed, for inputs and tokens
            self.hard_inputs = min(self.hard_inputs, max(1, inputs // 2))
            self.target_inputs = min(self.target_inputs, float(self.hard_inputs))
            self.hard_tokens = min(self.hard_tokens, max(1, tokens // 2))
            self.target_tokens = min(self.target_tokens, float(self.hard_tokens))
            self.proven_inputs = min(self.proven_inputs, self.hard_inputs)
            self.proven_tokens = min(self.proven_tokens, self.hard_tokens)

    def note_ratio(self, server_tokens: int, our_tokens: int) -> None:
        """The server counted ``server_tokens`` for an input we count as ``our_tokens``."""
        if our_tokens > 0 and server_tokens > 0:
            with self._lock:
                self.token_ratio = max(self.token_ratio, server_tokens / our_tokens)

    def input_limit_ours(self) -> int | None:
        """The learned per-input limit in our own token count (with a 5 % margin), or ``None``."""
        with self._lock:
            if self.input_limit is None:
                return None
            return max(1, math.floor(self.input_limit / self.token_ratio * 0.95))


@dataclass
class ServerState:
    """What the embedders have learned about one (client, model): request sizes and the quota (shared by every
    embedder on that client, for the client's lifetime)."""

    sizer: RequestSizer
    quota: Any  # a _ratelimit.Quota (imported lazily to keep this module free of cycles)
    warned_unknown_model: bool = False


_STATE_ATTR = "_finetune_embed_server_state"
_state_lock = threading.Lock()


def server_state(client: object, model: str, *, provider: str, max_inputs: int, max_tokens: int) -> ServerState:
    """The :class:`ServerState` of ``model`` on ``client``, created on first use and kept on the client object
    (so it lives exactly as long as the client)."""
    from ._ratelimit import Quota

    with _state_lock:
        states: dict[str, ServerState] | None = getattr(client, _STATE_ATTR, None)
        if states is None:
            states = {}
            try:
                setattr(client, _STATE_ATTR, states)
            except AttributeError:  # pragma: no cover - a client that takes no attributes: per-call state
                pass
        state = states.get(model)
        if state is None:
            state = ServerState(
                RequestSizer.for_provider(provider, max_inputs=max_inputs, max_tokens=max_tokens), Quota()
            )
            states[model] = state
        return state
