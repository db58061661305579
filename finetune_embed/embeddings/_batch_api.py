"""Batch API mode: embed a big corpus at half the price, results within 24 hours.

What :meth:`Embedder.embed_batch_api` (and its twin :meth:`AsyncEmbedder.embed_batch_api`) does:

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

:class:`BatchRun` holds all of this that does no I/O; the sync runner here and the asyncio one in
``_batch_api_async`` add only the API calls and the waiting, so both behave alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
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

    from ._base import EmbedderBase
    from ._embedder import Embedder

__all__ = ["BatchAPIError", "BatchSettings", "BatchTimeoutError", "batch_settings", "run_batch_api"]

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


@dataclass(frozen=True)
class BatchSettings:
    """The checked keyword arguments of ``embed_batch_api`` (see :meth:`Embedder.embed_batch_api`)."""

    poll_interval: float
    max_poll_interval: float
    timeout: float | None
    max_requests_per_file: int
    max_inputs_per_batch: int
    max_file_bytes: int
    max_enqueued_tokens: int | None
    max_rounds: int
    metadata: dict[str, str] | None
    delete_files: bool


def batch_settings(
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
) -> BatchSettings:
    """Check the Batch API limits a caller gave (:class:`ConfigError` for one out of range)."""
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
    return BatchSettings(
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
        timeout=timeout,
        max_requests_per_file=max_requests_per_file,
        max_inputs_per_batch=inputs_cap,
        max_file_bytes=max_file_bytes,
        max_enqueued_tokens=max_enqueued_tokens,
        max_rounds=max_rounds,
        metadata=metadata,
        delete_files=delete_files,
    )


@dataclass
class JournalEntry:
    """A journaled batch whose lines are all texts of this call still missing."""

    entry: str
    lines: dict[str, list[bytes]]
    tokens: int
    units_by_line: dict[str, list[int]]
    units: npt.NDArray[np.int64]

    @property
    def pending_tag(self) -> str | None:
        """The client request id of a batch a failed run was creating (it may not exist), else ``None``."""
        return self.entry[len(PENDING) :] if self.entry.startswith(PENDING) else None


@dataclass
class ShardFile:
    """A shard written to a temporary JSONL file, named after its client request id."""

    path: str
    tag: str
    name: str
    size: int
    look_first: bool  # a rerun: look for the file (and, without a journal, the batch) before creating

    def same(self, file: Any) -> bool:
        """Whether a server file is this shard's upload (its tagged name and byte count)."""
        return getattr(file, "filename", None) == self.name and getattr(file, "bytes", None) == self.size


class Collector:
    """Decodes the lines of one finished batch's output and error files into the job."""

    def __init__(self, job: EmbedJob, shard: _Shard) -> None:
        self.job = job
        self.shard = shard
        self.done: set[str] = set()
        self.line_errors: dict[str, str] = {}

    def on_output(self, record: dict[str, Any]) -> None:
        cid = record.get("custom_id")
        line = self.shard.by_id.get(cid) if isinstance(cid, str) else None
        if line is None or line.custom_id in self.done:
            return
        response = record.get("response") or {}
        body = response.get("body") or {}
        if response.get("status_code") != 200:
            self.line_errors[line.custom_id] = _line_error(record)
            return
        job = self.job
        try:
            job.accept(line.units, body.get("data"), allow_missing=False)
        except EmbeddingResponseError as exc:
            self.line_errors[line.custom_id] = f"bad response: {exc}"
            return
        self.done.add(line.custom_id)
        self.line_errors.pop(line.custom_id, None)
        with job.lock:
            job.requests += 1
            job.tokens_sent += line.tokens

    def on_error(self, record: dict[str, Any]) -> None:
        cid = record.get("custom_id")
        if isinstance(cid, str) and cid in self.shard.by_id and cid not in self.done:
            self.line_errors[cid] = _line_error(record)


class BatchRun:
    """What a Batch API run knows and decides, without any I/O: planning, sharding, the journal, decoding results
    and what to send again. :class:`_Runner` (sync) and the async runner add the API calls and the waiting."""

    def __init__(
        self, embedder: EmbedderBase, job: EmbedJob, settings: BatchSettings, clock: Callable[[], float]
    ) -> None:
        self.embedder = embedder
        self.job = job
        self.settings = settings
        self.clock = clock
        self.deadline = None if settings.timeout is None else clock() + settings.timeout
        self.max_enqueued_tokens = settings.max_enqueued_tokens
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
        max_inputs = min(self.embedder.request_max_inputs(), self.settings.max_inputs_per_batch)
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
        settings = self.settings
        shards: list[_Shard] = []
        current: list[_Line] = []
        size = inputs = tokens = 0
        token_cap = self.max_enqueued_tokens
        for line in lines:
            line_bytes = len(self.line_json(line))
            if line_bytes > settings.max_file_bytes:
                raise EmbeddingError(
                    f"one batch request line is {line_bytes} bytes, over the {settings.max_file_bytes}-byte file "
                    "limit; lower max_batch_inputs"
                )
            n = int(line.units.size)
            full = current and (
                len(current) + 1 > settings.max_requests_per_file
                or inputs + n > settings.max_inputs_per_batch
                or size + line_bytes > settings.max_file_bytes
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

    def plan(self, covered: npt.NDArray[np.bool_]) -> None:
        """Shard the texts still missing that no resumed batch covers."""
        job = self.job
        missing = job.missing()
        missing = missing[~covered[missing]]
        if job.cache is None:
            logger.warning("Batch API without a cache: a run that is killed cannot resume its batches")
        self.todo.extend(self.shards_for(self.lines_for(missing, 1)))

    # --- resuming -----------------------------------------------------------------------------------------------

    def journal_entries(self) -> Iterator[JournalEntry]:
        """The journaled batches whose lines are all texts of this call still missing (entries already processed
        are dropped; another call's batches are left for that call)."""
        job = self.job
        if job.cache is None or job.keys is None:
            return
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
            known = {cid: [u for u in us if u is not None] for cid, us in units_by_line.items()}
            yield JournalEntry(entry, lines, tokens, known, arr)

    def adopt_pending(self, item: JournalEntry, batch: Any | None) -> str | None:
        """After looking up the batch a ``pending:<request id>`` entry stands for: journal it under its id, or,
        when the server never got it, drop the entry so that its texts are planned again."""
        cache = self.job.cache
        tag = item.pending_tag
        assert cache is not None
        assert tag is not None
        if batch is None:
            logger.info("Batch request %s from an earlier run never reached the server; planning it again", tag)
            cache.journal_remove(item.entry)
            self.unfinished.add(tag)  # its input file may have been uploaded: look before uploading again
            return None
        logger.info("Batch request %s from an earlier run was created as %s; adopting it", tag, batch.id)
        cache.journal_add(batch.id, self.job.model, self.job.dimensions, item.lines, item.tokens)
        cache.journal_remove(item.entry)
        return str(batch.id)

    def take_over(self, item: JournalEntry, batch_id: str, covered: npt.NDArray[np.bool_]) -> None:
        """Poll journaled batch ``batch_id`` in this run (unless its texts are covered already)."""
        job = self.job
        arr = item.units
        if covered[arr].any() or job.unit_done[arr].any():
            return
        covered[arr] = True
        shard_lines = [
            _Line(cid, np.asarray(us, dtype=np.int64), int(job.unit_tokens[np.asarray(us, dtype=np.int64)].sum()))
            for cid, us in item.units_by_line.items()
        ]
        self.active.append(_Shard(shard_lines, item.tokens, batch_id=batch_id, resumed=True))
        logger.info("Resuming batch %s (%d requests) from the journal", batch_id, len(shard_lines))

    def no_cover(self) -> npt.NDArray[np.bool_]:
        return np.zeros(self.job.plan.n_units, dtype=bool)

    # --- creating -----------------------------------------------------------------------------------------------

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

    def write_shard(self, shard: _Shard) -> ShardFile:
        """Write the shard's request lines to a temporary file (the caller deletes it) and journal its client
        request id (a hash of the content: the same shard always gets the same one) before anything is created,
        so that a failed run leaves the id behind."""
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
            tag = f"batch-{digest.hexdigest()[:32]}"
            self._journal(PENDING + tag, shard)
        except BaseException:
            os.unlink(path)
            raise
        # without a journal, a rerun is recognised on the server only
        return ShardFile(path, tag, f"embeddings-{tag}.jsonl", size, look_first=self.job.cache is None)

    def batch_metadata(self, tag: str) -> dict[str, str]:
        meta = {"created_by": "finetune_embed", "model": self.job.model}
        meta.update(self.settings.metadata or {})
        meta[REQUEST_KEY] = tag
        return meta

    def created(self, shard: _Shard, file_id: str, batch_id: str, tag: str) -> None:
        """Journal a batch just created (or adopted) for ``shard`` and poll it from now on."""
        shard.input_file_id = file_id
        shard.batch_id = batch_id
        self._journal(batch_id, shard)
        if self.job.cache is not None:
            self.job.cache.journal_remove(PENDING + tag)
        logger.info(
            "Created batch %s: %d requests, %d inputs, %d tokens",
            batch_id,
            len(shard.lines),
            sum(int(line.units.size) for line in shard.lines),
            shard.tokens,
        )
        self.active.append(shard)

    def next_to_submit(self) -> _Shard | None:
        """The next shard to create, if the enqueued-token limit leaves room for it (one batch always may)."""
        cap = self.max_enqueued_tokens
        if self.todo and (cap is None or not self.active or self.enqueued() + self.todo[0].tokens <= cap):
            return self.todo.popleft()
        return None

    def enqueued(self) -> int:
        return sum(s.tokens for s in self.active)

    # --- results ------------------------------------------------------------------------------------------------

    @staticmethod
    def decode_line(file_id: str, raw: str | bytes) -> dict[str, Any] | None:
        """One line of a result file as a JSON object (``None`` for a blank line or a non-object)."""
        if not raw.strip():
            return None
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise EmbeddingResponseError(f"batch file {file_id} has a line that is not JSON: {exc}") from exc
        return record if isinstance(record, dict) else None

    def failed(self, shard: _Shard, batch: Any) -> list[_Line]:
        """A batch that failed as a whole: sent again (later, smaller) when it hit the enqueued-token limit,
        else :class:`BatchAPIError`."""
        errors = [f"{e.code}: {e.message}" for e in (getattr(batch.errors, "data", None) or [])]
        if any("token" in e.lower() and "limit" in e.lower() for e in errors):
            logger.warning("Batch %s failed on the enqueued-token limit; resubmitting later", batch.id)
            if self.max_enqueued_tokens is None:
                self.max_enqueued_tokens = max(1, shard.tokens // 2)
            self.forget(shard)
            return list(shard.lines)
        self.forget(shard)
        raise BatchAPIError(
            f"batch {batch.id} failed: {'; '.join(errors) or 'no reason given'}", batch_id=batch.id, errors=errors
        )

    def settle(self, shard: _Shard, batch: Any, collector: Collector) -> list[_Line]:
        """After a finished batch's files were read: the lines to send again (lines the server refused are
        recorded as failed for good)."""
        retry: list[_Line] = []
        for line in shard.lines:
            if line.custom_id in collector.done:
                continue
            reason = collector.line_errors.get(line.custom_id, f"no result (batch {batch.status})")
            if _permanent(reason):
                self.fatal.append(f"{line.custom_id} (inputs {self._inputs_of(line)}): {reason}")
            else:
                retry.append(line)
        self.forget(shard)
        logger.info(
            "Batch %s %s: %d requests done, %d to retry", batch.id, batch.status, len(collector.done), len(retry)
        )
        return retry

    def files_to_delete(self, shard: _Shard, batch: Any) -> list[str]:
        if not self.settings.delete_files:
            return []
        ids = (shard.input_file_id, batch.output_file_id, batch.error_file_id)
        return [str(file_id) for file_id in ids if file_id]

    def _inputs_of(self, line: _Line) -> str:
        first = [self.job.first_input_of(int(u)) for u in line.units[:3].tolist()]
        return ", ".join(map(str, first)) + (" ..." if line.units.size > 3 else "")

    def forget(self, shard: _Shard) -> None:
        if shard.batch_id and self.job.cache is not None:
            self.job.cache.journal_remove(shard.batch_id)

    # --- the loop -----------------------------------------------------------------------------------------------

    def check_deadline(self) -> None:
        if self.deadline is not None and self.clock() >= self.deadline:
            ids = [s.batch_id for s in self.active if s.batch_id]
            raise BatchTimeoutError(
                f"the Batch API did not finish within the timeout; batches {', '.join(ids)} go on on the server "
                "and the next embed_batch_api() call over the same texts resumes them",
                batch_ids=ids,
            )

    def next_interval(self, interval: float) -> float:
        return min(self.settings.max_poll_interval, interval * 1.5)

    def requeue(self, retry: list[_Line]) -> bool:
        """Plan the lines of a finished batch to send again (up to ``max_rounds`` times each); whether any."""
        if not retry:
            return False
        max_rounds = self.settings.max_rounds
        again = [line for line in retry if line.attempt < max_rounds]
        for line in retry:
            if line.attempt >= max_rounds:
                self.fatal.append(f"{line.custom_id} (inputs {self._inputs_of(line)}): failed {line.attempt} times")
        if again:
            attempt = max(line.attempt for line in again) + 1
            units = np.concatenate([line.units for line in again])
            self.todo.extend(self.shards_for(self.lines_for(units, attempt)))
        return True

    def raise_fatal(self) -> None:
        if self.fatal:
            raise BatchAPIError(
                f"{len(self.fatal)} batch request(s) failed: "
                + "; ".join(self.fatal[:5])
                + (" ..." if len(self.fatal) > 5 else "")
                + ". The other vectors are in the cache.",
                errors=self.fatal,
            )


class _Runner(BatchRun):
    """The synchronous run: :class:`BatchRun` plus the API calls (through the client's retry policy) and the
    sleeping between polls."""

    def __init__(self, embedder: Embedder, job: EmbedJob, settings: BatchSettings) -> None:
        super().__init__(embedder, job, settings, embedder.clock)
        self.client = embedder.client
        self.sleep = embedder.sleep or time.sleep

    def resume(self) -> npt.NDArray[np.bool_]:
        """Adopt journaled batches whose lines are all texts of this call still missing (looking up on the server
        the ones a failed run was creating); returns the units they cover."""
        covered = self.no_cover()
        for item in self.journal_entries():
            batch_id: str | None = item.entry
            tag = item.pending_tag
            if tag is not None:
                batch = self.client.request(
                    partial(_find_batch, tag=tag, retrying=True), description=f"look up batch {tag}"
                )
                batch_id = self.adopt_pending(item, batch)
            if batch_id is not None:
                self.take_over(item, batch_id, covered)
        return covered

    def submit(self, shard: _Shard) -> None:
        staged = self.write_shard(shard)
        try:

            def upload(sdk: openai.OpenAI) -> Any:
                with open(staged.path, "rb") as fh:
                    return sdk.files.create(file=(staged.name, fh, "application/jsonl"), purpose="batch")

            file = create_once(
                self.client,
                upload,
                lambda sdk, retrying: scan_pages(lambda after: _batch_files_page(sdk, after), staged.same),
                description="upload batch input file",
                look_first=staged.look_first or staged.tag in self.unfinished,
            )
        finally:
            os.unlink(staged.path)
        meta = self.batch_metadata(staged.tag)
        batch = create_once(
            self.client,
            lambda sdk: sdk.batches.create(
                input_file_id=file.id, endpoint=ENDPOINT, completion_window="24h", metadata=meta
            ),
            lambda sdk, retrying: _find_batch(sdk, staged.tag, retrying=retrying),
            description="create batch",
            look_first=staged.look_first,
        )
        self.created(shard, file.id, batch.id, staged.tag)

    def _for_each_line(self, file_id: str, handle: Callable[[dict[str, Any]], None]) -> None:
        """Stream a result file and call ``handle`` on each JSON line (no whole file in memory). A download
        that fails half-way is retried from the start; ``handle`` must tolerate seeing a line twice."""

        check_path_id(file_id, argument="batch result file id", example="file-abc123")

        def download(sdk: openai.OpenAI) -> None:
            with sdk.files.with_streaming_response.content(file_id) as resp:
                for raw in resp.iter_lines():
                    record = self.decode_line(file_id, raw)
                    if record is not None:
                        handle(record)

        self.client.request(download, description=f"download batch file {file_id}")

    def _delete(self, file_id: str) -> None:
        try:
            self.client.request(lambda sdk: sdk.files.delete(file_id), description="delete batch file")
        except Exception as exc:  # housekeeping only
            logger.warning("Could not delete batch file %s: %s", file_id, exc)

    def collect(self, shard: _Shard, batch: Any) -> list[_Line]:
        """Decode a finished batch; returns the lines to send again."""
        if batch.status == "failed":
            return self.failed(shard, batch)
        collector = Collector(self.job, shard)
        if batch.output_file_id:
            self._for_each_line(batch.output_file_id, collector.on_output)
        if batch.error_file_id:
            self._for_each_line(batch.error_file_id, collector.on_error)
        retry = self.settle(shard, batch, collector)
        for file_id in self.files_to_delete(shard, batch):
            self._delete(file_id)
        return retry

    def run(self) -> None:
        self.plan(self.resume())
        interval = self.settings.poll_interval
        while self.todo or self.active:
            while (shard := self.next_to_submit()) is not None:
                self.submit(shard)
            self.check_deadline()
            self.sleep(interval)
            interval = self.next_interval(interval)
            for shard in list(self.active):
                assert shard.batch_id is not None
                batch = self.client.request(_retrieve(shard.batch_id), description="poll batch")
                if batch.status not in TERMINAL:
                    continue
                self.active.remove(shard)
                if self.requeue(self.collect(shard, batch)):
                    interval = self.settings.poll_interval
        self.raise_fatal()


def _batch_files_page(sdk: Any, after: str | None) -> Any:
    from openai import omit

    return sdk.files.list(purpose="batch", after=after if after else omit, limit=10_000)


def verdict(batch: Any, tag: str, *, retrying: bool) -> bool | None:
    """Whether a listed batch is the one created with client request id ``tag`` and may be adopted: a retry (or a
    journaled request) adopts it whatever its status; a rerun without a journal adopts one still running, or
    (``None``: look the file up first) a completed one whose output file is still there (a finished batch whose
    results were already taken cannot be read again)."""
    if request_id_of(batch) != tag:
        return False
    status = str(getattr(batch, "status", ""))
    if retrying or status in ACTIVE:
        return True
    if status != "completed" or not getattr(batch, "output_file_id", None):
        return False
    return None


def _find_batch(sdk: Any, tag: str, *, retrying: bool) -> Any | None:
    """The batch created with client request id ``tag``, if the server has it and it may be adopted
    (:func:`verdict`)."""
    import openai as _openai
    from openai import omit

    def usable(batch: Any) -> bool:
        answer = verdict(batch, tag, retrying=retrying)
        if answer is not None:
            return answer
        try:
            sdk.files.retrieve(batch.output_file_id)
        except _openai.NotFoundError:
            return False
        return True

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


def run_batch_api(embedder: Embedder, job: EmbedJob, settings: BatchSettings) -> None:
    """Fill ``job`` through the Batch API (see the module docstring and :meth:`Embedder.embed_batch_api`)."""
    runner = _Runner(embedder, job, settings)
    job.start_progress()
    try:
        runner.run()
    finally:
        job.close_progress()
