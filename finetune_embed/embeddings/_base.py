"""What the sync and async embedders share: settings, validation, planning, estimates and error rules."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .._client import RateLimits
from .._exceptions import (
    BadRequestError,
    ConfigError,
    EmbeddingError,
    InputTooLongError,
    InvalidInputError,
    UnsupportedModelError,
    map_openai_error,
)
from .._ids import check_deployment
from .._logging import get_logger
from ..batching import pack_by_tokens
from ..catalog import EmbeddingModelInfo, default_catalog
from ..retry import retry_after_seconds
from ._cache import EmbeddingCache
from ._job import EmbedJob
from ._plan import EMPTY_POLICIES, LONG_POLICIES, EmptyPolicy, LongPolicy, Plan, plan_inputs
from ._ratelimit import RateState
from ._run import (
    MAX_CONSECUTIVE_429,
    Feed,
    Feedback,
    RateLimited,
    RunContext,
    SizeRefused,
    TimedOut,
    classify_status_error,
    is_timeout,
)
from ._sizing import ServerState, SizeLimit, server_state
from ._tokens import TiktokenCounter, TokenCounter, TokenizerArg, counter_for
from ._types import EmbeddingEstimate, EmbeddingResult, InvalidEmbeddingError, InvalidEmbeddingWarning, Pieces

__all__ = ["CacheArg", "ClientTypeError", "EmbedderBase", "InvalidPolicy", "limits_from_message"]

logger = get_logger("embeddings")

InvalidPolicy = Literal["error", "warn"]
CacheArg = EmbeddingCache | str | os.PathLike[str] | bool | None
EncodingFormat = Literal["base64", "float"]

_TOO_MANY_TOKENS = re.compile(
    r"(?i)(maximum context length|max(imum)?\s+\d*\s*tokens|tokens per request|too many tokens|"
    r"input is too long|context_length_exceeded)"
)
_REQUEST_TOO_LARGE = re.compile(r"(?i)request too large.*?Limit\s+(\d+)")
_LIMIT_USED = re.compile(r"(?i)Limit:?\s*([\d,]+),\s*Used:?\s*([\d,]+)")
_SHOWN = 10


class ClientTypeError(ConfigError, TypeError):
    """A client of the wrong kind was passed (a sync client to the async embedder, or something else)."""


def too_many_tokens(exc: BadRequestError) -> bool:
    """Whether a 400 says the request (or one input) has too many tokens."""
    if exc.code in {"max_tokens_per_request", "context_length_exceeded"}:
        return True
    return bool(_TOO_MANY_TOKENS.search(exc.message))


class RequestTooLarge(Exception):
    """Internal: a 429 "Request too large ... Limit N" (the request can never fit the TPM budget)."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(f"request larger than the tokens-per-minute limit ({limit})")
        self.limit = limit


def request_too_large_limit(message: str) -> int | Literal[False] | None:
    """For a 429 message: the TPM limit if it says the request is too large for it, else ``False``."""
    m = _REQUEST_TOO_LARGE.search(message)
    if m:
        return int(m.group(1))
    if "request too large" in message.lower():
        return None
    return False


def limits_from_message(message: str, kind: str | None) -> RateLimits | None:
    """What an OpenAI 429 message says about the budget ("on tokens per min (TPM): Limit 1000000, Used
    999000, Requested 5000"), for servers that send no ``x-ratelimit-*`` headers."""
    m = _LIMIT_USED.search(message)
    if not m:
        return None
    limit, used = (int(g.replace(",", "")) for g in m.groups())
    lowered = message.lower()
    if kind not in ("requests", "tokens"):
        kind = "requests" if "(rpm)" in lowered or "requests per min" in lowered else (
            "tokens" if "(tpm)" in lowered or "tokens per min" in lowered else None
        )
    if kind == "requests":
        return RateLimits(limit_requests=limit, remaining_requests=max(0, limit - used))
    if kind == "tokens":
        return RateLimits(limit_tokens=limit, remaining_tokens=max(0, limit - used))
    return None


def _check_int(name: str, value: object, lo: int, hi: int, why: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be an integer between {lo} and {hi} ({why}), got {value!r}")


def rate_limits_of(headers: Any) -> RateLimits:
    """The ``x-ratelimit-*`` headers of a response; a LiteLLM proxy's ``llm_provider-x-ratelimit-*`` when those
    are all it sends."""
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    limits = RateLimits.from_headers(lower)
    if not limits.known:
        prefix = "llm_provider-"
        proxied = {k[len(prefix) :]: v for k, v in lower.items() if k.startswith(prefix + "x-ratelimit-")}
        if proxied:
            limits = RateLimits.from_headers(proxied)
    return limits


def _read_timeout(client: Any) -> float | None:
    """The client's read timeout in seconds (``None``: none)."""
    timeout: Any = getattr(client, "timeout", None)
    sdk = getattr(client, "_sdk", None)
    if sdk is not None:
        timeout = getattr(sdk, "timeout", timeout)
    read = getattr(timeout, "read", timeout)
    if isinstance(read, int | float) and not isinstance(read, bool) and read > 0:
        return float(read)
    return None


_CONTEXT = re.compile(r"(?i)maximum context length is (\d+) tokens.*?requested (\d+)", re.S)


def _context_limit(message: str) -> SizeLimit:
    m = _CONTEXT.search(message)
    return SizeLimit(per_input=int(m.group(1)), given=int(m.group(2))) if m else SizeLimit(per_input=0)


def split_batch(
    job: EmbedJob, batch: npt.NDArray[np.int64], max_tokens: float | None = None
) -> list[npt.NDArray[np.int64]]:
    """Cut ``batch`` into requests of at most ``max_tokens`` tokens, or (``None``) into two halves of about
    equal tokens."""
    counts = job.unit_tokens[batch]
    if max_tokens is not None and int(counts.sum()) > max_tokens:
        ranges = pack_by_tokens(counts.tolist(), max_inputs=int(batch.size), max_tokens=max(1, int(max_tokens)))
        return [batch[r.start : r.stop] for r in ranges]
    cut = int(np.searchsorted(np.cumsum(counts), counts.sum() / 2.0))
    cut = min(max(cut, 1), int(batch.size) - 1)
    return [batch[:cut], batch[cut:]]


def merge_results(main: EmbeddingResult, sub: EmbeddingResult, inputs: list[int]) -> EmbeddingResult:
    """``main`` with the rows of ``inputs`` replaced by ``sub`` (their result when embedded again, cut smaller)."""
    idx = np.asarray(inputs, dtype=np.int64)
    vectors = main.vectors
    vectors[idx] = sub.vectors
    invalid = main.invalid.copy()
    invalid[idx] = sub.invalid
    long = sorted(set(main.long) | set(inputs))
    truncated = sorted(set(main.truncated) | {inputs[j] for j in sub.truncated})
    pieces = main.pieces
    if pieces is not None and sub.pieces is not None:
        keep = ~np.isin(pieces.input_index, idx)
        order_in = np.concatenate([pieces.input_index[keep], idx[sub.pieces.input_index]])
        order = np.argsort(order_in, kind="stable")
        pieces = Pieces(
            vectors=np.concatenate([pieces.vectors[keep], sub.pieces.vectors])[order],
            input_index=order_in[order],
            start=np.concatenate([pieces.start[keep], sub.pieces.start])[order],
            end=np.concatenate([pieces.end[keep], sub.pieces.end])[order],
            tokens=np.concatenate([pieces.tokens[keep], sub.pieces.tokens])[order],
        )
    a, b = main.stats, sub.stats
    stats = dataclasses.replace(
        a,
        unique=a.unique + b.unique,
        cached=a.cached + b.cached,
        embedded=a.embedded + b.embedded,
        requests=a.requests + b.requests,
        tokens=a.tokens + b.tokens,
        rate_limited=a.rate_limited + b.rate_limited,
        splits=a.splits + b.splits,
        seconds=a.seconds + b.seconds,
        timeouts=a.timeouts + b.timeouts,
        rebilled_tokens=a.rebilled_tokens + b.rebilled_tokens,
        size_errors=a.size_errors + b.size_errors,
    )
    return dataclasses.replace(
        main, vectors=vectors, invalid=invalid, long=long, truncated=truncated, pieces=pieces, stats=stats
    )


def _describe(indices: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:_SHOWN])
    return shown + (f" and {len(indices) - _SHOWN} more" if len(indices) > _SHOWN else "")


class EmbedderBase:
    """Settings and the I/O-free half of an embedder (see :class:`~finetune_embed.embeddings.Embedder`)."""

    def __init__(
        self,
        *,
        model: str = "text-embedding-3-small",
        dimensions: int | None = None,
        base_model: str | None = None,
        max_batch_inputs: int = 2048,
        max_batch_tokens: int = 300_000,
        max_concurrency: int = 4,
        rpm: int | None = None,
        tpm: int | None = None,
        cache: CacheArg = True,
        long_inputs: LongPolicy = "error",
        empty_inputs: EmptyPolicy = "error",
        invalid_vectors: InvalidPolicy = "error",
        encoding_format: EncodingFormat = "base64",
        progress: bool | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] | None = None,
        tokenizer: TokenizerArg = None,
        max_input_tokens: int | None = None,
        max_rebilled_tokens: int | None = None,
    ) -> None:
        catalog = default_catalog()
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model must be a non-empty string, got {model!r}")
        if base_model is not None and (not isinstance(base_model, str) or not base_model):
            raise ConfigError(f"base_model must be a non-empty string or None, got {base_model!r}")
        self.model = model
        #: the cache's name for this model on this server (see ``_namespace``); set once the client is known
        self.cache_model = model
        self.base_model = base_model or model
        known = catalog.find_embedding_model(self.base_model)
        #: whether the catalog knows the model (limits, price, tokenizer); an unknown one learns its size from the
        #: first response
        self.known_model = known is not None
        self.info: EmbeddingModelInfo = known or EmbeddingModelInfo(
            name=self.base_model, accepts_dimensions=True, known=False
        )
        if dimensions is not None:
            if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
                raise ConfigError(f"dimensions must be a positive integer or None, got {dimensions!r}")
            if not self.info.accepts_dimensions:
                raise UnsupportedModelError(
                    f"{self.base_model} does not accept `dimensions` (only text-embedding-3-* and later do); "
                    "drop dimensions=, or use text-embedding-3-small / text-embedding-3-large.",
                    model=self.base_model,
                )
            if self.info.dimensions and dimensions > self.info.dimensions:
                raise ConfigError(
                    f"dimensions={dimensions} is more than {self.base_model} produces ({self.info.dimensions})."
                )
        self.dimensions = dimensions
        if max_input_tokens is not None:
            _check_int("max_input_tokens", max_input_tokens, 1, 10**9, "tokens per input")
        self.max_input_tokens = max_input_tokens if max_input_tokens is not None else self.info.max_input_tokens
        if max_rebilled_tokens is not None:
            _check_int("max_rebilled_tokens", max_rebilled_tokens, 0, 10**15, "tokens")
        self.max_rebilled_tokens = max_rebilled_tokens
        #: how tokens are counted: the catalog's tiktoken encoding, ``tokenizer=``, or a character estimate
        self.tokenizer: TokenCounter = counter_for(tokenizer, encoding=self.info.encoding if known else None)
        limit_inputs = catalog.max_inputs_per_request
        limit_tokens = catalog.max_tokens_per_request
        _check_int("max_batch_inputs", max_batch_inputs, 1, limit_inputs, "the API's limit")
        _check_int("max_batch_tokens", max_batch_tokens, 1, limit_tokens, "the API's limit")
        _check_int("max_concurrency", max_concurrency, 1, 256, "a sane bound")
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value < float("inf")
            ):
                raise ConfigError(f"{name} must be a positive number or None, got {value!r}")
        if long_inputs not in LONG_POLICIES:
            raise ConfigError(f"long_inputs must be one of {', '.join(LONG_POLICIES)}, got {long_inputs!r}")
        if empty_inputs not in EMPTY_POLICIES:
            raise ConfigError(f"empty_inputs must be one of {', '.join(EMPTY_POLICIES)}, got {empty_inputs!r}")
        if invalid_vectors not in ("error", "warn"):
            raise ConfigError(f"invalid_vectors must be 'error' or 'warn', got {invalid_vectors!r}")
        if encoding_format not in ("base64", "float"):
            raise ConfigError(f"encoding_format must be 'base64' or 'float', got {encoding_format!r}")
        self.max_batch_inputs = max_batch_inputs
        self.max_batch_tokens = max_batch_tokens
        self.max_concurrency = max_concurrency
        self.rpm = rpm
        self.tpm = tpm
        self.long_inputs: LongPolicy = long_inputs
        self.empty_inputs: EmptyPolicy = empty_inputs
        self.invalid_vectors: InvalidPolicy = invalid_vectors
        self.encoding_format: EncodingFormat = encoding_format
        self.progress = progress
        self.clock: Callable[[], float] = clock or time.monotonic
        self.sleep = sleep
        self._cache_arg = cache
        self._cache: EmbeddingCache | None = cache if isinstance(cache, EmbeddingCache) else None
        self._cache_lock = threading.Lock()

    def __repr__(self) -> str:
        dims = f", dimensions={self.dimensions}" if self.dimensions is not None else ""
        return f"{type(self).__name__}(model={self.model!r}{dims}, cache={self.cache_path!r})"

    # --- the cache --------------------------------------------------------------------------------------------

    @property
    def cache(self) -> EmbeddingCache | None:
        """The cache in use (opened on first use), or ``None`` when caching is off."""
        arg = self._cache_arg
        if arg is False:
            return None
        with self._cache_lock:
            if self._cache is None:
                path = None if arg is True or arg is None else arg
                assert not isinstance(path, bool | EmbeddingCache)
                self._cache = EmbeddingCache(path)
                logger.info("Embedding cache: %s", self._cache.path)
            return self._cache

    @property
    def cache_path(self) -> str | None:
        """Where the cache lives (``None`` when off); does not open it."""
        arg = self._cache_arg
        if arg is False:
            return None
        if isinstance(arg, EmbeddingCache):
            return str(arg.path)
        if arg is True or arg is None:
            from ._cache import default_cache_path

            return str(default_cache_path())
        return str(arg)

    def _close_cache(self) -> None:
        with self._cache_lock:
            if self._cache is not None and self._cache is not self._cache_arg:  # opened here, not passed in
                self._cache.close()
                self._cache = None

    # --- planning ---------------------------------------------------------------------------------------------

    @property
    def expected_dim(self) -> int | None:
        """The vector size, when known before the first response."""
        return self.dimensions or self.info.dimensions

    def request_max_tokens(self) -> int:
        """Tokens per request, within the API's limit, ``max_batch_tokens`` and ``tpm``."""
        cap = min(self.max_batch_tokens, default_catalog().max_tokens_per_request)
        if self.tpm is not None:
            cap = min(cap, int(self.tpm))
        return max(1, cap)

    def request_max_inputs(self) -> int:
        """Inputs per request."""
        return min(self.max_batch_inputs, default_catalog().max_inputs_per_request)

    @staticmethod
    def _as_list(texts: Iterable[str]) -> list[str]:
        if isinstance(texts, str):
            raise InvalidInputError(
                "embed() takes a list of texts, not one string; for one text use embed_one(text) or embed([text])",
                index=0,
            )
        if isinstance(texts, list):
            return texts
        tolist = getattr(texts, "tolist", None)  # pandas Series, numpy arrays
        if callable(tolist):
            result = tolist()
            if isinstance(result, list):
                return result
        try:
            return list(texts)
        except TypeError as exc:
            raise InvalidInputError(
                f"embed() takes an iterable of strings, got {type(texts).__name__}", index=0
            ) from exc

    def plan(self, texts: Sequence[str], *, count_all: bool = True, max_input_tokens: int | None = None) -> Plan:
        """Check the inputs and apply the empty and long-input policies (no I/O). With ``count_all=False``
        only the texts that may be too long are counted now (see :func:`plan_inputs`)."""
        return plan_inputs(
            texts,
            tokenizer=self.tokenizer,
            max_input_tokens=max_input_tokens if max_input_tokens is not None else self.max_input_tokens,
            long_inputs=self.long_inputs,
            empty_inputs=self.empty_inputs,
            count_all=count_all,
        )

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts (exact in the model's encoding, or as ``tokenizer=`` / the estimate says)."""
        return self.tokenizer.count_batch(texts)

    @staticmethod
    def exact_counts_needed(state: RateState) -> bool | None:
        """Whether counting tokens exactly pays now: when a requests- or tokens-per-minute limit is known (given, or
        in the server's headers), full requests and an exact token budget save what is scarce. Without one, a
        text's UTF-8 length bounds its tokens well enough: requests packed by it stay within 300,000 tokens and
        the server's own ``usage`` gives the tokens billed. ``None`` until the first answer says which."""
        if state.capacity("tokens") is not None or state.capacity("requests") is not None:
            return True
        return False if state.quota.answered else None

    def counting_policy(self, state: RateState, gate: Any, feed: Feed) -> Callable[[], bool | None]:
        """For :meth:`EmbedJob.counted_chunks`: :meth:`exact_counts_needed`, waiting (in the counting thread) for
        the first answer while requests are out, so that no text is counted before it is known to pay."""

        def exact() -> bool | None:
            need = self.exact_counts_needed(state)
            with feed.lock:
                while need is None and not gate.stopped and (feed.outstanding or feed.front or feed.pending):
                    feed.changed.wait(0.05)
                    need = self.exact_counts_needed(state)
            return need

        return exact

    def tokens_billed(self, job: EmbedJob, batch: npt.NDArray[np.int64], usage: int | None) -> int:
        """The tokens of a request that came back: our exact count, else the server's ``usage``, else counted
        now."""
        if job.all_exact(batch):
            return job.batch_tokens(batch)
        if usage is not None:
            return usage
        return int(job.exact_counts(batch).sum())

    def new_job(self, plan: Plan, *, desc: str = "Embedding") -> EmbedJob:
        """The buffers and bookkeeping of one call, with the cache consulted."""
        job = EmbedJob(
            plan,
            model=self.model,
            cache_model=self.cache_model,
            dimensions=self.dimensions,
            dim=self.expected_dim,
            cache=self.cache,
            progress=self.progress,
            desc=desc,
            count=self.count_tokens,
            bounded_by_bytes=isinstance(self.tokenizer, TiktokenCounter),
        )
        job.load_cache()
        logger.info(
            "Embedding %d texts with %s: %d distinct, %d cached, %d to send",
            plan.n,
            self.model,
            plan.n_units,
            job.cached,
            plan.n_units - job.cached,
        )
        return job

    def create_kwargs(self, texts: list[str]) -> dict[str, Any]:
        """The arguments of one ``embeddings.create`` call."""
        kwargs: dict[str, Any] = {"input": texts, "model": self.model, "encoding_format": self.encoding_format}
        if self.dimensions is not None:
            kwargs["dimensions"] = self.dimensions
        return kwargs

    def request_kwargs(self, texts: list[str]) -> dict[str, Any]:
        """The arguments of one ``embeddings.create`` call as sent: the texts go as ``extra_body``, which the SDK
        sends as given, so that it does not walk the list to convert each string (27 ms per 2,048 texts)."""
        kwargs = self.create_kwargs([])
        kwargs["extra_body"] = {"input": texts}
        return kwargs

    def too_long_for_server(
        self, job: EmbedJob, units: list[int], message: str, limit: int | None
    ) -> InputTooLongError:
        """The error for inputs the server refused as too long although our count said they fit."""
        inputs = sorted({job.first_input_of(u) for u in units})
        index = inputs[0]
        tokens = int(job.exact_counts(np.asarray(units[:1], dtype=np.int64))[0])
        others = f" ({len(inputs) - 1} more input(s) too: index {_describe(inputs[1:])})" if len(inputs) > 1 else ""
        server = f"{limit} tokens by its own count" if limit else "its limit"
        return InputTooLongError(
            f"the server refused input {index} as too long for it ({message.strip()[:300]}){others}; we count "
            f"{tokens} tokens with {self.tokenizer.name}, within the {self.max_input_tokens} assumed, but the "
            f"server allows {server}. Pass long_inputs='truncate' or 'chunk' (pieces are then cut to fit what the "
            "server accepts), or max_input_tokens= with the server's limit; tokenizer= the model's own tokenizer "
            "makes the counts exact. Everything else was embedded and cached.",
            index=index,
            tokens=tokens,
            limit=limit or self.max_input_tokens,
        )

    def too_large_for_tpm(self, job: EmbedJob, unit: int, cap: float) -> EmbeddingError:
        """The error for one input larger than the whole tokens-per-minute budget."""
        index = job.first_input_of(unit)
        tokens = int(job.exact_counts(np.asarray([unit], dtype=np.int64))[0])
        return EmbeddingError(
            f"input {index} has {tokens} tokens, more than the tokens-per-minute limit "
            f"({int(cap)}) admits in one request; raise the limit, or lower the model's max_input_tokens with "
            "catalog.override_embedding_model() and use long_inputs='chunk'."
        )

    def assemble(self, job: EmbedJob) -> EmbeddingResult:
        """The result of a finished job (no policy applied yet)."""
        return job.finish(
            empty_inputs=self.empty_inputs, pieces=self.long_inputs == "pieces", default_dim=self.expected_dim
        )

    def finish(self, job: EmbedJob) -> EmbeddingResult:
        """Assemble the result and apply the ``invalid_vectors`` policy."""
        return self.check(self.assemble(job))

    def check(self, result: EmbeddingResult) -> EmbeddingResult:
        """Log the call's statistics and apply the ``invalid_vectors`` policy."""
        st = result.stats
        logger.info(
            "Embedded %d texts: %d requests, %d tokens, %d cached, %d rate-limited, %.1f s",
            st.inputs,
            st.requests,
            st.tokens,
            st.cached,
            st.rate_limited,
            st.seconds,
        )
        if st.timeouts:
            logger.warning(
                "%d request(s) timed out and were sent again smaller: up to %d tokens may have been billed twice",
                st.timeouts,
                st.rebilled_tokens,
            )
        if result.invalid.any():
            bad = np.flatnonzero(result.invalid).tolist()
            message = (
                f"{len(bad)} embedding(s) came back non-finite or all zero: input {_describe(bad)}. They were not "
                "cached, so a rerun asks for them again"
            )
            if self.invalid_vectors == "error":
                raise InvalidEmbeddingError(
                    message + "; pass invalid_vectors='warn' to get them flagged in result.invalid instead.",
                    indices=bad,
                    result=result,
                )
            warnings.warn(message + "; see result.invalid.", InvalidEmbeddingWarning, stacklevel=4)
        return result

    @staticmethod
    def output(result: EmbeddingResult, empty_inputs: EmptyPolicy) -> npt.NDArray[np.float32]:
        """What ``embed()`` returns: every row, or only the non-empty ones under ``empty_inputs="skip"``."""
        if empty_inputs == "skip" and result.empty.any():
            return result.vectors[~result.empty]
        return result.vectors

    # --- the run: what the sync and async embedders share ------------------------------------------------------

    def provider_of(self, client: Any) -> str:
        """``openai``, ``azure`` or ``compatible`` (the client's ``provider``)."""
        provider = getattr(client, "provider", "openai")
        return provider if provider in ("openai", "azure", "compatible") else "openai"

    def server(self, client: Any) -> ServerState:
        """What is known about this model on ``client`` (request sizes, quota), kept for the client's lifetime."""
        check_deployment(client, self.model)
        catalog = default_catalog()
        return server_state(
            client,
            self.model,
            provider=self.provider_of(client),
            max_inputs=catalog.max_inputs_per_request,
            max_tokens=catalog.max_tokens_per_request,
        )

    def note_unknown_model(self, client: Any) -> None:
        """One warning per client and model for a model the catalog does not know."""
        if self.known_model:
            return
        state = self.server(client)
        if state.warned_unknown_model:
            return
        state.warned_unknown_model = True
        how = (
            f"counted with {self.tokenizer.name}"
            if self.tokenizer.exact
            else f"estimated ({self.tokenizer.name}; for exact counts pass tokenizer= with the model's own tokenizer "
            "or its tiktoken encoding)"
        )
        logger.warning(
            "Embedding model %r is not in finetune_embed's catalog (a compatible server's model?): its vector size "
            "is taken from the first response, tokens are %s, %d tokens per input are assumed (max_input_tokens=), "
            "and no price is known. Pass base_model= if it is an OpenAI model under another name.",
            self.base_model,
            how,
            self.max_input_tokens,
        )

    def new_context(self, job: EmbedJob, state: ServerState, client: Any) -> RunContext:
        """The bookkeeping of one run against ``client``."""
        base = _read_timeout(client)
        policy = getattr(client, "retry", None)
        longest = getattr(policy, "max_elapsed", None)
        max_timeout = None if base is None else max(base, float(longest) if longest else 16.0 * base)
        return RunContext(
            sizer=state.sizer,
            feedback=Feedback(job.set_status, self.clock),
            unit_tokens=job.unit_tokens,
            exact_total=job.exact_total,
            base_timeout=base,
            max_timeout=max_timeout,
            max_rebilled_tokens=self.max_rebilled_tokens,
        )

    def request_limits(self, ctx: RunContext, gate: Any, trial: bool = True) -> tuple[int, int]:
        """``(inputs, tokens)`` for the next request: the adaptive size within the user's caps (larger than any
        that came back only for the one ``trial`` request), no more than the token budget can ever admit, and,
        when the window has room for a sizeable request now, no more than that room (so each minute's budget is
        filled)."""
        inputs, tokens = ctx.sizer.limits(self.request_max_inputs(), self.request_max_tokens(), trial=trial)
        cap = gate.max_request_tokens()
        if cap < tokens:
            tokens = max(1, int(cap))
        room = gate.available_tokens()
        if room < tokens and room >= 0.25 * cap:
            tokens = max(1, int(room))
        return inputs, tokens

    def attempt_failed(self, exc: BaseException, gate: Any, tokens: int, entries: Any, sent_at: float) -> None:
        """Inside an attempt: turn what the server said into the outcome the run handles (raises it), or return
        to let the retry policy see ``exc``."""
        import openai

        if isinstance(exc, openai.RateLimitError):
            if getattr(exc, "code", None) == "insufficient_quota":
                gate.stop()  # before the slot is freed: no other request may start (a billing stop)
                return
            response = getattr(exc, "response", None)
            limits = rate_limits_of(response.headers) if response is not None else None
            message = str(getattr(exc, "message", "") or exc)
            too_large = request_too_large_limit(message)
            if too_large is not False:
                gate.refund(entries)
                raise RequestTooLarge(too_large) from exc
            if limits is None or not limits.known:
                limits = limits_from_message(message, getattr(exc, "type", None)) or limits
            gate.report_rate_limited(limits, retry_after_seconds(exc), tokens, entries, sent_at)
            raise RateLimited(exc) from exc
        if is_timeout(exc):
            raise TimedOut(str(exc)) from exc
        refused = classify_status_error(exc)
        if refused is not None:
            if isinstance(refused, SizeRefused):
                gate.refund(entries)  # refused for its size before any work: it spent none of the quota
            raise refused from exc

    def settle_failure(
        self,
        ctx: RunContext,
        feed: Feed,
        job: EmbedJob,
        gate: Any,
        batch: npt.NDArray[np.int64],
        tokens: int,
        timeout: float | None,
        exc: BaseException,
    ) -> bool:
        """After a request ended without vectors: requeue what to send again; ``False`` if ``exc`` is not one the
        run handles (the caller raises it)."""
        if isinstance(exc, RateLimited):
            with ctx.lock:
                ctx.consecutive_429 += 1
                rounds = ctx.consecutive_429
            if rounds > MAX_CONSECUTIVE_429:
                raise map_openai_error(exc.error) from exc.error
            feed.push_front([batch])
            return True
        if isinstance(exc, RequestTooLarge):
            if exc.limit:
                gate.learn(RateLimits(limit_tokens=exc.limit))
            else:
                ctx.sizer.on_size_error(SizeLimit(), int(batch.size), tokens)
            if batch.size == 1 and (exc.limit is None or tokens > exc.limit):
                raise self.too_large_for_tpm(job, int(batch[0]), exc.limit or tokens)
            feed.push_front([batch])
            with job.lock:
                job.splits += 1
            return True
        if isinstance(exc, TimedOut):
            gate.report_timeout()
            billed = tokens if job.all_exact(batch) else int(job.exact_counts(batch).sum())
            feed.push_front(ctx.on_timeout(batch, tokens, timeout, billed=billed), mergeable=False)
            return True
        if isinstance(exc, SizeRefused):
            with ctx.lock:
                ctx.size_errors += 1
            limit = exc.limit
            ctx.sizer.on_size_error(limit, int(batch.size), tokens)
            if limit.is_input_limit or batch.size == 1:
                self._one_too_long(ctx, feed, job, batch, exc)
                return True
            ctx.feedback.note(
                f"the server refused {batch.size} inputs in one request ({exc.message.strip()[:160]}); sending at "
                f"most {ctx.sizer.hard_inputs} per request from now on"
            )
            feed.push_front([batch])
            with job.lock:
                job.splits += 1
            return True
        if isinstance(exc, BadRequestError) and too_many_tokens(exc):
            if batch.size == 1:
                limit = _context_limit(exc.message)
                self._one_too_long(ctx, feed, job, batch, SizeRefused(limit, exc.message, 400))
                return True
            logger.warning("The server refused %d inputs (%d tokens) as too many tokens; splitting", batch.size, tokens)
            feed.push_front(split_batch(job, batch), mergeable=False)
            with job.lock:
                job.splits += 1
            return True
        return False

    def _one_too_long(
        self, ctx: RunContext, feed: Feed, job: EmbedJob, batch: npt.NDArray[np.int64], exc: SizeRefused
    ) -> None:
        """An input the server finds too long: find it (halve the request) and set it aside."""
        if batch.size > 1:
            feed.push_front(split_batch(job, batch), mergeable=False)
            with job.lock:
                job.splits += 1
            return
        unit = int(batch[0])
        if exc.limit.given:
            ctx.sizer.note_ratio(exc.limit.given, int(job.exact_counts(batch)[0]))
        with ctx.lock:
            ctx.too_long[unit] = exc

    def settle_success(
        self, ctx: RunContext, job: EmbedJob, batch: npt.NDArray[np.int64], tokens: int, latency: float
    ) -> None:
        """After a request brought its vectors back."""
        with ctx.lock:
            ctx.consecutive_429 = 0
            ctx.sent_tokens += tokens
        ctx.sizer.on_success(int(batch.size), tokens, latency, ctx.base_timeout)

    def close_run(self, job: EmbedJob, ctx: RunContext, state: RateState) -> None:
        """Copy the run's statistics into the job."""
        with job.lock:
            job.rate_limited = state.rate_limited
            job.timeouts = ctx.timeouts
            job.rebilled_tokens = ctx.rebilled_tokens
            job.size_errors = ctx.size_errors

    def too_long_plan(
        self, items: list[str], job: EmbedJob, ctx: RunContext
    ) -> tuple[list[int], int]:
        """For inputs a server refused as too long: raise under ``long_inputs="error"``, else the inputs to embed
        again and the per-input limit (in our count) to cut them to."""
        units = sorted(ctx.too_long)
        first = ctx.too_long[units[0]]
        if self.long_inputs == "error":
            raise self.too_long_for_server(job, units, first.message, ctx.sizer.input_limit)
        limit = ctx.sizer.input_limit_ours()
        smallest = int(job.exact_counts(np.asarray(units, dtype=np.int64)).min())
        if limit is None or limit >= smallest:
            limit = max(1, smallest // 2)
        affected = set(units)
        inputs = [
            i
            for i in range(job.plan.n)
            if int(job.plan.input_unit[i]) in affected or any(r.unit in affected for r in job.plan.multi.get(i, ()))
        ]
        logger.info(
            "The server refused %d input(s) as too long for it; cutting them to %d tokens (%s) and embedding them "
            "again",
            len(inputs),
            limit,
            self.long_inputs,
        )
        return inputs, min(limit, self.max_input_tokens)

    # --- estimate ---------------------------------------------------------------------------------------------

    def _estimate(
        self, texts: Iterable[str], *, rpm: int | None = None, tpm: int | None = None
    ) -> EmbeddingEstimate:
        items = self._as_list(texts)
        plan = self.plan(items)
        cache = self.cache
        cached_units: set[int] = set()
        if cache is not None and plan.n_units:
            from ._cache import text_key

            keys = [text_key(t) for t in plan.unit_texts]
            present = cache.present(self.cache_model, self.dimensions, keys)
            cached_units = {u for u, k in enumerate(keys) if k in present}
        counts = [c for u, c in enumerate(plan.unit_tokens) if u not in cached_units]
        tokens = sum(counts)
        cap = self.request_max_tokens()
        clipped = [min(c, cap) for c in counts]
        requests = len(pack_by_tokens(clipped, max_inputs=self.request_max_inputs(), max_tokens=cap))
        price = self.info.price_per_1m
        batch_price = self.info.batch_price_per_1m
        rpm = rpm if rpm is not None else self.rpm
        tpm = tpm if tpm is not None else self.tpm
        bounds = []
        if tpm:
            bounds.append(max(0.0, tokens - tpm) / tpm * 60.0)
        if rpm:
            bounds.append(max(0.0, requests - rpm) / rpm * 60.0)
        catalog = default_catalog()
        return EmbeddingEstimate(
            model=self.model,
            dimensions=self.dimensions,
            inputs=plan.n,
            empty=int(plan.empty.sum()),
            long=len(plan.long),
            unique=plan.n_units,
            cached=len(cached_units),
            tokens=tokens,
            requests=requests,
            cost_standard=None if price is None else tokens * price / 1e6,
            cost_batch=None if batch_price is None else tokens * batch_price / 1e6,
            min_seconds=max(bounds) if bounds else None,
            price_as_of=catalog.as_of.isoformat() if catalog.as_of else None,
        )

