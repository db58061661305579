"""The exceptions finetune_embed raises. Every one of them derives from :class:`FinetuneEmbedError`.

The tree::

    FinetuneEmbedError
    ├── ConfigError(ValueError)                bad or missing configuration
    │   ├── MissingAPIKeyError                 no key at the first call that needs one
    │   ├── TokenizerUnavailableError          a tiktoken encoding cannot be loaded (offline)
    │   ├── UnsupportedModelError              a model the operation cannot use (shut down, no `dimensions`, ...)
    │   ├── InvalidArgumentError(TypeError)    an argument out of range or of the wrong type; .argument
    │   ├── CacheFileError                     a cache file that is damaged or not a cache; .path (both caches)
    │   └── UnsupportedFilterError             a filter operator a vector store cannot run; .engine .operator
    ├── DatasetError
    │   ├── DatasetFormatError(ValueError)     a file that cannot be read as a dataset; .path .line
    │   │   └── LineTooLongError               a line longer than the limit (512 MB); .limit .length
    │   ├── DatasetValidationError(ValueError) a dataset with validation errors; .report
    │   └── FileProcessingError                the server could not process an uploaded file; .file_id
    │       └── FileProcessingTimeoutError(TimeoutError)
    ├── APIError                               the service or the network failed; wraps the SDK's error
    │   ├── APIConnectionError(ConnectionError) no response came back
    │   │   └── APITimeoutError(TimeoutError)
    │   ├── APIResponseValidationError         a response that does not match the API's contract
    │   └── APIStatusError                     a response came back with a 4xx or 5xx status
    │       ├── BadRequestError(ValueError)        400
    │       ├── AuthenticationError                401
    │       ├── PermissionDeniedError              403
    │       ├── NotFoundError(LookupError)         404
    │       ├── ConflictError                      409
    │       ├── UnprocessableEntityError(ValueError) 422
    │       ├── RateLimitError                     429; .retry_after
    │       │   └── QuotaExceededError             429 insufficient_quota: a billing stop, never retried
    │       └── ServerError                        5xx
    ├── OpenAISDKError                         any other error raised by the openai SDK
    ├── ItemTooLargeError(ValueError)          one item alone is over a batch's token budget
    ├── FileAccessError(OSError)               a local file or folder could not be read or written; .path .errno
    ├── MissingDependencyError(ImportError)    an optional package is not installed; .package .extra
    ├── JobError                               a fine-tuning job did not succeed
    │   ├── JobFailedError                     .job, .error (the server's code / message / param)
    │   ├── JobCancelledError
    │   ├── JobTimeoutError(TimeoutError)      the wait ended; the job goes on on the server
    │   └── ResultsUnavailableError(KeyError)  no result file (yet), or no such metrics column
    ├── EmbeddingError
    │   ├── InputTooLongError(ValueError)      an input over the model's token limit; .index
    │   ├── EmptyInputError(ValueError)        an empty or whitespace-only input; .index
    │   ├── EmbeddingResponseError             a response with missing, extra or bad vectors
    │   │   └── InvalidEmbeddingError          non-finite or all-zero vectors; .indices .result
    │   ├── BatchAPIError                      a Batch API batch failed, or lines kept failing
    │   ├── BatchTimeoutError(TimeoutError)    waiting for batches ran out; they resume on the next call
    │   ├── InvalidInputError(ValueError, TypeError) an input that is not a string or not valid text; .index
    │   ├── EmbeddingCacheError(CacheFileError) the embedding cache file cannot be used; .path
    │   └── EmbeddingTimeoutError(TimeoutError) requests kept timing out; .rebilled_tokens
    └── EmbeddingIndexError
        ├── DimensionMismatchError(ValueError) .expected .got
        ├── InvalidVectorError(ValueError)     zero or non-finite vectors; .ids
        ├── DuplicateIdError(ValueError)       .ids
        ├── UnknownIdError(KeyError)           .ids
        ├── IndexFileError                     a saved index that is missing, corrupt or tampered with
        └── ReplicationLagError(TimeoutError)  a cluster node had not applied a write in time; .node .waited

Errors from the ``openai`` SDK are translated by :func:`map_openai_error` (used by every call the library
makes), keeping the SDK's exception as ``__cause__`` and the server's message, code, param, type and request
id. Messages never contain an API key: every message passes through :func:`finetune_embed._redact.redact`.

Every exception pickles and unpickles with its attributes (they cross process pools): see
:meth:`FinetuneEmbedError.__reduce__`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ._redact import redact

__all__ = [
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
    "map_openai_error",
    "map_openai_errors",
]



class FinetuneEmbedError(Exception):
    """Base of every exception raised by finetune_embed.

    ``str(exc)`` is the message with any secret masked; ``exc.docs`` points at the section of docs/errors.md
    that explains the error.
    """

    docs_anchor: str = "finetuneembederror"

    def __init__(self, message: str) -> None:
        self.message = redact(message)
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    @property
    def docs(self) -> str:
        """A ``file://`` link to the section of errors.md that explains this error, in the docs installed with
        the package (or the checkout's ``docs/``)."""
        from ._docs import docs_link

        return docs_link("errors.md", self.docs_anchor)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as (class, args, attributes), never calling ``__init__`` again: subclasses take keyword-only
        arguments, which the default ``BaseException`` pickling (``cls(*args)``) would drop. ``OSError``'s
        ``errno`` / ``strerror`` / ``filename`` live outside ``__dict__`` and travel separately."""
        extra: dict[str, Any] = {}
        if isinstance(self, OSError):
            extra = {"errno": self.errno, "strerror": self.strerror, "filename": self.filename}
        if isinstance(self, ImportError):
            extra = {"name": self.name, "path": self.path, "msg": self.msg}
        return (_rebuild, (type(self), self.args, dict(self.__dict__), extra))


def _rebuild(
    cls: type[FinetuneEmbedError], args: tuple[Any, ...], state: dict[str, Any], extra: dict[str, Any]
) -> FinetuneEmbedError:
    """Unpickle an exception made by :meth:`FinetuneEmbedError.__reduce__`."""
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    for name, value in extra.items():
        setattr(exc, name, value)
    return exc


# --- configuration ----------------------------------------------------------------------------------------


class ConfigError(FinetuneEmbedError, ValueError):
    """The library is configured wrongly: a missing key, a bad endpoint, an unknown option."""

    docs_anchor = "configerror"


class MissingAPIKeyError(ConfigError):
    """No API key was given and none is set in the environment."""

    docs_anchor = "missingapikeyerror"


class TokenizerUnavailableError(ConfigError):
    """A tiktoken encoding could not be loaded, usually because the machine is offline."""

    docs_anchor = "tokenizerunavailableerror"

    def __init__(self, message: str, *, encoding: str) -> None:
        super().__init__(message)
        self.encoding = encoding


class UnsupportedModelError(ConfigError):
    """The model cannot be used for this operation (shut down, or lacking a feature such as ``dimensions``)."""

    docs_anchor = "unsupportedmodelerror"

    def __init__(self, message: str, *, model: str) -> None:
        super().__init__(message)
        self.model = model


class UnsupportedFilterError(ConfigError):
    """A ``where`` filter uses an operator (or a value type under it) that a vector store's engine cannot run
    inside the engine. ``engine`` and ``operator`` name them; results are never filtered afterwards instead
    (that could return fewer than ``k`` hits without saying so)."""

    docs_anchor = "unsupportedfiltererror"

    def __init__(self, message: str, *, engine: str, operator: str) -> None:
        super().__init__(message)
        self.engine = engine
        self.operator = operator


class InvalidArgumentError(ConfigError, TypeError):
    """An argument is out of range, of the wrong type, or inconsistent with another one (``batched(n=0)``,
    ``test_size=1.5``, lists of different lengths). ``.argument`` names it. Both a ``ValueError`` and a
    ``TypeError``, so code catching either keeps working."""

    docs_anchor = "invalidargumenterror"

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class CacheFileError(ConfigError):
    """A cache file is damaged, is not a cache, or was written by a newer version. ``.path`` names it. Its content
    can always be fetched again, so moving the file away is a safe fix. The chat response cache raises it; the
    embedding cache raises its subclass :class:`EmbeddingCacheError`, so ``except CacheFileError`` covers both."""

    docs_anchor = "cachefileerror"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


# --- datasets -----------------------------------------------------------------------------------------------


class DatasetError(FinetuneEmbedError):
    """A fine-tuning dataset could not be read or is invalid."""

    docs_anchor = "dataseterror"


class DatasetFormatError(DatasetError, ValueError):
    """A file that cannot be read as a dataset at all (not JSONL, mixed formats, unreadable)."""

    docs_anchor = "datasetformaterror"

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)
        self.path = path
        self.line = line


class LineTooLongError(DatasetFormatError):
    """A line of an input file is longer than the limit (by default 512 MB, the Files API's limit on a whole
    file), so it was not read into memory; ``.limit`` is the limit and ``.length`` the line's length (bytes or
    characters, as the reader counts; at least this long when the reader stopped early)."""

    docs_anchor = "linetoolongerror"

    def __init__(self, message: str, *, path: str | None, line: int | None, limit: int, length: int) -> None:
        super().__init__(message, path=path, line=line)
        self.limit = limit
        self.length = length


class DatasetValidationError(DatasetError, ValueError):
    """A dataset failed validation; ``.report`` holds every issue found."""

    docs_anchor = "datasetvalidationerror"

    def __init__(self, message: str, *, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class FileProcessingError(DatasetError):
    """The server could not process an uploaded file (status ``error``); ``details`` is what it said."""

    docs_anchor = "fileprocessingerror"

    def __init__(self, message: str, *, file_id: str, file: Any = None, details: str | None = None) -> None:
        super().__init__(message)
        self.file_id = file_id
        self.file = file
        self.details = details


class FileProcessingTimeoutError(FileProcessingError, TimeoutError):
    """An uploaded file was still not processed when the wait ended (the server goes on processing it)."""

    docs_anchor = "fileprocessingtimeouterror"


# --- the API ------------------------------------------------------------------------------------------------


class APIError(FinetuneEmbedError):
    """The OpenAI (or Azure OpenAI, or compatible) service failed, or could not be reached.

    Attributes carry what the server said: ``status_code``, ``code``, ``type``, ``param``, ``request_id``,
    ``body``; ``attempts`` is how many HTTP attempts were made before giving up (set by the retry policy).
    """

    docs_anchor = "apierror"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        body: object | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.type = type
        self.param = param
        self.request_id = request_id
        self.body = body
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        self.attempts = 1


class APIConnectionError(APIError, ConnectionError):
    """No response came back: DNS, refused or dropped connection, TLS."""

    docs_anchor = "apiconnectionerror"


class APITimeoutError(APIConnectionError, TimeoutError):
    """The request timed out before a response came back."""

    docs_anchor = "apitimeouterror"


class APIResponseValidationError(APIError):
    """The server answered with data that does not match the API's contract."""

    docs_anchor = "apiresponsevalidationerror"


class APIStatusError(APIError):
    """The server answered with a 4xx or 5xx status."""

    docs_anchor = "apistatuserror"


class BadRequestError(APIStatusError, ValueError):
    """400: the request was invalid (the message says which parameter)."""

    docs_anchor = "badrequesterror"


class AuthenticationError(APIStatusError):
    """401: the API key or token was refused."""

    docs_anchor = "authenticationerror"


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this resource or model."""

    docs_anchor = "permissiondeniederror"


class NotFoundError(APIStatusError, LookupError):
    """404: no such file, job, model or deployment."""

    docs_anchor = "notfounderror"


class ConflictError(APIStatusError):
    """409: the resource is in a state that forbids the operation (retried by default)."""

    docs_anchor = "conflicterror"


class UnprocessableEntityError(APIStatusError, ValueError):
    """422: the request was well-formed but could not be processed."""

    docs_anchor = "unprocessableentityerror"


class RateLimitError(APIStatusError):
    """429: a rate limit was hit. ``retry_after`` is the server's suggested wait in seconds, if any."""

    docs_anchor = "ratelimiterror"

    @property
    def retry_after(self) -> float | None:
        """The wait the server asked for, in seconds (from ``retry-after-ms``, ``retry-after`` or the message)."""
        from .retry import retry_after_seconds

        return retry_after_seconds(self)


class QuotaExceededError(RateLimitError):
    """429 with code ``insufficient_quota``: the account is out of credit. Never retried."""

    docs_anchor = "quotaexceedederror"


class ServerError(APIStatusError):
    """5xx: the service failed (retried by default)."""

    docs_anchor = "servererror"


class OpenAISDKError(FinetuneEmbedError):
    """Any other error raised by the ``openai`` SDK (kept as ``__cause__``)."""

    docs_anchor = "openaisdkerror"


class ItemTooLargeError(FinetuneEmbedError, ValueError):
    """One item alone is over the per-batch token budget, so no batch can hold it; ``.index`` names it."""

    docs_anchor = "itemtoolargeerror"

    def __init__(self, message: str, *, index: int, tokens: int, max_tokens: int) -> None:
        super().__init__(message)
        self.index = index
        self.tokens = tokens
        self.max_tokens = max_tokens


class FileAccessError(FinetuneEmbedError, OSError):
    """A local file or folder could not be read or written: missing, no permission, a folder where a file was
    expected, a device or pipe where a regular file was expected, a full disk. ``.path`` names it and ``.errno``
    is the operating system's error number (``None`` when the library refused on its own); an ``OSError``, so
    ``except OSError`` keeps working."""

    docs_anchor = "fileaccesserror"

    def __init__(self, message: str, *, path: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno
        self.filename = path


class MissingDependencyError(FinetuneEmbedError, ImportError):
    """An optional package a feature needs is not installed. ``.package`` names it and ``.extra`` the
    finetune-embed extra that installs it (``pip install 'finetune-embed[<extra>]'``); an ``ImportError``."""

    docs_anchor = "missingdependencyerror"

    def __init__(self, message: str, *, package: str, extra: str | None = None) -> None:
        super().__init__(message)
        self.package = package
        self.extra = extra
        self.name = package
        self.msg = self.message


# --- fine-tuning jobs ---------------------------------------------------------------------------------------


class JobError(FinetuneEmbedError):
    """A fine-tuning job did not reach ``succeeded``."""

    docs_anchor = "joberror"

    def __init__(self, message: str, *, job_id: str, job: Any = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.job = job


class JobFailedError(JobError):
    """The job failed; ``error`` holds the server's code, message and param (e.g. a training-file error)."""

    docs_anchor = "jobfailederror"

    def __init__(self, message: str, *, job_id: str, job: Any = None, error: Any = None) -> None:
        super().__init__(message, job_id=job_id, job=job)
        self.error = error


class JobCancelledError(JobError):
    """The job was cancelled."""

    docs_anchor = "jobcancellederror"


class JobTimeoutError(JobError, TimeoutError):
    """Waiting for the job took longer than the timeout. The job itself keeps running on the server."""

    docs_anchor = "jobtimeouterror"


class ResultsUnavailableError(JobError, KeyError):
    """A job has no result file (yet): metrics exist only once the job has ended; or its metrics have no such
    column (``metrics["nope"]``). A ``KeyError`` (so a ``LookupError``), as a missing key of a mapping is."""

    docs_anchor = "resultsunavailableerror"


# --- embeddings ---------------------------------------------------------------------------------------------


class EmbeddingError(FinetuneEmbedError):
    """Embedding texts failed."""

    docs_anchor = "embeddingerror"


class InputTooLongError(EmbeddingError, ValueError):
    """An input is longer than the model accepts; ``index`` is its position in the input."""

    docs_anchor = "inputtoolongerror"

    def __init__(self, message: str, *, index: int, tokens: int, limit: int) -> None:
        super().__init__(message)
        self.index = index
        self.tokens = tokens
        self.limit = limit


class EmptyInputError(EmbeddingError, ValueError):
    """An input is empty or whitespace only; the API refuses those."""

    docs_anchor = "emptyinputerror"

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index


class EmbeddingResponseError(EmbeddingError):
    """The server returned the wrong number of vectors, bad indexes, or unusable values."""

    docs_anchor = "embeddingresponseerror"


class InvalidEmbeddingError(EmbeddingResponseError):
    """Some vectors came back non-finite (NaN/inf) or all zero. ``indices`` names the inputs; ``result`` holds
    everything else (valid vectors were cached, so a rerun only asks for the bad ones again)."""

    docs_anchor = "invalidembeddingerror"

    def __init__(self, message: str, *, indices: list[int], result: Any) -> None:
        super().__init__(message)
        self.indices = indices
        self.result = result


class BatchAPIError(EmbeddingError):
    """A batch failed as a whole, or some lines kept failing. ``batch_id`` and ``errors`` (the server's
    ``code: message`` strings) say why; vectors that did arrive are in the cache."""

    docs_anchor = "batchapierror"

    def __init__(self, message: str, *, batch_id: str | None = None, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.batch_id = batch_id
        self.errors = list(errors or [])


class BatchTimeoutError(EmbeddingError, TimeoutError):
    """Waiting took longer than ``timeout``. The batches go on on the server and are in the cache's journal:
    calling ``embed_batch_api`` again with the same texts resumes them."""

    docs_anchor = "batchtimeouterror"

    def __init__(self, message: str, *, batch_ids: list[str]) -> None:
        super().__init__(message)
        self.batch_ids = batch_ids


class InvalidInputError(EmbeddingError, ValueError, TypeError):
    """An input that cannot be sent: not a string, or text that is not valid Unicode (a lone surrogate).
    ``index`` is its position in the input."""

    docs_anchor = "invalidinputerror"

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index


class EmbeddingCacheError(EmbeddingError, CacheFileError):
    """The embedding cache file cannot be used: damaged, unreadable, locked, on a full disk, or written by a
    newer finetune_embed. ``path`` is the file; the message says how to recover
    (:meth:`~finetune_embed.EmbeddingCache.salvage`). Both an :class:`EmbeddingError` and a
    :class:`CacheFileError` (the chat cache's error), so one ``except CacheFileError`` covers every cache."""

    docs_anchor = "embeddingcacheerror"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class EmbeddingTimeoutError(EmbeddingError, TimeoutError):
    """Requests kept timing out although they were made smaller: the call's deadline or its budget of re-billed
    tokens ran out. ``rebilled_tokens`` is how many tokens the server may have billed more than once (requests it
    processed after the client gave up); vectors that arrived are in the cache."""

    docs_anchor = "embeddingtimeouterror"

    def __init__(self, message: str, *, rebilled_tokens: int = 0, sent_tokens: int = 0) -> None:
        super().__init__(message)
        self.rebilled_tokens = rebilled_tokens
        self.sent_tokens = sent_tokens


# --- the index ----------------------------------------------------------------------------------------------


class EmbeddingIndexError(FinetuneEmbedError):
    """An operation on an :class:`~finetune_embed.EmbeddingIndex` failed."""

    docs_anchor = "embeddingindexerror"


class DimensionMismatchError(EmbeddingIndexError, ValueError):
    """Vectors of the wrong dimension."""

    docs_anchor = "dimensionmismatcherror"

    def __init__(self, message: str, *, expected: int, got: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.got = got


class _IdsError(EmbeddingIndexError):
    def __init__(self, message: str, *, ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.ids = list(ids)


class InvalidVectorError(_IdsError, ValueError):
    """Zero-length or non-finite vectors; ``ids`` names them."""

    docs_anchor = "invalidvectorerror"


class DuplicateIdError(_IdsError, ValueError):
    """Ids that are already in the index (use ``upsert`` to replace them)."""

    docs_anchor = "duplicateiderror"


class UnknownIdError(_IdsError, KeyError):
    """Ids that are not in the index."""

    docs_anchor = "unknowniderror"


class IndexFileError(EmbeddingIndexError):
    """A saved index is missing, corrupt, truncated, tampered with or of an unknown format version."""

    docs_anchor = "indexfileerror"


class ReplicationLagError(EmbeddingIndexError, TimeoutError):
    """A write to a replicated store was acknowledged, but a node of the cluster had not applied it when the wait
    for read-your-writes ran out; ``node`` names that node (its URL, never a key), ``waited`` the seconds waited."""

    docs_anchor = "replicationlagerror"

    def __init__(self, message: str, *, node: str, waited: float) -> None:
        super().__init__(message)
        self.node = node
        self.waited = waited


# --- translation of the openai SDK's errors -------------------------------------------------------------------

_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

_FIXES: dict[type[APIError], str] = {
    AuthenticationError: "check OPENAI_API_KEY (or AZURE_OPENAI_API_KEY / the token provider on Azure)",
    PermissionDeniedError: "check that the key's project may use this model or resource",
    NotFoundError: "check the id; on Azure, check the deployment name and api_version",
    QuotaExceededError: "add credit or raise the project's budget; retrying will not help",
    RateLimitError: "lower the concurrency or set rpm/tpm limits; the retry policy waits as the server asks",
    ServerError: "the service failed; retried by the retry policy, try again later if it persists",
    APIConnectionError: "check the network and base_url",
    APITimeoutError: "raise the timeout or send smaller requests",
}


def _headers_of(response: Any) -> dict[str, str]:
    try:
        return {str(k).lower(): str(v) for k, v in response.headers.items()}
    except Exception:
        return {}


def _status_class(status: int, code: str | None) -> type[APIStatusError]:
    if status == 429 and code == "insufficient_quota":
        return QuotaExceededError
    if status >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status, APIStatusError)


def _compose(cls: type[APIError], what: str, request_id: str | None, code: str | None) -> str:
    parts = [what.rstrip()]
    details = []
    if code:
        details.append(f"code={code}")
    if request_id:
        details.append(f"request_id={request_id}")
    if details:
        parts.append("(" + ", ".join(details) + ")")
    fix = next((v for k, v in _FIXES.items() if cls is k), None)
    if fix:
        parts.append(f"- {fix}.")
    return " ".join(parts)


def map_openai_error(exc: BaseException) -> FinetuneEmbedError:
    """Translate an exception from the ``openai`` SDK into ours (the caller raises it ``from exc``).

    Exceptions that are already ours are returned unchanged. HTTP, connection and response errors map to the
    :class:`APIError` family; any other exception class of the SDK (``openai.OpenAIError`` or defined in
    ``openai``) maps to :class:`OpenAISDKError`; anything else to the most general :class:`APIError`.
    """
    if isinstance(exc, FinetuneEmbedError):
        return exc
    import openai

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = exc.code
        message = str(getattr(exc, "message", "") or exc)
        body = exc.body
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            message = body["message"]
        cls = _status_class(status, code)
        request_id = exc.request_id
        text = _compose(cls, f"HTTP {status} from the API: {message}", request_id, code)
        return cls(
            text,
            status_code=status,
            code=code,
            type=exc.type,
            param=exc.param,
            request_id=request_id,
            body=body,
            headers=_headers_of(exc.response),
        )
    if isinstance(exc, openai.APITimeoutError):
        return APITimeoutError(_compose(APITimeoutError, "The request timed out.", None, None))
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f": {type(cause).__name__}: {cause}" if cause else ""
        return APIConnectionError(
            _compose(APIConnectionError, f"Could not reach the API{detail}.", None, None)
        )
    if isinstance(exc, openai.APIResponseValidationError):
        return APIResponseValidationError(
            f"The API returned data that does not match its contract: {getattr(exc, 'message', exc)}",
            status_code=getattr(exc, "status_code", None),
            body=getattr(exc, "body", None),
        )
    if isinstance(exc, openai.APIError):
        return APIError(
            f"The API failed: {getattr(exc, 'message', exc)}",
            code=getattr(exc, "code", None),
            type=getattr(exc, "type", None),
            param=getattr(exc, "param", None),
        )
    if isinstance(exc, openai.OpenAIError) or type(exc).__module__.split(".")[0] == "openai":
        text = str(exc)
        if "api_key" in text and ("must be set" in text or "OPENAI_API_KEY" in text):
            return MissingAPIKeyError(
                "No API key: set OPENAI_API_KEY (AZURE_OPENAI_API_KEY on Azure) or pass api_key= to Client()."
            )
        return OpenAISDKError(f"The openai SDK raised {type(exc).__name__}: {text}")
    return APIError(f"Unexpected error while calling the API: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def map_openai_errors() -> Iterator[None]:
    """Context manager: re-raise any openai SDK exception as ours, with the original as ``__cause__``."""
    try:
        yield
    except FinetuneEmbedError:
        raise
    except Exception as exc:
        import openai

        if isinstance(exc, openai.OpenAIError) or type(exc).__module__.split(".")[0] == "openai":
            raise map_openai_error(exc) from exc
        raise
