"""The asyncio twin of the Batch API runner: :class:`~._batch_api.BatchRun` plus awaited API calls.

Everything that decides (planning, sharding, the journal, what to adopt, decode or send again) is the shared
:class:`~._batch_api.BatchRun`; this module only awaits the calls, and moves the blocking work (writing a shard's
file, decoding result lines into the cache) to worker threads so that the event loop stays free.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._idempotent import acreate_once, ascan_pages
from .._ids import check_path_id
from .._logging import get_logger
from ._batch_api import (
    ENDPOINT,
    TERMINAL,
    BatchRun,
    BatchSettings,
    Collector,
    _batch_files_page,
    _Line,
    _Shard,
    verdict,
)
from ._job import EmbedJob

if TYPE_CHECKING:
    import openai

    from ._async import AsyncEmbedder

__all__ = ["arun_batch_api"]

logger = get_logger("embeddings")


async def _afind_batch(sdk: Any, tag: str, *, retrying: bool) -> Any | None:
    """The async twin of ``_find_batch``."""
    import openai as _openai
    from openai import omit

    async def usable(batch: Any) -> bool:
        answer = verdict(batch, tag, retrying=retrying)
        if answer is not None:
            return answer
        try:
            await sdk.files.retrieve(batch.output_file_id)
        except _openai.NotFoundError:
            return False
        return True

    return await ascan_pages(lambda after: sdk.batches.list(after=after if after else omit, limit=100), usable)


class _AsyncRunner(BatchRun):
    """The asyncio run: :class:`BatchRun` plus awaited API calls and sleeps (``sleep`` may be a coroutine
    function or a plain one, as for :class:`AsyncEmbedder`'s pacing)."""

    def __init__(self, embedder: AsyncEmbedder, job: EmbedJob, settings: BatchSettings) -> None:
        super().__init__(embedder, job, settings, embedder.clock)
        self.client = embedder.client
        self._sleep = embedder.sleep

    async def sleep(self, seconds: float) -> None:
        if self._sleep is None:
            await asyncio.sleep(seconds)
            return
        result = self._sleep(seconds)
        if inspect.isawaitable(result):
            await result

    async def resume(self) -> npt.NDArray[np.bool_]:
        """See ``_Runner.resume``."""
        covered = self.no_cover()
        for item in await asyncio.to_thread(list, self.journal_entries()):
            batch_id: str | None = item.entry
            tag = item.pending_tag
            if tag is not None:
                batch = await self.client.request(
                    partial(_afind_batch, tag=tag, retrying=True), description=f"look up batch {tag}"
                )
                batch_id = self.adopt_pending(item, batch)
            if batch_id is not None:
                self.take_over(item, batch_id, covered)
        return covered

    async def submit(self, shard: _Shard) -> None:
        staged = await asyncio.to_thread(self.write_shard, shard)
        try:

            async def upload(sdk: openai.AsyncOpenAI) -> Any:
                with open(staged.path, "rb") as fh:
                    return await sdk.files.create(file=(staged.name, fh, "application/jsonl"), purpose="batch")

            file = await acreate_once(
                self.client,
                upload,
                lambda sdk, retrying: ascan_pages(lambda after: _batch_files_page(sdk, after), staged.same),
                description="upload batch input file",
                look_first=staged.look_first or staged.tag in self.unfinished,
            )
        finally:
            os.unlink(staged.path)
        meta = self.batch_metadata(staged.tag)

        async def create(sdk: openai.AsyncOpenAI) -> Any:
            return await sdk.batches.create(
                input_file_id=file.id, endpoint=ENDPOINT, completion_window="24h", metadata=meta
            )

        batch = await acreate_once(
            self.client,
            create,
            lambda sdk, retrying: _afind_batch(sdk, staged.tag, retrying=retrying),
            description="create batch",
            look_first=staged.look_first,
        )
        self.created(shard, file.id, batch.id, staged.tag)

    async def _for_each_line(self, file_id: str, handle: Callable[[dict[str, Any]], None]) -> None:
        """See ``_Runner._for_each_line``; each line is decoded and handled in a worker thread."""
        check_path_id(file_id, argument="batch result file id", example="file-abc123")

        def decode_and_handle(raw: str) -> None:
            record = self.decode_line(file_id, raw)
            if record is not None:
                handle(record)

        async def download(sdk: openai.AsyncOpenAI) -> None:
            async with sdk.files.with_streaming_response.content(file_id) as resp:
                async for raw in resp.iter_lines():
                    if raw.strip():
                        await asyncio.to_thread(decode_and_handle, raw)

        await self.client.request(download, description=f"download batch file {file_id}")

    async def _delete(self, file_id: str) -> None:
        async def delete(sdk: openai.AsyncOpenAI) -> Any:
            return await sdk.files.delete(file_id)

        try:
            await self.client.request(delete, description="delete batch file")
        except Exception as exc:  # housekeeping only
            logger.warning("Could not delete batch file %s: %s", file_id, exc)

    async def collect(self, shard: _Shard, batch: Any) -> list[_Line]:
        """See ``_Runner.collect``."""
        if batch.status == "failed":
            return self.failed(shard, batch)
        collector = Collector(self.job, shard)
        if batch.output_file_id:
            await self._for_each_line(batch.output_file_id, collector.on_output)
        if batch.error_file_id:
            await self._for_each_line(batch.error_file_id, collector.on_error)
        retry = self.settle(shard, batch, collector)
        for file_id in self.files_to_delete(shard, batch):
            await self._delete(file_id)
        return retry

    async def _poll(self, batch_id: str) -> Any:
        check_path_id(batch_id, argument="batch id (from the embedding cache's journal)", example="batch_abc123")

        async def retrieve(sdk: openai.AsyncOpenAI) -> Any:
            return await sdk.batches.retrieve(batch_id)

        return await self.client.request(retrieve, description="poll batch")

    async def run(self) -> None:
        covered = await self.resume()
        await asyncio.to_thread(self.plan, covered)  # writes every request line once to size the shards
        interval = self.settings.poll_interval
        while self.todo or self.active:
            while (shard := self.next_to_submit()) is not None:
                await self.submit(shard)
            self.check_deadline()
            await self.sleep(interval)
            interval = self.next_interval(interval)
            for shard in list(self.active):
                assert shard.batch_id is not None
                batch = await self._poll(shard.batch_id)
                if batch.status not in TERMINAL:
                    continue
                self.active.remove(shard)
                retry = await self.collect(shard, batch)
                if await asyncio.to_thread(self.requeue, retry):  # plans the lines again: writes their JSON
                    interval = self.settings.poll_interval
        self.raise_fatal()


async def arun_batch_api(embedder: AsyncEmbedder, job: EmbedJob, settings: BatchSettings) -> None:
    """The async twin of :func:`~._batch_api.run_batch_api`."""
    runner = _AsyncRunner(embedder, job, settings)
    job.start_progress()
    try:
        await runner.run()
    finally:
        job.close_progress()
