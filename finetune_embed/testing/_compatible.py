"""OpenAI-compatible embedding servers, as stand-ins: how Ollama, vLLM, text-embeddings-inference, LM Studio, the
llama.cpp server and a LiteLLM proxy differ from OpenAI (``/work/shared/reference/compatible-servers.md``).

A :class:`ServerProfile` makes a :class:`~finetune_embed.testing.FakeOpenAI` answer ``/v1/embeddings`` the way one
of them does: which model names it serves and their sizes, its batch and per-input limits with its exact status
codes and error bodies, whether it sends rate-limit headers or answers base64, and how long it computes
(:class:`Processing`: per request, per input, per token, on a number of workers; requests queue for a worker, so
a CPU server's latency grows with what is in flight).

>>> from finetune_embed.testing import FakeOpenAI
>>> tei = FakeOpenAI(server="tei")
>>> tei.profile.max_batch_inputs
32
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .._exceptions import InvalidArgumentError
from ._errors import ApiError

__all__ = ["PROFILES", "Processing", "ServerProfile", "ServerQueue", "profile_named"]

ErrorStyle = Literal["openai", "tei", "llamacpp", "vllm", "ollama", "litellm"]


@dataclass(frozen=True)
class Processing:
    """How long a server computes one request: ``per_request + per_input * inputs + per_token * tokens`` seconds,
    on ``workers`` workers (requests wait for a free one, in arrival order)."""

    per_request: float = 0.0
    per_input: float = 0.0
    per_token: float = 0.0
    workers: int = 1

    def seconds(self, inputs: int, tokens: int) -> float:
        return self.per_request + self.per_input * inputs + self.per_token * tokens


class ServerQueue:
    """The server's workers on the fake clock: when each becomes free."""

    def __init__(self, processing: Processing) -> None:
        self.processing = processing
        self._free_at = [0.0] * max(1, processing.workers)
        self._lock = threading.Lock()

    def delay(self, arrival: float, inputs: int, tokens: int) -> float:
        """Seconds from ``arrival`` until the answer is ready (waiting for a worker, then computing)."""
        work = self.processing.seconds(inputs, tokens)
        with self._lock:
            i = min(range(len(self._free_at)), key=self._free_at.__getitem__)
            start = max(arrival, self._free_at[i])
            self._free_at[i] = start + work
            return start + work - arrival


@dataclass(frozen=True)
class ServerProfile:
    """How one OpenAI-compatible server behaves (see the module docstring).

    * ``models`` - model name -> dimensions it serves; ``any_model`` - the dimensions of any other name (``None``:
      other names get the server's 404).
    * ``max_batch_inputs`` - inputs per request before its size error; ``max_input_tokens`` - the server's own
      tokens per input before its size error, counted as ``token_ratio`` times cl100k_base.
    * ``error_style`` - the shape of its errors; ``rate_limit_headers`` - whether it sends ``x-ratelimit-*``;
      ``base64`` - whether it honours ``encoding_format="base64"`` (else it answers float lists).
    * ``openai_catalog`` - a proxy in front of OpenAI: OpenAI's models and limits apply.
    """

    name: str
    models: dict[str, int] = field(default_factory=dict)
    any_model: int | None = None
    max_batch_inputs: int | None = None
    max_input_tokens: int | None = None
    token_ratio: float = 1.0
    error_style: ErrorStyle = "openai"
    rate_limit_headers: bool = False
    base64: bool = True
    processing: Processing = field(default_factory=Processing)
    openai_catalog: bool = False

    def with_options(self, **changes: Any) -> ServerProfile:
        """A copy with some fields changed (e.g. ``max_batch_inputs=64`` for ``--max-client-batch-size 64``)."""
        return replace(self, **changes)

    def dimensions_of(self, model: str) -> int | None:
        """The size of ``model``'s vectors here, or ``None`` if the server does not serve it."""
        if model in self.models:
            return self.models[model]
        return self.any_model

    def server_tokens(self, cl100k_tokens: int) -> int:
        return math.ceil(cl100k_tokens * self.token_ratio)

    # --- errors, in each server's own words -----------------------------------------------------------------

    def unknown_model(self, model: str) -> ApiError:
        if self.error_style == "ollama":
            message = f'model "{model}" not found, try pulling it first'
            return ApiError(404, message, body={"error": {"message": message, "type": "api_error", "param": None,
                                                          "code": None}})
        if self.error_style == "vllm":
            message = f"The model `{model}` does not exist."
            return ApiError(404, message, body={"object": "error", "message": message, "type": "NotFoundError",
                                                "param": None, "code": 404})
        message = f"The model `{model}` does not exist or you do not have access to it."
        return ApiError(404, message, code="model_not_found")

    def batch_too_large(self, inputs: int) -> ApiError:
        limit = self.max_batch_inputs
        if self.error_style == "tei":
            message = f"batch size {inputs} > maximum allowed batch size {limit}"
            return ApiError(413, message, body={"error": message, "error_type": "Validation"})
        message = f"too many inputs in one request: {inputs} > {limit}"
        return ApiError(413, message, body={"error": {"message": message, "type": "invalid_request_error"}})

    def input_too_long(self, tokens: int) -> ApiError:
        limit = self.max_input_tokens
        if self.error_style == "tei":
            message = f"Input validation error: `inputs` must have less than {limit} tokens. Given: {tokens}"
            return ApiError(413, message, body={"error": message, "error_type": "Validation"})
        if self.error_style == "llamacpp":
            message = (
                f"input ({tokens} tokens) is too large to process. increase the physical batch size (current batch "
                f"size: {limit})"
            )
            return ApiError(500, message, body={"error": {"code": 500, "message": message, "type": "server_error"}})
        if self.error_style == "vllm":
            message = (
                f"This model's maximum context length is {limit} tokens. However, you requested {tokens} tokens in "
                "the input for embedding generation. Please reduce the length of the input."
            )
            return ApiError(400, message, body={"object": "error", "message": message, "type": "BadRequestError",
                                                "param": None, "code": 400})
        message = f"This model's maximum context length is {limit} tokens, however you requested {tokens} tokens."
        return ApiError(400, message)

    def rewrite_error(self, err: ApiError) -> ApiError:
        """A proxy's rewording of an upstream error (LiteLLM: ``litellm.RateLimitError: ...``, code as a string)."""
        if self.error_style != "litellm":
            return err
        kind = {429: "RateLimitError", 400: "BadRequestError", 404: "NotFoundError"}.get(err.status, "APIError")
        message = f"litellm.{kind}: {kind}: OpenAIException - {err.message}"
        headers = {k: v for k, v in err.headers.items() if not k.startswith("x-ratelimit-")}
        headers.update({f"llm_provider-{k}": v for k, v in err.headers.items() if k.startswith("x-ratelimit-")})
        body = {"error": {"message": message, "type": None, "param": None, "code": str(err.status)}}
        return ApiError(err.status, message, headers=headers, body=body)

    def rewrite_headers(self, headers: dict[str, str]) -> None:
        """A proxy's response headers: LiteLLM passes the provider's ``x-ratelimit-*`` on with a prefix."""
        if self.error_style != "litellm":
            return
        for name in [k for k in headers if k.startswith("x-ratelimit-")]:
            headers[f"llm_provider-{name}"] = headers.pop(name)


_CPU = Processing(per_request=0.005, per_input=0.06, workers=1)

#: the stand-ins; ``FakeOpenAI(server="tei")`` or ``profile_named("tei").with_options(...)``
PROFILES: dict[str, ServerProfile] = {
    # Hugging Face text-embeddings-inference: one model whatever the name, --max-client-batch-size 32,
    # --max-input-length 512 with truncation off; 413s with {"error", "error_type": "Validation"}
    "tei": ServerProfile(
        "tei", any_model=384, max_batch_inputs=32, max_input_tokens=512, token_ratio=1.3, error_style="tei",
        processing=Processing(per_request=0.005, per_input=0.02, workers=1),
    ),
    # llama.cpp's llama-server --embeddings: one input must fit the physical batch (-ub 512, its own tokenizer)
    "llamacpp": ServerProfile(
        "llamacpp", any_model=768, max_input_tokens=512, token_ratio=1.3, error_style="llamacpp", processing=_CPU,
    ),
    # LM Studio: llama.cpp underneath (the same 500), float lists only
    "lmstudio": ServerProfile(
        "lmstudio", any_model=768, max_input_tokens=512, token_ratio=1.3, error_style="llamacpp", base64=False,
        processing=_CPU,
    ),
    # Ollama's /v1/embeddings: the models it has pulled (others: 404), long inputs truncated, float lists, slow CPU
    "ollama": ServerProfile(
        "ollama", models={"nomic-embed-text": 768, "all-minilm": 384, "mxbai-embed-large": 1024},
        error_style="ollama", base64=False, processing=_CPU,
    ),
    # vLLM --task embed: only its served model name; OpenAI-shaped errors with "object": "error"
    "vllm": ServerProfile(
        "vllm", models={"BAAI/bge-small-en-v1.5": 384}, max_input_tokens=512, token_ratio=1.3, error_style="vllm",
        processing=Processing(per_request=0.02, per_input=0.03, workers=1),
    ),
    # a LiteLLM proxy in front of OpenAI: OpenAI's models and limits, its own error wording, provider headers renamed
    "litellm": ServerProfile("litellm", error_style="litellm", openai_catalog=True, rate_limit_headers=True),
}


def profile_named(name: str | ServerProfile) -> ServerProfile:
    """The profile called ``name`` (see :data:`PROFILES`)."""
    if isinstance(name, ServerProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown server profile {name!r}; known: {', '.join(sorted(PROFILES))}", argument="server"
        ) from None
