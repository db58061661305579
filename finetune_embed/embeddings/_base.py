"""What the sync and async embedders share: settings, validation, planning, estimates and error rules."""

from __future__ import annotations

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
)
from .._logging import get_logger
from ..batching import pack_by_tokens
from ..catalog import EmbeddingModelInfo, default_catalog
from ..tokenizer import Tokenizer
from ._cache import EmbeddingCache
from ._job import EmbedJob
from ._plan import EMPTY_POLICIES, LONG_POLICIES, EmptyPolicy, LongPolicy, Plan, plan_inputs
from ._types import EmbeddingEstimate, EmbeddingResult, InvalidEmbeddingError, InvalidEmbeddingWarning

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
    ) -> None:
        catalog = default_catalog()
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model must be a non-empty string, got {model!r}")
        self.model = model
        self.base_model = base_model or model
        self.info: EmbeddingModelInfo = catalog.embedding_model(self.base_model)
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
        self.tokenizer = Tokenizer(self.info.encoding)
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

    def plan(self, texts: Sequence[str], *, count_all: bool = True) -> Plan:
        """Check the inputs and apply the empty and long-input policies (no I/O). With ``count_all=False``
        only the texts that may be too long are counted now (see :func:`plan_inputs`)."""
        return plan_inputs(
            texts,
            tokenizer=self.tokenizer,
            max_input_tokens=self.info.max_input_tokens,
            long_inputs=self.long_inputs,
            empty_inputs=self.empty_inputs,
            count_all=count_all,
        )

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Exact token counts in the model's encoding."""
        encode = self.tokenizer.encoding.encode_ordinary
        return [len(encode(t)) for t in texts]

    def new_job(self, plan: Plan, *, desc: str = "Embedding") -> EmbedJob:
        """The buffers and bookkeeping of one call, with the cache consulted."""
        job = EmbedJob(
            plan,
            model=self.model,
            dimensions=self.dimensions,
            dim=self.expected_dim,
            cache=self.cache,
            progress=self.progress,
            desc=desc,
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

    def single_too_long(self, job: EmbedJob, unit: int, exc: BadRequestError) -> InputTooLongError:
        """The error for one input the server finds too long although our count said it fits."""
        index = job.first_input_of(unit)
        tokens = int(job.unit_tokens[unit])
        return InputTooLongError(
            f"the server refused input {index} as too long ({exc.message}); it has {tokens} tokens in "
            f"{self.tokenizer.encoding_name}, within the catalog's {self.info.max_input_tokens}. If this server "
            "counts differently, lower the limit with catalog.override_embedding_model(model, max_input_tokens=...) "
            "and pass long_inputs='truncate' or 'chunk'.",
            index=index,
            tokens=tokens,
            limit=self.info.max_input_tokens,
        )

    def too_large_for_tpm(self, job: EmbedJob, unit: int, cap: float) -> EmbeddingError:
        """The error for one input larger than the whole tokens-per-minute budget."""
        index = job.first_input_of(unit)
        return EmbeddingError(
            f"input {index} has {int(job.unit_tokens[unit])} tokens, more than the tokens-per-minute limit "
            f"({int(cap)}) admits in one request; raise the limit, or lower the model's max_input_tokens with "
            "catalog.override_embedding_model() and use long_inputs='chunk'."
        )

    def finish(self, job: EmbedJob) -> EmbeddingResult:
        """Assemble the result and apply the ``invalid_vectors`` policy."""
        result = job.finish(
            empty_inputs=self.empty_inputs, pieces=self.long_inputs == "pieces", default_dim=self.expected_dim
        )
        logger.info(
            "Embedded %d texts: %d requests, %d tokens, %d cached, %d rate-limited, %.1f s",
            result.stats.inputs,
            result.stats.requests,
            result.stats.tokens,
            result.stats.cached,
            result.stats.rate_limited,
            result.stats.seconds,
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
            present = cache.present(self.model, self.dimensions, keys)
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

