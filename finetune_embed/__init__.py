"""finetune_embed: fine-tune OpenAI and Azure OpenAI models and build search on OpenAI embeddings.

    from finetune_embed import Client, Dataset, JobManager, Embedder, EmbeddingIndex

Public names are loaded lazily: ``import finetune_embed`` imports neither ``openai`` nor ``numpy``; each name is
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import AsyncClient, Client, RateLimits, RawResponse
    from ._exceptions import (
        APIConnectionError,
        APIError,
        APIResponseValidationError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConfigError,
        ConflictError,
        DatasetError,
        DatasetFormatError,
        DatasetValidationError,
        DimensionMismatchError,
        DuplicateIdError,
        EmbeddingError,
        EmbeddingIndexError,
        EmbeddingResponseError,
        EmptyInputError,
        FinetuneEmbedError,
        IndexFileError,
        InputTooLongError,
        InvalidVectorError,
        JobCancelledError,
        JobError,
        JobFailedError,
        JobTimeoutError,
        MissingAPIKeyError,
        NotFoundError,
        OpenAISDKError,
        PermissionDeniedError,
        QuotaExceededError,
        RateLimitError,
        ServerError,
        TokenizerUnavailableError,
        UnknownIdError,
        UnprocessableEntityError,
        UnsupportedModelError,
    )
    from .catalog import ModelCatalog
    from .retry import RetryPolicy
    from .tokenizer import Tokenizer

_EXCEPTIONS = (
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "DatasetError",
    "DatasetFormatError",
    "DatasetValidationError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "EmbeddingError",
    "EmbeddingIndexError",
    "EmbeddingResponseError",
    "EmptyInputError",
    "FinetuneEmbedError",
    "IndexFileError",
    "InputTooLongError",
    "InvalidVectorError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "MissingAPIKeyError",
    "NotFoundError",
    "OpenAISDKError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ServerError",
    "TokenizerUnavailableError",
    "UnknownIdError",
    "UnprocessableEntityError",
    "UnsupportedModelError",
)

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "AsyncClient": "._client",
    "Client": "._client",
    "RateLimits": "._client",
    "RawResponse": "._client",
    "ModelCatalog": ".catalog",
    "RetryPolicy": ".retry",
    "Tokenizer": ".tokenizer",
    **dict.fromkeys(_EXCEPTIONS, "._exceptions"),
}

__all__ = sorted([*_LAZY, "__version__"], key=str.casefold)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("finetune-embed")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0+unknown"
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'finetune_embed' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    if getattr(value, "__module__", "").startswith("finetune_embed."):
        try:
            value.__module__ = "finetune_embed"
        except (AttributeError, TypeError):  # pragma: no cover
            pass
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
