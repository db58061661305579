"""finetune_embed: fine-tune OpenAI and Azure OpenAI models and build search on OpenAI embeddings.

    from finetune_embed import Client, Dataset, JobManager, Embedder, EmbeddingIndex
    from finetune_embed import ChatCompletions, Evaluation

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
    from ._exceptions import BatchAPIError as BatchAPIError
    from ._exceptions import BatchTimeoutError as BatchTimeoutError
    from ._exceptions import CacheFileError as CacheFileError
    from ._exceptions import ConfigError as ConfigError
    from ._exceptions import ConflictError as ConflictError
    from ._exceptions import DatasetError as DatasetError
    from ._exceptions import DatasetFormatError as DatasetFormatError
    from ._exceptions import DatasetValidationError as DatasetValidationError
    from ._exceptions import DimensionMismatchError as DimensionMismatchError
    from ._exceptions import DuplicateIdError as DuplicateIdError
    from ._exceptions import EmbeddingCacheError as EmbeddingCacheError
    from ._exceptions import EmbeddingError as EmbeddingError
    from ._exceptions import EmbeddingIndexError as EmbeddingIndexError
    from ._exceptions import EmbeddingResponseError as EmbeddingResponseError
    from ._exceptions import EmbeddingTimeoutError as EmbeddingTimeoutError
    from ._exceptions import EmptyInputError as EmptyInputError
    from ._exceptions import FileAccessError as FileAccessError
    from ._exceptions import FileProcessingError as FileProcessingError
    from ._exceptions import FileProcessingTimeoutError as FileProcessingTimeoutError
    from ._exceptions import FinetuneEmbedError as FinetuneEmbedError
    from ._exceptions import IndexFileError as IndexFileError
    from ._exceptions import InputTooLongError as InputTooLongError
    from ._exceptions import InvalidArgumentError as InvalidArgumentError
    from ._exceptions import InvalidEmbeddingError as InvalidEmbeddingError
    from ._exceptions import InvalidInputError as InvalidInputError
    from ._exceptions import InvalidVectorError as InvalidVectorError
    from ._exceptions import ItemTooLargeError as ItemTooLargeError
    from ._exceptions import JobCancelledError as JobCancelledError
    from ._exceptions import JobError as JobError
    from ._exceptions import JobFailedError as JobFailedError
    from ._exceptions import JobTimeoutError as JobTimeoutError
    from ._exceptions import LineTooLongError as LineTooLongError
    from ._exceptions import MissingAPIKeyError as MissingAPIKeyError
    from ._exceptions import MissingDependencyError as MissingDependencyError
    from ._exceptions import NotFoundError as NotFoundError
    from ._exceptions import OpenAISDKError as OpenAISDKError
    from ._exceptions import PermissionDeniedError as PermissionDeniedError
    from ._exceptions import QuotaExceededError as QuotaExceededError
    from ._exceptions import RateLimitError as RateLimitError
    from ._exceptions import ReplicationLagError as ReplicationLagError
    from ._exceptions import ResultsUnavailableError as ResultsUnavailableError
    from ._exceptions import ServerError as ServerError
    from ._exceptions import TokenizerUnavailableError as TokenizerUnavailableError
    from ._exceptions import UnknownIdError as UnknownIdError
    from ._exceptions import UnprocessableEntityError as UnprocessableEntityError
    from ._exceptions import UnsupportedFilterError as UnsupportedFilterError
    from ._exceptions import UnsupportedModelError as UnsupportedModelError
    from .catalog import ModelCatalog as ModelCatalog
    from .chat import AsyncChatCompletions as AsyncChatCompletions
    from .chat import ChatCache as ChatCache
    from .chat import ChatCompletions as ChatCompletions
    from .chat import ChatResult as ChatResult
    from .dataset import Dataset as Dataset
    from .dataset import DatasetIssue as DatasetIssue
    from .dataset import DatasetSplits as DatasetSplits
    from .dataset import DatasetStats as DatasetStats
    from .dataset import IssueCode as IssueCode
    from .dataset import ValidationReport as ValidationReport
    from .embeddings import AsyncEmbedder as AsyncEmbedder
    from .embeddings import Embedder as Embedder
    from .embeddings import EmbeddingCache as EmbeddingCache
    from .embeddings import EmbeddingEstimate as EmbeddingEstimate
    from .embeddings import EmbeddingResult as EmbeddingResult
    from .evaluate import Candidate as Candidate
    from .evaluate import DatasetAnalysis as DatasetAnalysis
    from .evaluate import Evaluation as Evaluation
    from .evaluate import EvaluationReport as EvaluationReport
    from .finetuning import AsyncFileManager as AsyncFileManager
    from .finetuning import AsyncJobManager as AsyncJobManager
    from .finetuning import FileManager as FileManager
    from .finetuning import JobEstimate as JobEstimate
    from .finetuning import JobManager as JobManager
    from .finetuning import ModelRetirementWarning as ModelRetirementWarning
    from .finetuning import TrainingMetrics as TrainingMetrics
    from .index import BatchMatches as BatchMatches
    from .index import EmbeddingIndex as EmbeddingIndex
    from .index import Match as Match
    from .index import Matches as Matches
    from .index import VectorIndex as VectorIndex
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
    "BatchAPIError",
    "BatchTimeoutError",
    "CacheFileError",
    "ConfigError",
    "ConflictError",
    "DatasetError",
    "DatasetFormatError",
    "DatasetValidationError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "EmbeddingCacheError",
    "EmbeddingError",
    "EmbeddingIndexError",
    "EmbeddingResponseError",
    "EmbeddingTimeoutError",
    "EmptyInputError",
    "FileAccessError",
    "FileProcessingError",
    "FileProcessingTimeoutError",
    "FinetuneEmbedError",
    "IndexFileError",
    "InputTooLongError",
    "InvalidArgumentError",
    "InvalidEmbeddingError",
    "InvalidInputError",
    "InvalidVectorError",
    "ItemTooLargeError",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "LineTooLongError",
    "MissingAPIKeyError",
    "MissingDependencyError",
    "NotFoundError",
    "OpenAISDKError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ReplicationLagError",
    "ResultsUnavailableError",
    "ServerError",
    "TokenizerUnavailableError",
    "UnknownIdError",
    "UnprocessableEntityError",
    "UnsupportedFilterError",
    "UnsupportedModelError",
)

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "AsyncClient": "._client",
    "Client": "._client",
    "RateLimits": "._client",
    "RawResponse": "._client",
    "Dataset": ".dataset",
    "DatasetIssue": ".dataset",
    "DatasetSplits": ".dataset",
    "DatasetStats": ".dataset",
    "IssueCode": ".dataset",
    "ValidationReport": ".dataset",
    "AsyncFileManager": ".finetuning",
    "AsyncJobManager": ".finetuning",
    "FileManager": ".finetuning",
    "JobEstimate": ".finetuning",
    "JobManager": ".finetuning",
    "ModelRetirementWarning": ".finetuning",
    "TrainingMetrics": ".finetuning",
    "AsyncEmbedder": ".embeddings",
    "Embedder": ".embeddings",
    "EmbeddingCache": ".embeddings",
    "EmbeddingEstimate": ".embeddings",
    "EmbeddingResult": ".embeddings",
    "Candidate": ".evaluate",
    "DatasetAnalysis": ".evaluate",
    "Evaluation": ".evaluate",
    "EvaluationReport": ".evaluate",
    "BatchMatches": ".index",
    "EmbeddingIndex": ".index",
    "Match": ".index",
    "Matches": ".index",
    "VectorIndex": ".index",
    "ModelCatalog": ".catalog",
    "AsyncChatCompletions": ".chat",
    "ChatCache": ".chat",
    "ChatCompletions": ".chat",
    "ChatResult": ".chat",
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
