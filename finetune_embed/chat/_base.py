"""What the sync and async chat clients share: settings, the cache, request building and response checks."""

from __future__ import annotations

import functools
import inspect
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._client import AsyncClient, Client
from .._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    AuthenticationError,
    ConfigError,
    FinetuneEmbedError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
)
from .._logging import get_logger
from ..catalog import default_catalog
from ..tokenizer import Tokenizer, encoding_name_for_model
from ._cache import ChatCache
from ._request import ChatRequest, prompt_tokens
from ._types import ChatResult

__all__ = ["CacheArg", "ChatBase", "RequestLike", "is_per_request_error"]

logger = get_logger("chat")

CacheArg = ChatCache | str | os.PathLike[str] | bool | None
RequestLike = ChatRequest | Mapping[str, Any]


@functools.cache
def _sdk_parameters() -> frozenset[str]:
    """The body fields ``sdk.chat.completions.create`` takes as keyword arguments (others go in ``extra_body``)."""
    from openai.resources.chat.completions import Completions

    names = set(inspect.signature(Completions.create).parameters)
    return frozenset(names - {"self", "extra_headers", "extra_query", "extra_body", "timeout"})


def sdk_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as keyword arguments of the SDK's ``create`` (unknown fields passed through ``extra_body``)."""
    known = _sdk_parameters()
    kwargs = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def is_per_request_error(exc: BaseException) -> bool:
    """Whether an error concerns one request only (a 400 for its content, a 5xx that outlasted the retries) rather
    than every request alike (a bad key, a missing model, no quota, no network)."""
    if not isinstance(exc, APIError):
        return False
    return not isinstance(
        exc, AuthenticationError | PermissionDeniedError | NotFoundError | QuotaExceededError | APIConnectionError
    )


def server_namespace(client: Client | AsyncClient) -> str:
    """Who answers this client's requests, for the cache key: an in-process ``FakeOpenAI`` (each instance its
    own), the Azure endpoint, or the base URL (OpenAI's by default)."""
    transport = getattr(client, "_transport", None)
    fake = getattr(transport, "fake", None)
    instance = getattr(fake, "instance_id", None)
    if isinstance(instance, str):
        return f"finetune-embed-fake:{instance}"
    if client.provider == "azure":
        return f"azure:{client.azure_endpoint}"
    return (client.base_url or "https://api.openai.com/v1").rstrip("/")


def parse_body(text: str) -> dict[str, Any]:
    """The response body, checked to hold at least one choice with a message."""
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise APIResponseValidationError(f"the chat completion response is not JSON: {text[:200]!r}") from exc
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise APIResponseValidationError(f"the chat completion response has no choices: {text[:200]!r}")
    if not isinstance(choices[0].get("message"), dict):
        raise APIResponseValidationError(f"the chat completion's first choice has no message: {text[:200]!r}")
    assert isinstance(body, dict)
    return body


class ChatBase:
    """Settings and the I/O-free half of :class:`~finetune_embed.chat.ChatCompletions`."""

    def __init__(
        self,
        *,
        cache: CacheArg = True,
        max_concurrency: int = 4,
        rpm: int | None = None,
        tpm: int | None = None,
        progress: bool | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or None, got {value!r}")
        if not (cache is None or isinstance(cache, bool | str | os.PathLike | ChatCache)):
            raise ConfigError(f"cache must be True, False, a path or a ChatCache, got {type(cache).__name__}")
        self.max_concurrency = max_concurrency
        self.rpm = rpm
        self.tpm = tpm
        self.progress = progress
        self.clock: Callable[[], float] = clock or time.monotonic
        self.sleep = sleep
        self._cache_arg = cache
        self._cache: ChatCache | None = cache if isinstance(cache, ChatCache) else None
        self._cache_lock = threading.Lock()
        self._tokenizers: dict[str, Tokenizer] = {}

    def _options(self) -> dict[str, Any]:
        return {
            "cache": self._cache if self._cache is not None else self._cache_arg,
            "max_concurrency": self.max_concurrency,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "progress": self.progress,
            "clock": self.clock,
            "sleep": self.sleep,
        }

    # --- the cache --------------------------------------------------------------------------------------------

    @property
    def cache_path(self) -> str | None:
        """Where the cache lives (``None`` when off); does not open it."""
        from ._cache import default_chat_cache_path

        arg = self._cache_arg
        if arg is False:
            return None
        if self._cache is not None:
            return str(self._cache.path)
        return str(default_chat_cache_path() if arg is True or arg is None else arg)

    @property
    def cache(self) -> ChatCache | None:
        """The response cache (opened on first use), or ``None`` when caching is off."""
        arg = self._cache_arg
        if arg is False:
            return None
        with self._cache_lock:
            if self._cache is None:
                path = None if arg is True or arg is None else arg
                assert not isinstance(path, bool | ChatCache)
                self._cache = ChatCache(path)
                logger.info("Chat response cache: %s", self._cache.path)
            return self._cache

    def _close_cache(self) -> None:
        with self._cache_lock:
            if self._cache is not None and self._cache is not self._cache_arg:
                self._cache.close()
                self._cache = None

    # --- requests ---------------------------------------------------------------------------------------------

    @staticmethod
    def as_request(item: RequestLike) -> ChatRequest:
        """A :class:`ChatRequest` from one, or from a mapping with ``model``, ``messages`` and other fields."""
        if isinstance(item, ChatRequest):
            return item
        if isinstance(item, Mapping):
            fields = dict(item)
            if "model" not in fields or "messages" not in fields:
                raise ConfigError("each request needs 'model' and 'messages' (and any other body fields)")
            return ChatRequest.build(fields.pop("model"), fields.pop("messages"), **fields)
        raise ConfigError(f"a request must be a ChatRequest or a mapping, got {type(item).__name__}")

    def _tokenizer(self, model: str) -> Tokenizer:
        tok = self._tokenizers.get(model)
        if tok is None:
            tok = self._tokenizers[model] = Tokenizer(encoding_name_for_model(model))
        return tok

    def estimate_tokens(self, request: ChatRequest) -> int:
        """The tokens a request counts against a tokens-per-minute limit: its prompt (in the model's encoding, as
        OpenAI counts chat messages) plus the completion tokens it may produce (``max_completion_tokens`` × ``n``)."""
        tok = self._tokenizer(request.model)
        return prompt_tokens(request.messages, request.tools, tok.count) + request.max_output_tokens()

    @staticmethod
    def price(model: str) -> tuple[float | None, float | None]:
        """USD per 1M (input, output) tokens for ``model`` from the catalog (fine-tuned prices for ``ft:...``
        models); ``(None, None)`` when unknown."""
        info = default_catalog().find_fine_tune_model(model)
        if info is None:
            return None, None
        if model.startswith("ft:"):
            return info.ft_input_price_per_1m, info.ft_output_price_per_1m
        return info.input_price_per_1m, info.output_price_per_1m

    def cached_result(self, key: bytes | None) -> ChatResult | None:
        """The cached answer under ``key``, if any."""
        cache = self.cache if key is not None else None
        if cache is None or key is None:
            return None
        hit = cache.get(key)
        if hit is None:
            return None
        body, latency = hit
        try:
            return ChatResult.from_response(body, latency=latency, cached=True)
        except (KeyError, IndexError, TypeError, AttributeError):  # a body we never store: treat as missing
            cache.delete(key)
            return None

    def store(self, key: bytes | None, model: str, body: dict[str, Any], latency: float) -> None:
        """Keep a fresh answer (never raises for a cache that cannot be written: the answer is still returned)."""
        cache = self.cache if key is not None else None
        if cache is None or key is None:
            return
        try:
            cache.put(key, model, body, latency=latency)
        except FinetuneEmbedError as exc:
            logger.warning("Could not store a chat response in the cache: %s", exc)
