"""Batch API mode: embed a big corpus at half the price, results within 24 hours.

What :meth:`Embedder.embed_batch_api` does:

1. packs the texts still missing from the cache into request lines (≤ 2048 inputs, ≤ 300,000 tokens each);
2. shards the lines into batch files within every limit: ≤ 50,000 requests, ≤ 50,000 embedding inputs and
   ≤ 200 MB per batch, and (when ``max_enqueued_tokens`` is given) ≤ that many tokens queued at once;
3. writes the shard's client request id (a hash of the file's content) to the cache's journal, uploads the file
   (``purpose="batch"``, named after that id), creates the batch (``endpoint="/v1/embeddings"``,
   ``completion_window="24h"``, the id in ``metadata["finetune_embed_request"]``) and journals the batch id;
4. polls with a growing interval, downloads the output and error files (streamed, line by line), decodes
   each line into the output array and the cache by ``custom_id``;
5. sends the failed or expired lines again in new batches (up to ``max_rounds`` rounds), then raises for
   whatever still failed.

A run that is killed (or times out) leaves its batches running on the server and their ids in the journal: the
next ``embed_batch_api`` over the same texts polls those batches instead of paying for them again.

No batch is created twice. Before any retry of a create (a timeout or 5xx after the server may have acted), the
server's batches are searched for the shard's request id and one found is adopted; a run that failed while
creating leaves the request id in the journal, and the next run looks it up before planning anything new. Without
a cache (no journal) the request id is derived from the content, so a rerun looks each shard up before creating
it. The input file is looked up the same way (by its tagged name and size) before any re-send.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from .._exceptions import BatchAPIError, BatchTimeoutError, ConfigError, EmbeddingError, EmbeddingResponseError
from .._idempotent import REQUEST_KEY, create_once, request_id_of, scan_pages
from .._ids import check_path_id
from .._logging import get_logger
from ..batching import pack_by_tokens
from ..catalog import default_catalog
from ._job import EmbedJob

if TYPE_CHECKING:
    import openai

    from ._embedder import Embedder

__all__ = ["BatchAPIError", "BatchTimeoutError", "run_batch_api"]

logger = get_logger("embeddings")

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
ACTIVE = frozenset({"validating", "in_progress", "finalizing"})
#: Journal entries for a shard whose batch may not exist yet: ``pending:<client request id>``.
PENDING = "pending:"
MAX_FILE_BYTES = 200_000_000  # "up to 200 MB"; decimal megabytes, to stay on the safe side
MAX_FILE_REQUESTS = 50_000
ENDPOINT: Final = "/v1/embeddings"


@dataclass
class _Line:
    custom_id: str
    units: npt.NDArray[np.int64]
    tokens: int
    attempt: int = 1


@dataclass
class _Shard:
    lines: list[_Line]
    tokens: int
    batch_id: str | None = None
    input_file_id: str | None = None
    resumed: bool = False
    by_id: dict[str, _Line] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {line.custom_id: line for line in self.lines}


class _Runner:
    def __init__(
        self,
        embedder: Embedder,
        job: EmbedJob,
        *,
        poll_interval: float,
        max_poll_interval: float,
        timeout: float | None,
        max_requests_per_file: int,
        max_inputs_per_batch: int,
        max_file_bytes: int,
        max_enqueued_tokens: int | None,
        max_rounds: int,
        metadata: dict[str, str] | None,
        delete_files: bool,
    ) -> None:
        self.embedder = embedder
        self.job = job
        self.client = embedder.client
        self.sleep = embedder.sleep or time.sleep
        self.clock = embedder.clock
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.deadline = None if timeout is None else self.clock() + timeout
        self.max_requests_per_file = max_requests_per_file
        self.max_inputs_per_batch = max_inputs_per_batch
        self.max_file_bytes = max_file_bytes
        self.max_enqueued_tokens = max_enqueued_tokens
        self.max_rounds = max_rounds
        self.metadata = metadata
        self.delete_files = delete_files
        self.todo: deque[_Shard] = deque()
        self.active: list[_Shard] = []
        self.fatal: list[str] = []
        self.seq = 0
        self.unfinished: set[str] = set()  # request ids a failed run journaled but never created

    # --- planning ---------------------------------------------------------------------------------------------

    def _new_id(self, attempt: int) -> str:
        self.seq += 1
        return f"fe-{attempt}-{self.seq:07d}"

    def lines_for(self, units: npt.NDArray[np.int64], attempt: int) -> list[_Line]:
        job = self.job
        counts = job.unit_tokens[units].tolist()
        max_inputs = min(self.embedder.request_max_inputs(), self.max_inputs_per_batch)
        ranges = pack_by_tokens(counts, max_inputs=max_inputs, max_tokens=self.embedder.request_max_tokens())
        return [
            _Line(self._new_id(attempt), units[r.start : r.stop], int(sum(counts[r.start : r.stop])), attempt)
            for r in ranges
        ]

    def line_json(self, line: _Line) -> bytes:
        body = self.embedder.create_kwargs(self.job.texts(line.units))
        record = {"custom_id": line.custom_id, "method": "POST", "url": ENDPOINT, "body": body}
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"

    def shards_for(self, lines: list[_Line]) -> list[_Shard]:
        shards: list[_Shard] = []
        current: list[_Line] = []
        size = inputs = tokens = 0
        token_cap = self.max_enqueued_tokens
        for line in lines:
            line_bytes = len(self.line_json(line))
            if line_bytes > self.max_file_bytes:
                raise EmbeddingError(
                    f"one batch request line is {line_bytes} bytes, over the {self.max_file_bytes}-byte file limit; "
                    "lower max_batch_inputs"
                )
            n = int(line.units.size)
            full = current and (
                len(current) + 1 > self.max_requests_per_file
                or inputs + n > self.max_inputs_per_batch
                or size + line_bytes > self.max_file_bytes
                or (token_cap is not None and tokens + line.tokens > token_cap)
            )
            if full:
                shards.append(_Shard(current, tokens))
                current, size, inputs, tokens = [], 0, 0, 0
            current.append(line)
            size += line_bytes
            inputs += n
            tokens += line.tokens
        if current:
            shards.append(_Shard(current, tokens))
        return shards

    # --- resuming -----------------------------------------------------------------------------------------------

    def _adopt_pending(self, entry: str, lines: dict[str, list[bytes]], tokens: int) -> str | None:
        """The batch a journal entry ``pending:<request id>`` stands for, if the server has it (then journaled
        under its id); else the entry is dropped and its texts are planned again."""
        cache = self.job.cache
        assert cache is not None
        tag = entry[len(PENDING) :]
        batch = self.client.request(
            lambda sdk: _find_batch(sdk, tag, retrying=True), description=f"look up batch {tag}"
        )
        if batch is None:
            logger.info("Batch request %s from an earlier run never reached the server; planning it again", tag)
            cache.journal_remove(entry)
            self.unfinished.add(tag)  # its input file may have been uploaded: look before uploading again
            return None
        logger.info("Batch request %s from an earlier run was created as %s; adopting it", tag, batch.id)
        cache.journal_add(batch.id, self.job.model, self.job.dimensions, lines, tokens)
        cache.journal_remove(entry)
        return str(batch.id)

    def resume(self) -> npt.NDArray[np.bool_]:
        """Adopt journaled batches whose lines are all texts of this call still missing (looking up on the server
        the ones a failed run was creating); returns the units they cover."""
        job = self.job
        covered = np.zeros(job.plan.n_units, dtype=bool)
        if job.cache is None or job.keys is None:
            return covered
        unit_of = {key: u for u, key in enumerate(job.keys)}
        for entry, lines, tokens in job.cache.journal_pending(job.model, job.dimensions):
            units_by_line = {cid: [unit_of.get(k) for k in keys] for cid, keys in lines.items()}
            flat = [u for us in units_by_line.values() for u in us]
            if any(u is None for u in flat):
                continue  # another call's batch: leave it for that call
            arr = np.asarray(flat, dtype=np.int64)
            if job.unit_done[arr].all():
                job.cache.journal_remove(entry)  # already processed
                continue
            batch_id: str | None = entry
            if entry.startswith(PENDING):
                batch_id = self._adopt_pending(entry, lines, tokens)
                if batch_id is None:
                    continue
            if covered[arr].any() or job.unit_done[arr].any():
                continue
            covered[arr] = True
            shard_lines = [
                _Line(cid, np.asarray(us, dtype=np.int64), int(job.unit_tokens[np.asarray(us, dtype=np.int64)].sum()))
                for cid, us in units_by_line.items()
            ]
            shard = _Shard(shard_lines, tokens, batch_id=batch_id, resumed=True)
            self.active.append(shard)
            logger.info("Resuming batch %s (%d requests) from the journal", batch_id, len(shard_lines))
        return covered

    # --- API calls ----------------------------------------------------------------------------------------------

    def _journal(self, entry: str, shard: _Shard) -> None:
        job = self.job
        if job.cache is not None and job.keys is not None:
            keys = job.keys
            job.cache.journal_add(
                entry,
                job.model,
                job.dimensions,
                {line.custom_id: [keys[u] for u in line.units.tolist()] for line in shard.lines},
                shard.tokens,
            )

    def submit(self, shard: _Shard) -> None:
        job = self.job
        digest = hashlib.sha256()
        fd, path = tempfile.mkstemp(prefix="finetune-embed-batch-", suffix=".jsonl")
        try:
            size = 0
            with os.fdopen(fd, "wb") as fh:
                for line in shard.lines:
                    data = self.line_json(line)
                    digest.update(data)
                    size += len(data)
                    fh.write(data)
            # the client request id: the same shard (model, dimensions, custom ids, texts) always gets the same one
            tag = f"batch-{digest.hexdigest()[:32]}"
            name = f"embeddings-{tag}.jsonl"
            rerun_check = job.cache is None  # without a journal, a rerun is recognised on the server only
            self._journal(PENDING + tag, shard)  # before anything is created: a failed run leaves the id behind

            def upload(sdk: openai.OpenAI) -> Any:
                with open(path, "rb") as fh:
                    return sdk.files.create(file=(name, fh, "application/jsonl"), purpose="batch")

            def find_file(sdk: openai.OpenAI, retrying: bool) -> Any:
                def same(file: Any) -> bool:
                    return getattr(file, "filename", None) == name and getattr(file, "bytes", None) == size

                return scan_pages(lambda after: _batch_files_page(sdk, after), same)

            file = create_once(
                self.client,
                upload,
                find_file,
                description="upload batch input file",
                look_first=rerun_check or tag in self.unfinished,
            )
        finally:
            os.unlink(path)
        shard.input_file_id = file.id
        meta = {"created_by": "finetune_embed", "model": job.model}
        meta.update(self.metadata or {})
        meta[REQUEST_KEY] = tag
        batch = create_once(
            self.client,
            lambda sdk: sdk.batches.create(
                input_file_id=file.id, endpoint=ENDPOINT, completion_window="24h", metadata=meta
            ),
            lambda sdk, retrying: _find_batch(sdk, tag, retrying=retrying),
            description="create batch",
            look_first=rerun_check,
        )
        shard.batch_id = batch.id
        self._journal(batch.id, shard)
        if job.cache is not None:
            job.cache.journal_remove(PENDING + tag)
        logger.info(
            "Created batch %s: %d requests, %d inputs, %d tokens",
            batch.id,
            len(shard.lines),
            sum(int(line.units.size) for line in shard.lines),
            shard.tokens,
        )
        self.active.append(shard)

    def _for_each_line(self, file_id: str, handle: Callable[[dict[str, Any]], None]) -> None:
        """Stream a result file and call ``handle`` on each JSON line (no whole file in memory). A download
        that fails half-way is retried from the start; ``handle`` must tolerate seeing a line twice."""

        check_path_id(file_id, argument="batch result file id", example="file-abc123")

        def download(sdk: openai.OpenAI) -> None:
            with sdk.files.with_streaming_response.content(file_id) as resp:
                for raw in resp.iter_lines():
                    if not raw.strip():
                        continue
                    try:
                        record = json.loads(raw)
                    except ValueError as exc:
                        raise EmbeddingResponseError(
                            f"batch file {file_id} has a line that is not JSON: {exc}"
                        ) from exc
                    if isinstance(record, dict):
                        handle(record)

        self.client.request(download, description=f"download batch file {file_id}")

    def _delete(self, file_id: str | None) -> None:
        if not file_id or not self.delete_files:
            return
        try:
            self.client.request(lambda sdk: sdk.files.delete(file_id), description="delete batch file")
        except Exception as exc:  # housekeeping only
            logger.warning("Could not delete batch file %s: %s", file_id, exc)

    def collect(self, shard: _Shard, batch: Any) -> list[_Line]:
        """Decode a finished batch; returns the lines to send again."""
        job = self.job
        status = batch.status
        if status == "failed":
            errors = [f"{e.code}: {e.message}" for e in (getattr(batch.errors, "data", None) or [])]
            if any("token" in e.lower() and "limit" in e.lower() for e in errors):
                logger.warning("Batch %s failed on the enqueued-token limit; resubmitting later", batch.id)
                if self.max_enqueued_tokens is None:
                    self.max_enqueued_tokens = max(1, shard.tokens // 2)
                self._forget(shard)
                return list(shard.lines)
            self._forget(shard)
            raise BatchAPIError(
                f"batch {batch.id} failed: {'; '.join(errors) or 'no reason given'}", batch_id=batch.id, errors=errors
            )
        done: set[str] = set()
        line_errors: dict[str, str] = {}

        def on_output(record: dict[str, Any]) -> None:
            cid = record.get("custom_id")
            line = shard.by_id.get(cid) if isinstance(cid, str) else None
            if line is None or line.custom_id in done:
                return
            response = record.get("response") or {}
            body = response.get("body") or {}
            if response.get("status_code") != 200:
                line_errors[line.custom_id] = _line_error(record)
                return
            try:
                job.accept(line.units, body.get("data"), allow_missing=False)
            except EmbeddingResponseError as exc:
                line_errors[line.custom_id] = f"bad response: {exc}"
                return
            done.add(line.custom_id)
            line_errors.pop(line.custom_id, None)
            with job.lock:
                job.requests += 1
                job.tokens_sent += line.tokens

        def on_error(record: dict[str, Any]) -> None:
            cid = record.get("custom_id")
            if isinstance(cid, str) and cid in shard.by_id and cid not in done:
                line_errors[cid] = _line_error(record)

        if batch.output_file_id:
            self._for_each_line(batch.output_file_id, on_output)
        if batch.error_file_id:
            self._for_each_line(batch.error_file_id, on_error)
        retry: list[_Line] = []
        for line in shard.lines:
            if line.custom_id in done:
                continue
            reason = line_errors.get(line.custom_id, f"no result (batch {status})")
            if _permanent(reason):
                self.fatal.append(f"{line.custom_id} (inputs {self._inputs_of(line)}): {reason}")
            else:
                retry.append(line)
        self._forget(shard)
        for file_id in (shard.input_file_id, batch.output_file_id, batch.error_file_id):
            self._delete(file_id)
        logger.info("Batch %s %s: %d requests done, %d to retry", batch.id, status, len(done), len(retry))
        return retry

    def _inputs_of(self, line: _Line) -> str:
        first = [self.job.first_input_of(int(u)) for u in line.units[:3].tolist()]
        return ", ".join(map(str, first)) + (" ..." if line.units.size > 3 else "")

    def _forget(self, shard: _Shard) -> None:
        if shard.batch_id and self.job.cache is not None:
            self.job.cache.journal_remove(shard.batch_id)

    # --- the loop -----------------------------------------------------------------------------------------------

    def enqueued(self) -> int:
        return sum(s.tokens for s in self.active)

    def fill(self) -> None:
        cap = self.max_enqueued_tokens
        while self.todo and (cap is None or not self.active or self.enqueued() + self.todo[0].tokens <= cap):
            self.submit(self.todo.popleft())

    def run(self) -> None:
        job = self.job
        covered = self.resume()
        missing = job.missing()
        missing = missing[~covered[missing]]
        if job.cache is None:
            logger.warning("Batch API without a cache: a run that is killed cannot resume its batches")
        self.todo.extend(self.shards_for(self.lines_for(missing, 1)))
        interval = self.poll_interval
        while self.todo or self.active:
            self.fill()
            if self.deadline is not None and self.clock() >= self.deadline:
                ids = [s.batch_id for s in self.active if s.batch_id]
                raise BatchTimeoutError(
                    f"the Batch API did not finish within the timeout; batches {', '.join(ids)} go on on the server "
                    "and the next embed_batch_api() call over the same texts resumes them",
                    batch_ids=ids,
                )
            self.sleep(interval)
            interval = min(self.max_poll_interval, interval * 1.5)
            for shard in list(self.active):
                batch_id = shard.batch_id
                assert batch_id is not None
                batch = self.client.request(_retrieve(batch_id), description="poll batch")
                if batch.status not in TERMINAL:
                    continue
                self.active.remove(shard)
                retry = self.collect(shard, batch)
                if not retry:
                    continue
                again = [line for line in retry if line.attempt < self.max_rounds]
                for line in retry:
                    if line.attempt >= self.max_rounds:
                        where = f"{line.custom_id} (inputs {self._inputs_of(line)})"
                        self.fatal.append(f"{where}: failed {line.attempt} times")
                if again:
                    attempt = max(line.attempt for line in again) + 1
                    units = np.concatenate([line.units for line in again])
                    self.todo.extend(self.shards_for(self.lines_for(units, attempt)))
                interval = self.poll_interval
        if self.fatal:
            raise BatchAPIError(
                f"{len(self.fatal)} batch request(s) failed: "
                + "; ".join(self.fatal[:5])
                + (" ..." if len(self.fatal) > 5 else "")
                + ". The other vectors are in the cache.",
                errors=self.fatal,
            )


def _batch_files_page(sdk: Any, after: str | None) -> Any:
    from openai import omit

    return sdk.files.list(purpose="batch", after=after if after else omit, limit=10_000)


def _find_batch(sdk: Any, tag: str, *, retrying: bool) -> Any | None:
    """The batch created with client request id ``tag``, if the server has it. A retry (or a journaled request)
    adopts it whatever its status; a rerun without a journal adopts one still running, or a completed one whose
    output file is still there (a finished batch whose results were already taken cannot be read again)."""
    import openai as _openai

    def usable(batch: Any) -> bool:
        if request_id_of(batch) != tag:
            return False
        status = str(getattr(batch, "status", ""))
        if retrying or status in ACTIVE:
            return True
        if status != "completed" or not getattr(batch, "output_file_id", None):
            return False
        try:
            sdk.files.retrieve(batch.output_file_id)
        except _openai.NotFoundError:
            return False
        return True

    from openai import omit

    return scan_pages(lambda after: sdk.batches.list(after=after if after else omit, limit=100), usable)


def _retrieve(batch_id: str) -> Callable[[openai.OpenAI], Any]:
    check_path_id(batch_id, argument="batch id (from the embedding cache's journal)", example="batch_abc123")

    def op(sdk: openai.OpenAI) -> Any:
        return sdk.batches.retrieve(batch_id)

    return op


def _line_error(record: dict[str, Any]) -> str:
    error = record.get("error") or {}
    response = record.get("response") or {}
    body = response.get("body") or {}
    inner = body.get("error") if isinstance(body, dict) else None
    source = inner if isinstance(inner, dict) else error if isinstance(error, dict) else {}
    code = source.get("code") or response.get("status_code") or "error"
    message = source.get("message") or ""
    status = response.get("status_code")
    return f"{status or ''} {code}: {message}".strip()


def _permanent(reason: str) -> bool:
    """A line error that sending again will not fix: the server refused the request itself (4xx but 408/409/429);
    expired lines, 5xx, rate limits and undecodable responses are sent again."""
    head = reason.split(" ", 1)[0]
    return head.isdigit() and 400 <= int(head) < 500 and int(head) not in (408, 409, 429)


def run_batch_api(
    embedder: Embedder,
    job: EmbedJob,
    *,
    poll_interval: float = 30.0,
    max_poll_interval: float = 600.0,
    timeout: float | None = None,
    max_requests_per_file: int = MAX_FILE_REQUESTS,
    max_inputs_per_batch: int | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_enqueued_tokens: int | None = None,
    max_rounds: int = 3,
    metadata: dict[str, str] | None = None,
    delete_files: bool = True,
) -> None:
    """Fill ``job`` through the Batch API (see the module docstring). Keyword arguments of
    :meth:`Embedder.embed_batch_api`:

    * ``poll_interval`` / ``max_poll_interval`` - seconds between polls, growing 1.5× up to the maximum.
    * ``timeout`` - give up waiting after this many seconds (:class:`BatchTimeoutError`; the batches go on).
    * ``max_requests_per_file`` (≤ 50,000), ``max_inputs_per_batch`` (≤ 50,000), ``max_file_bytes``
      (≤ 200 MB) - per-batch limits.
    * ``max_enqueued_tokens`` - your organisation's queued-token limit for the model; batches are held back so
      that no more than this is queued at once.
    * ``max_rounds`` - how many times a failed or expired line is sent in all.
    * ``metadata`` - added to each batch's metadata.
    * ``delete_files`` - delete the input, output and error files once their vectors are cached.
    """
    catalog_limit = default_catalog().max_batch_file_inputs
    if not 1 <= max_requests_per_file <= MAX_FILE_REQUESTS:
        raise ConfigError(f"max_requests_per_file must be between 1 and {MAX_FILE_REQUESTS}")
    inputs_cap = catalog_limit if max_inputs_per_batch is None else max_inputs_per_batch
    if not 1 <= inputs_cap <= catalog_limit:
        raise ConfigError(f"max_inputs_per_batch must be between 1 and {catalog_limit}")
    if not 1 <= max_file_bytes <= MAX_FILE_BYTES:
        raise ConfigError(f"max_file_bytes must be between 1 and {MAX_FILE_BYTES}")
    if max_rounds < 1:
        raise ConfigError("max_rounds must be at least 1")
    runner = _Runner(
        embedder,
        job,
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        timeout=timeout,
        max_requests_per_file=max_requests_per_file,
        max_inputs_per_batch=min(inputs_cap, catalog_limit),
        max_file_bytes=max_file_bytes,
        max_enqueued_tokens=max_enqueued_tokens,
        max_rounds=max_rounds,
        metadata=metadata,
        delete_files=delete_files,
    )
    job.start_progress()
    try:
        runner.run()
    finally:
        job.close_progress()
