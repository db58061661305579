"""Files on the API: upload (validated, de-duplicated, Uploads API for big files), wait, list, download, delete.

:class:`FileManager` works on a :class:`~finetune_embed.Client` (``client.files``), :class:`AsyncFileManager`
on an :class:`~finetune_embed.AsyncClient`. Every call goes through ``client.request``: one retry policy, our
exception types.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._exceptions import ConfigError, FileAccessError
from .._idempotent import acreate_once, ascan_pages, create_once, scan_pages
from .._ids import check_path_id
from .._logging import get_logger
from .._progress import progress_bar
from ._errors import FileProcessingError, FileProcessingTimeoutError
from ._pages import aiter_pages, iter_pages
from ._polling import PollBackoff, SleepClock, await_sleep, next_poll_delay, status_of
from ._uploads import (
    FILES_API_MAX_BYTES,
    UPLOAD_PART_BYTES,
    UPLOADS_API_MAX_BYTES,
    LocalFile,
    find_duplicate,
    iter_parts,
    prepare_local_file,
)

if TYPE_CHECKING:
    import openai
    from openai.types import FileDeleted, FileObject

    from .._client import AsyncClient, Client

__all__ = ["AsyncFileManager", "FileManager", "Source"]

logger = get_logger("finetuning")

#: What ``upload`` accepts: a path to a file, or a :class:`~finetune_embed.dataset.Dataset`.
Source = str | os.PathLike[str] | Any

_PROCESSED = "processed"
_FAILED = frozenset({"error", "deleted", "deleting", "failed"})
DEFAULT_FILE_TIMEOUT = 30 * 60.0


def is_dataset(obj: object) -> bool:
    """Whether ``obj`` is a :class:`finetune_embed.dataset.Dataset`."""
    try:
        from ..dataset import Dataset
    except ImportError:  # pragma: no cover - the dataset subpackage ships with the library
        return False
    return isinstance(obj, Dataset)


def validate_source(
    source: Any,
    *,
    model: str | None,
    method: str | None,
    on: date | None = None,
    provider: str = "openai",
    role: str = "training",
) -> None:
    """Validate a path or Dataset as fine-tuning data for ``model`` / ``method``: raises
    :class:`~finetune_embed.DatasetValidationError` (``.report`` lists every issue) on errors; warnings are
    logged. A validation file (``role="validation"``) needs one example, not the training file's ten."""
    from ..dataset import Dataset, IssueCode

    if is_dataset(source):
        minimum = 1 if role == "validation" else 10
        report = source.validate(model=model, method=method, on=on, provider=provider, min_examples=minimum)
    else:
        report = Dataset.validate_file(Path(source), model=model, method=method, on=on, provider=provider)
    errors = [
        issue
        for issue in report.errors
        if not (role == "validation" and issue.code == IssueCode.TOO_FEW_EXAMPLES and report.n_examples >= 1)
    ]
    if errors:
        report.raise_for_issues()
    if report.warning_count:
        logger.warning(
            "%s: %d validation warning(s), e.g. %s", report.file or "dataset", report.warning_count, report.warnings[0]
        )


@contextlib.contextmanager
def materialize(source: Any) -> Iterator[tuple[Path, str | None]]:
    """The path to upload ``source`` from (a temporary ``dataset.jsonl`` for a Dataset) and its default name."""
    if is_dataset(source):
        with tempfile.TemporaryDirectory(prefix="finetune_embed-") as tmp:
            path = Path(tmp) / "dataset.jsonl"
            source.to_json(path)
            yield path, path.name
        return
    if not isinstance(source, str | os.PathLike):
        raise ConfigError(
            f"Cannot upload a {type(source).__name__}: pass a path to a JSONL file or a finetune_embed Dataset."
        )
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (pass a path to a JSONL file, a Dataset, or a file id).")
    yield path, None


def _check_limits(files_api_limit: int, part_size: int, max_bytes: int) -> None:
    if files_api_limit < 1 or part_size < 1 or max_bytes < 1:
        raise ConfigError("files_api_limit, part_size and max_bytes must be positive byte counts.")
    if part_size > UPLOAD_PART_BYTES:
        raise ConfigError(f"part_size may be at most {UPLOAD_PART_BYTES:,} bytes (64 MB), got {part_size:,}.")


def _is_processed(file: Any, file_id: str) -> bool:
    """Whether the server has processed ``file``; raises :class:`FileProcessingError` when it could not."""
    status = status_of(file)
    if status in _FAILED:
        details = getattr(file, "status_details", None)
        raise FileProcessingError(
            f"The server could not process file {file_id} ({getattr(file, 'filename', '?')}): status "
            f"{status!r}{': ' + str(details) if details else ''}. Fix the file and upload it again.",
            file_id=file_id,
            file=file,
            details=details,
        )
    return status == _PROCESSED


def _timeout_error(file: Any, file_id: str, timeout: float) -> FileProcessingTimeoutError:
    return FileProcessingTimeoutError(
        f"File {file_id} is still {status_of(file)!r} after {timeout:g}s; the server goes on processing it. Wait "
        "again with files.wait(file_id), or upload it again.",
        file_id=file_id,
        file=file,
    )


def _create_upload_request(local: LocalFile, purpose: str) -> Callable[[Any], Any]:
    """The request that starts an Upload for ``local`` (sync or async SDK)."""
    return lambda sdk: sdk.uploads.create(
        bytes=local.size, filename=local.filename, mime_type=local.mime_type, purpose=purpose
    )


def _part_request(upload_id: str, data: bytes) -> Callable[[Any], Any]:
    """The request that adds one part to an upload (sync or async SDK)."""
    return lambda sdk: sdk.uploads.parts.create(upload_id, data=data)


def _files_page(sdk: Any, purpose: str, after: str | None) -> Any:
    """One page of the files of ``purpose``, newest first (sync or async SDK)."""
    from openai import omit

    return sdk.files.list(purpose=purpose, after=after if after else omit, limit=10_000)


def _same_content(local: LocalFile) -> Callable[[Any], bool]:
    """Whether a listed file holds ``local``'s content (its tag and size), so a retried upload can adopt it."""
    return lambda file: find_duplicate([file], local) is not None


def _completed_file(upload: Any) -> Any:
    if upload.file is None:
        from .._exceptions import APIResponseValidationError

        raise APIResponseValidationError(f"Upload {upload.id} completed without a file object.")
    return upload.file


def _check_download_target(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise FileAccessError(
            f"Cannot download to {path}: it is a directory; pass the path of the file to write.",
            path=str(path),
            errno=errno.EISDIR,
        )
    if path.exists() and not overwrite:
        raise FileAccessError(
            f"Cannot download to {path}: it exists; pass overwrite=True (CLI: --overwrite) to replace it.",
            path=str(path),
            errno=errno.EEXIST,
        )


class FileManager:
    """Upload, find, wait for, list, download and delete files (``client.files``).

    **Parameters:**

    * ``client`` - a :class:`~finetune_embed.Client` (OpenAI, Azure OpenAI or compatible).
    * ``files_api_limit`` - files up to this many bytes go to the Files API (512 MB), larger ones to the
      Uploads API in parts of ``part_size`` bytes (64 MB), up to ``max_bytes`` (8 GB).
    * ``sleep`` - how to sleep between polls (default: the client's retry-policy sleep, else ``time.sleep``).
    * ``today`` - the date for the catalog checks in validation (default ``date.today``).
    """

    def __init__(
        self,
        client: Client,
        *,
        files_api_limit: int = FILES_API_MAX_BYTES,
        part_size: int = UPLOAD_PART_BYTES,
        max_bytes: int = UPLOADS_API_MAX_BYTES,
        sleep: Callable[[float], Any] | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        _check_limits(files_api_limit, part_size, max_bytes)
        self.client = client
        self.files_api_limit = files_api_limit
        self.part_size = part_size
        self.max_bytes = max_bytes
        self._today = today or date.today
        self._sleep = sleep or client.retry.sleep or time.sleep

    def __repr__(self) -> str:
        return f"FileManager(provider={self.client.provider!r})"

    # --- upload ---------------------------------------------------------------------------------------------

    def upload(
        self,
        source: Source,
        *,
        purpose: str = "fine-tune",
        filename: str | None = None,
        validate: bool = True,
        model: str | None = None,
        method: str | None = None,
        role: Literal["training", "validation"] = "training",
        dedupe: bool = True,
        wait: bool = True,
        timeout: float | None = DEFAULT_FILE_TIMEOUT,
        progress: bool | None = None,
    ) -> FileObject:
        """Upload a JSONL file or a Dataset and return the API's file object.

        * Fine-tuning data (``purpose="fine-tune"``) is validated first (for ``model`` / ``method`` when given;
          ``role="validation"`` for a validation file, which needs 1 example instead of 10) and refused with
          :class:`~finetune_embed.DatasetValidationError` on errors, unless ``validate=False``.
        * With ``dedupe`` a file with the same content (SHA-256 tag in the name, same size) that is already
          on the server is returned instead of uploading again.
        * Files over ``files_api_limit`` (512 MB) go through the Uploads API in parts, read one at a time.
        * With ``wait`` the call returns once the server has processed the file (raising
          :class:`FileProcessingError` when it could not).
        """
        with materialize(source) as (path, default_name):
            if validate and purpose == "fine-tune":
                validate_source(
                    source if is_dataset(source) else path,
                    model=model,
                    method=method,
                    on=self._today(),
                    provider=self.client.provider,
                    role=role,
                )
            local = prepare_local_file(
                path, purpose=purpose, filename=filename or default_name, max_bytes=self.max_bytes
            )
            file = self._find(local, purpose=purpose) if dedupe else None
            if file is not None:
                logger.info("%s: identical content already uploaded as %s; reusing it", path, file.id)
            elif local.size > self.files_api_limit:
                file = self._upload_in_parts(local, purpose=purpose, progress=progress)
            else:
                file = self._upload_whole(local, purpose=purpose)
        if wait and status_of(file) != _PROCESSED:
            file = self.wait(file.id, timeout=timeout)
        return file

    def find(self, path: str | os.PathLike[str], *, purpose: str = "fine-tune") -> FileObject | None:
        """The file on the server that holds the same content as the local file ``path`` (uploaded by this
        library: same SHA-256 tag and size, still usable), or ``None``."""
        with materialize(path) as (local_path, _):
            local = prepare_local_file(local_path, purpose=purpose, filename=None, max_bytes=self.max_bytes)
        return self._find(local, purpose=purpose)

    def _find(self, local: LocalFile, *, purpose: str) -> FileObject | None:
        return find_duplicate(self.list(purpose=purpose), local)

    def _find_on_server(self, local: LocalFile, purpose: str) -> Callable[[Any, bool], FileObject | None]:
        return lambda sdk, retrying: scan_pages(lambda after: _files_page(sdk, purpose, after), _same_content(local))

    def _upload_whole(self, local: LocalFile, *, purpose: str) -> FileObject:
        def create(sdk: openai.OpenAI) -> FileObject:
            with open(local.path, "rb") as fh:  # opened per attempt: a retry sends the file from the start
                return sdk.files.create(file=(local.filename, fh), purpose=purpose)  # type: ignore[arg-type]

        logger.info("uploading %s (%d bytes) as %s", local.path, local.size, local.filename)
        # before a retry, a file the failed attempt did create (same content tag and size) is adopted
        return create_once(
            self.client,
            create,
            self._find_on_server(local, purpose),
            description=f"upload {local.filename}",
            look_first=False,
        )

    def _upload_in_parts(self, local: LocalFile, *, purpose: str, progress: bool | None) -> FileObject:
        upload = self.client.request(
            _create_upload_request(local, purpose), description=f"create upload for {local.filename}"
        )
        logger.info("uploading %s (%d bytes) in parts via %s", local.path, local.size, upload.id)
        md5 = hashlib.md5(usedforsecurity=False)
        part_ids: list[str] = []
        try:
            bar = progress_bar(total=local.size, desc=local.filename, unit="B", progress=progress, unit_scale=True)
            with bar:
                for number, chunk in enumerate(iter_parts(local.path, self.part_size), start=1):
                    md5.update(chunk)
                    part = self.client.request(
                        _part_request(upload.id, chunk), description=f"upload part {number} of {local.filename}"
                    )
                    part_ids.append(part.id)
                    bar.update(len(chunk))
            file: FileObject = create_once(
                self.client,
                lambda sdk: _completed_file(sdk.uploads.complete(upload.id, part_ids=part_ids, md5=md5.hexdigest())),
                self._find_on_server(local, purpose),
                description=f"complete upload {upload.id}",
                look_first=False,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.request(lambda sdk: sdk.uploads.cancel(upload.id), description="cancel upload")
            raise
        return file

    # --- the rest -------------------------------------------------------------------------------------------

    def wait(
        self,
        file_id: str,
        *,
        timeout: float | None = DEFAULT_FILE_TIMEOUT,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
    ) -> FileObject:
        """Poll until the file is ``processed``; :class:`FileProcessingError` if the server rejected it,
        :class:`FileProcessingTimeoutError` after ``timeout`` seconds."""
        backoff = PollBackoff(poll_interval, max_poll_interval)
        clock = SleepClock()
        while True:
            file = self.retrieve(file_id)
            if _is_processed(file, file_id):
                return file
            timed_out = functools.partial(_timeout_error, file, file_id)
            self._sleep(next_poll_delay(backoff, clock, timeout, timed_out))

    def retrieve(self, file_id: str) -> FileObject:
        """The file object of ``file_id``."""
        check_path_id(file_id, argument="file_id")
        return self.client.request(lambda sdk: sdk.files.retrieve(file_id), description=f"retrieve file {file_id}")

    def list(
        self, *, purpose: str | None = None, limit: int | None = None, page_size: int = 10_000
    ) -> Iterator[FileObject]:
        """Every file (newest first), fetching further pages as needed; ``limit`` stops after that many."""
        from openai import omit

        def fetch(sdk: openai.OpenAI, after: str | None) -> Any:
            return sdk.files.list(
                purpose=purpose if purpose is not None else omit,
                after=after if after is not None else omit,
                limit=page_size,
            )

        return iter_pages(self.client, fetch, description="list files", limit=limit)

    def content(self, file_id: str) -> bytes:
        """The file's content, in memory (use :meth:`download` for big files)."""
        check_path_id(file_id, argument="file_id")
        response = self.client.request(lambda sdk: sdk.files.content(file_id), description=f"download {file_id}")
        return response.content

    def download(self, file_id: str, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Stream the file's content to ``path``: written to a temporary file beside it, then renamed, so
        ``path`` is either the whole file or untouched. Returns ``path``."""
        check_path_id(file_id, argument="file_id")
        target = Path(path)
        _check_download_target(target, overwrite)
        from .._atomic import atomic_path

        with atomic_path(target, suffix=".part") as tmp:

            def stream(sdk: openai.OpenAI) -> int:
                written = 0
                with sdk.files.with_streaming_response.content(file_id) as response, open(tmp, "wb") as fh:
                    for chunk in response.iter_bytes(1 << 20):
                        fh.write(chunk)
                        written += len(chunk)
                return written

            written = self.client.request(stream, description=f"download {file_id}")
        logger.info("downloaded %s to %s (%d bytes)", file_id, target, written)
        return target

    def delete(self, file_id: str) -> FileDeleted:
        """Delete the file on the server."""
        check_path_id(file_id, argument="file_id")
        return self.client.request(lambda sdk: sdk.files.delete(file_id), description=f"delete file {file_id}")


class AsyncFileManager:
    """The asyncio twin of :class:`FileManager` for an :class:`~finetune_embed.AsyncClient` (upload, find, wait,
    retrieve, list, content, download, delete). Hashing, validation, reading parts and writing downloads run in
    a worker thread."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        files_api_limit: int = FILES_API_MAX_BYTES,
        part_size: int = UPLOAD_PART_BYTES,
        max_bytes: int = UPLOADS_API_MAX_BYTES,
        sleep: Callable[[float], Any] | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        _check_limits(files_api_limit, part_size, max_bytes)
        self.client = client
        self.files_api_limit = files_api_limit
        self.part_size = part_size
        self.max_bytes = max_bytes
        self._today = today or date.today
        self._sleep = sleep or client.retry.sleep or asyncio.sleep

    def __repr__(self) -> str:
        return f"AsyncFileManager(provider={self.client.provider!r})"

    async def upload(
        self,
        source: Source,
        *,
        purpose: str = "fine-tune",
        filename: str | None = None,
        validate: bool = True,
        model: str | None = None,
        method: str | None = None,
        role: Literal["training", "validation"] = "training",
        dedupe: bool = True,
        wait: bool = True,
        timeout: float | None = DEFAULT_FILE_TIMEOUT,
        progress: bool | None = None,
    ) -> FileObject:
        """See :meth:`FileManager.upload` (``progress``: a bar over the parts of a multi-part upload)."""
        with materialize(source) as (path, default_name):
            if validate and purpose == "fine-tune":
                target = source if is_dataset(source) else path
                await asyncio.to_thread(
                    validate_source,
                    target,
                    model=model,
                    method=method,
                    on=self._today(),
                    provider=self.client.provider,
                    role=role,
                )
            local = await asyncio.to_thread(
                prepare_local_file, path, purpose=purpose, filename=filename or default_name, max_bytes=self.max_bytes
            )
            file = await self._find(local, purpose=purpose) if dedupe else None
            if file is not None:
                logger.info("%s: identical content already uploaded as %s; reusing it", path, file.id)
            elif local.size > self.files_api_limit:
                file = await self._upload_in_parts(local, purpose=purpose, progress=progress)
            else:
                file = await self._upload_whole(local, purpose=purpose)
        if wait and status_of(file) != _PROCESSED:
            file = await self.wait(file.id, timeout=timeout)
        return file

    async def find(self, path: str | os.PathLike[str], *, purpose: str = "fine-tune") -> FileObject | None:
        """See :meth:`FileManager.find`."""
        with materialize(path) as (local_path, _):
            local = await asyncio.to_thread(
                prepare_local_file, local_path, purpose=purpose, filename=None, max_bytes=self.max_bytes
            )
        return await self._find(local, purpose=purpose)

    async def _find(self, local: LocalFile, *, purpose: str) -> FileObject | None:
        files = [f async for f in self.list(purpose=purpose)]
        return find_duplicate(files, local)

    def _find_on_server(self, local: LocalFile, purpose: str) -> Callable[[Any, bool], Awaitable[FileObject | None]]:
        return lambda sdk, retrying: ascan_pages(lambda after: _files_page(sdk, purpose, after), _same_content(local))

    async def _upload_whole(self, local: LocalFile, *, purpose: str) -> FileObject:
        async def create(sdk: openai.AsyncOpenAI) -> FileObject:
            with open(local.path, "rb") as fh:  # streamed by the multipart encoder; reopened on a retry
                return await sdk.files.create(file=(local.filename, fh), purpose=purpose)  # type: ignore[arg-type]

        logger.info("uploading %s (%d bytes) as %s", local.path, local.size, local.filename)
        return await acreate_once(
            self.client,
            create,
            self._find_on_server(local, purpose),
            description=f"upload {local.filename}",
            look_first=False,
        )

    async def _upload_in_parts(self, local: LocalFile, *, purpose: str, progress: bool | None) -> FileObject:
        upload = await self.client.request(
            _create_upload_request(local, purpose), description=f"create upload for {local.filename}"
        )
        logger.info("uploading %s (%d bytes) in parts via %s", local.path, local.size, upload.id)
        md5 = hashlib.md5(usedforsecurity=False)
        part_ids: list[str] = []
        parts = iter_parts(local.path, self.part_size)
        try:
            number = 0
            bar = progress_bar(total=local.size, desc=local.filename, unit="B", progress=progress, unit_scale=True)
            with bar:
                while (chunk := await asyncio.to_thread(next, parts, b"")) != b"":
                    number += 1
                    md5.update(chunk)
                    part = await self.client.request(
                        _part_request(upload.id, chunk), description=f"upload part {number} of {local.filename}"
                    )
                    part_ids.append(part.id)
                    bar.update(len(chunk))

            async def complete(sdk: openai.AsyncOpenAI) -> FileObject:
                done = await sdk.uploads.complete(upload.id, part_ids=part_ids, md5=md5.hexdigest())
                return _completed_file(done)  # type: ignore[no-any-return]

            file: FileObject = await acreate_once(
                self.client,
                complete,
                self._find_on_server(local, purpose),
                description=f"complete upload {upload.id}",
                look_first=False,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await self.client.request(lambda sdk: sdk.uploads.cancel(upload.id), description="cancel upload")
            raise
        finally:
            parts.close()  # type: ignore[attr-defined]
        return file

    async def wait(
        self,
        file_id: str,
        *,
        timeout: float | None = DEFAULT_FILE_TIMEOUT,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
    ) -> FileObject:
        """See :meth:`FileManager.wait`."""
        backoff = PollBackoff(poll_interval, max_poll_interval)
        clock = SleepClock()
        while True:
            file = await self.retrieve(file_id)
            if _is_processed(file, file_id):
                return file
            timed_out = functools.partial(_timeout_error, file, file_id)
            await await_sleep(self._sleep, next_poll_delay(backoff, clock, timeout, timed_out))

    async def retrieve(self, file_id: str) -> FileObject:
        """See :meth:`FileManager.retrieve`."""
        check_path_id(file_id, argument="file_id")
        return await self.client.request(
            lambda sdk: sdk.files.retrieve(file_id), description=f"retrieve file {file_id}"
        )

    def list(
        self, *, purpose: str | None = None, limit: int | None = None, page_size: int = 10_000
    ) -> AsyncIterator[FileObject]:
        """See :meth:`FileManager.list` (an async iterator)."""
        from openai import omit

        def fetch(sdk: openai.AsyncOpenAI, after: str | None) -> Any:
            return sdk.files.list(
                purpose=purpose if purpose is not None else omit,
                after=after if after is not None else omit,
                limit=page_size,
            )

        return aiter_pages(self.client, fetch, description="list files", limit=limit)

    async def content(self, file_id: str) -> bytes:
        """See :meth:`FileManager.content`."""
        check_path_id(file_id, argument="file_id")

        async def fetch(sdk: openai.AsyncOpenAI) -> bytes:
            response = await sdk.files.content(file_id)
            return response.content

        return await self.client.request(fetch, description=f"download {file_id}")

    async def download(self, file_id: str, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """See :meth:`FileManager.download` (the file is written from a worker thread, chunk by chunk)."""
        check_path_id(file_id, argument="file_id")
        target = Path(path)
        _check_download_target(target, overwrite)
        from .._atomic import atomic_path

        with atomic_path(target, suffix=".part") as tmp:

            async def stream(sdk: openai.AsyncOpenAI) -> int:
                written = 0
                async with sdk.files.with_streaming_response.content(file_id) as response:
                    with open(tmp, "wb") as fh:  # each write goes to a worker thread below
                        async for chunk in response.iter_bytes(1 << 20):
                            await asyncio.to_thread(fh.write, chunk)
                            written += len(chunk)
                return written

            written = await self.client.request(stream, description=f"download {file_id}")
        logger.info("downloaded %s to %s (%d bytes)", file_id, target, written)
        return target

    async def delete(self, file_id: str) -> FileDeleted:
        """See :meth:`FileManager.delete`."""
        check_path_id(file_id, argument="file_id")
        return await self.client.request(lambda sdk: sdk.files.delete(file_id), description=f"delete file {file_id}")
