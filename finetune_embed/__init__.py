"""finetune_embed: fine-tune OpenAI and Azure OpenAI models and build search on OpenAI embeddings.

    from finetune_embed import Client, Dataset, JobManager, Embedder, EmbeddingIndex

Public names are loaded lazily: ``import finetune_embed`` imports neither ``openai`` nor ``numpy``; each name is
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import AsyncClient as AsyncClient
    from ._client import Client as Client
    from ._client import RateLimits as RateLimits
    from ._client import RawResponse as RawResponse
    from ._exceptions import APIConnectionError as APIConnectionError
    from ._exceptions import APIError as APIError
    from ._exceptions import APIResponseValidationError as APIResponseValidationError
    from ._exceptions import APIStatusError as APIStatusError
    from ._exceptions import APITimeoutError as APITimeoutError
    from ._exceptions import AuthenticationError as AuthenticationError
    from ._exceptions import BadRequestError as BadRequestError
    from ._exceptions import ConfigError as ConfigError
    from ._exceptions import ConflictError as ConflictError
    from ._exceptions import DatasetError as DatasetError
    from ._exceptions import DatasetFormatError as DatasetFormatError
    from ._exceptions import DatasetValidationError as DatasetValidationError
    from ._exceptions import DimensionMismatchError as DimensionMismatchError
    from ._exceptions import DuplicateIdError as DuplicateIdError
    from ._exceptions import EmbeddingError as EmbeddingError
    from ._exceptions import EmbeddingIndexError as EmbeddingIndexError
    from ._exceptions import EmbeddingResponseError as EmbeddingResponseError
    from ._exceptions import EmptyInputError as EmptyInputError
    from ._exceptions import FinetuneEmbedError as FinetuneEmbedError
    from ._exceptions import IndexFileError as IndexFileError
    from ._exceptions import InputTooLongError as InputTooLongError
    from ._exceptions import InvalidVectorError as InvalidVectorError
    from ._exceptions import JobCancelledError as JobCancelledError
    from ._exceptions import JobError as JobError
    from ._exceptions import JobFailedError as JobFailedError
    from ._exceptions import JobTimeoutError as JobTimeoutError
    from ._exceptions import MissingAPIKeyError as MissingAPIKeyError
    from ._exceptions import NotFoundError as NotFoundError
    from ._exceptions import OpenAISDKError as OpenAISDKError
    from ._exceptions import PermissionDeniedError as PermissionDeniedError
    from ._exceptions import QuotaExceededError as QuotaExceededError
    from ._exceptions import RateLimitError as RateLimitError
    from ._exceptions import ServerError as ServerError
    from ._exceptions import TokenizerUnavailableError as TokenizerUnavailableError
    from ._exceptions import UnknownIdError as UnknownIdError
    from ._exceptions import UnprocessableEntityError as UnprocessableEntityError
    from ._exceptions import UnsupportedModelError as UnsupportedModelError
    from .catalog import ModelCatalog as ModelCatalog
    from .retry import RetryPolicy as RetryPolicy
    from .tokenizer import Tokenizer as Tokenizer

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
