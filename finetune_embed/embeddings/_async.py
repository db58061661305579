"""The asyncio twin of :class:`~finetune_embed.embeddings.Embedder`: same arguments, same results."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._client import AsyncClient
from .._logging import get_logger
from ._base import (
    CacheArg,
    ClientTypeError,
    EmbedderBase,
    EncodingFormat,
    InvalidPolicy,
    merge_results,
    rate_limits_of,
    split_batch,
)
from ._decode import StreamDecoder
from ._embedder import _MAX_REPLANS, is_transport_error
from ._job import EmbedJob
from ._namespace import cache_model
from ._plan import EmptyPolicy, LongPolicy
from ._ratelimit import Aborted, AsyncGate, RateState
from ._run import NOT_YET, Feed, RunContext
from ._tokens import TokenizerArg
from ._types import EmbeddingEstimate, EmbeddingResult

if TYPE_CHECKING:
    import openai

__all__ = ["AsyncEmbedder"]

logger = get_logger("embeddings")


class AsyncEmbedder(EmbedderBase):
    """:class:`Embedder` for asyncio code: ``await embedder.embed(texts)``.

    Takes an :class:`~finetune_embed.AsyncClient` (default: ``AsyncClient()`` from the environment) or an
    ``openai.AsyncOpenAI``, and the same keyword arguments as :class:`Embedder`, with the same meaning and the
    same results. Tokenising, cache reads and decoding run in worker threads so the event loop stays free.
    ``sleep`` may be a coroutine function.
    """

    def __init__(
        self,
        client: AsyncClient | openai.AsyncOpenAI | None = None,
        *,
        model: str = "text-embedding-3-small",
        dimensions: int | None = None,
        base_model: str | None = None,
        max_batch_inputs: int = 2048,
        max_batch_tokens: int = 300_000,
        max_concurrency: int = 4,
        rpm: int | None = None,
        tpm: int | None = None,
        cache: CacheArg = True,
        long_inputs: LongPolicy = "error",
        empty_inputs: EmptyPolicy = "error",
        invalid_vectors: InvalidPolicy = "error",
        encoding_format: EncodingFormat = "base64",
        progress: bool | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] | None = None,
        tokenizer: TokenizerArg = None,
        max_input_tokens: int | None = None,
        max_rebilled_tokens: int | None = None,
    ) -> None:
        super().__init__(
            model=model,
            dimensions=dimensions,
            base_model=base_model,
            max_batch_inputs=max_batch_inputs,
            max_batch_tokens=max_batch_tokens,
            max_concurrency=max_concurrency,
            rpm=rpm,
            tpm=tpm,
            cache=cache,
            long_inputs=long_inputs,
            empty_inputs=empty_inputs,
            invalid_vectors=invalid_vectors,
            encoding_format=encoding_format,
            progress=progress,
            clock=clock,
            sleep=sleep,
            tokenizer=tokenizer,
            max_input_tokens=max_input_tokens,
            max_rebilled_tokens=max_rebilled_tokens,
        )
        self.client = _async_client(client)
        self.cache_model = cache_model(self.client, self.model)
        self.note_unknown_model(self.client)

    # --- public API -------------------------------------------------------------------------------------------

    async def embed(self, texts: Iterable[str]) -> npt.NDArray[np.float32]:
        """See :meth:`Embedder.embed`."""
        return self.output(await self.embed_with_info(texts), self.empty_inputs)

    async def embed_one(self, text: str) -> npt.NDArray[np.float32]:
        """See :meth:`Embedder.embed_one`."""
        row: npt.NDArray[np.float32] = (await self.embed_with_info([text])).vectors[0]
        return row

    async def embed_with_info(self, texts: Iterable[str]) -> EmbeddingResult:
        """See :meth:`Embedder.embed_with_info`."""
        return self.check(await self._embed(self._as_list(texts), None, 0))

    async def _embed(self, items: list[str], max_input_tokens: int | None, depth: int) -> EmbeddingResult:
        plan = await asyncio.to_thread(self.plan, items, count_all=False, max_input_tokens=max_input_tokens)
        job = await asyncio.to_thread(self.new_job, plan)
        ctx = await self._run(job)
        if ctx is None or not ctx.too_long:
            return self.assemble(job)
        inputs, limit = self.too_long_plan(items, job, ctx)
        if depth >= _MAX_REPLANS:
            raise self.too_long_for_server(job, sorted(ctx.too_long), next(iter(ctx.too_long.values())).message,
                                           ctx.sizer.input_limit)
        sub = await self._embed([items[i] for i in inputs], limit, depth + 1)
        job.mark_failed(list(ctx.too_long))
        if sub.dimensions:
            job.ensure_dim(sub.dimensions)
        return merge_results(self.assemble(job), sub, inputs)

    async def estimate(
        self, texts: Iterable[str], *, rpm: int | None = None, tpm: int | None = None
    ) -> EmbeddingEstimate:
        """See :meth:`Embedder.estimate` (runs in a worker thread)."""
        return await asyncio.to_thread(self._estimate, texts, rpm=rpm, tpm=tpm)

    async def embed_batch_api(
        self,
        texts: Iterable[str],
        *,
        poll_interval: float = 30.0,
        max_poll_interval: float = 600.0,
        timeout: float | None = None,
        max_requests_per_file: int = 50_000,
        max_inputs_per_batch: int | None = None,
        max_file_bytes: int = 200_000_000,
        max_enqueued_tokens: int | None = None,
        max_rounds: int = 3,
        metadata: dict[str, str] | None = None,
        delete_files: bool = True,
    ) -> EmbeddingResult:
        """See :meth:`Embedder.embed_batch_api`: the same batches, journal and resume. Planning, writing the batch
        files and decoding the results run in worker threads; the waits between polls are ``sleep`` (default
        :func:`asyncio.sleep`)."""
        from ._batch_api import batch_settings
        from ._batch_api_async import arun_batch_api

        settings = batch_settings(
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
            timeout=timeout,
            max_requests_per_file=max_requests_per_file,
            max_inputs_per_batch=max_inputs_per_batch,
            max_file_bytes=max_file_bytes,
            max_enqueued_tokens=max_enqueued_tokens,
            max_rounds=max_rounds,
            metadata=metadata,
            delete_files=delete_files,
        )
        items = self._as_list(texts)
        plan = await asyncio.to_thread(self.plan, items)
        job = await asyncio.to_thread(self.new_job, plan, desc="Batch API")
        await arun_batch_api(self, job, settings)
        return self.finish(job)

    async def aclose(self) -> None:
        """Close the cache this embedder opened (the client stays open)."""
        self._close_cache()

    async def __aenter__(self) -> AsyncEmbedder:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the run ----------------------------------------------------------------------------------------------

    async def _run(self, job: EmbedJob) -> RunContext | None:
        if job.missing().size == 0:
            return None
        server = self.server(self.client)
        ctx = self.new_context(job, server, self.client)
        state = RateState(
            max_concurrency=self.max_concurrency, rpm=self.rpm, tpm=self.tpm, now=self.clock(), quota=server.quota
        )
        gate = AsyncGate(state, clock=self.clock, sleep=self.sleep, on_wait=ctx.feedback.wait)
        more = asyncio.Event()
        feed = Feed(job.unit_tokens, on_change=more.set)
        job.start_progress()
        tasks = [asyncio.create_task(self._worker(job, ctx, gate, feed, more)) for _ in range(self.max_concurrency)]
        chunks = job.counted_chunks(
            self.count_tokens, exact=self.counting_policy(state, gate, feed), request_tokens=self.request_max_tokens()
        )
        try:
            try:
                # tokens are counted in a worker thread while the first requests are on their way
                while not gate.stopped:
                    units = await asyncio.to_thread(next, chunks, None)
                    if units is None:
                        break
                    feed.add(units)
            finally:
                feed.done_producing()
            await asyncio.gather(*tasks)
        except BaseException:  # cancelled: stop sending, let requests in flight land in the cache
            gate.stop()
            feed.done_producing()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            job.close_progress()
            self.close_run(job, ctx, state)
        if ctx.errors:
            raise ctx.errors[0]
        return ctx

    async def _take(self, ctx: RunContext, gate: AsyncGate, feed: Feed, more: asyncio.Event, trial: bool) -> Any:
        while not gate.stopped:
            more.clear()
            max_inputs, max_tokens = self.request_limits(ctx, gate, trial)
            batch = feed.take(max_inputs, max_tokens)
            if batch is not NOT_YET:
                return batch
            try:
                await asyncio.wait_for(more.wait(), timeout=0.25)
            except TimeoutError:
                pass
        return None

    async def _worker(self, job: EmbedJob, ctx: RunContext, gate: AsyncGate, feed: Feed, more: asyncio.Event) -> None:
        while not gate.stopped:
            try:
                await gate.acquire_slot()
            except Aborted:
                return
            trial = ctx.sizer.claim_trial()
            try:
                batch = await self._take(ctx, gate, feed, more, trial)
                if batch is None:
                    return
                try:
                    await self._send(job, ctx, gate, feed, batch)
                finally:
                    feed.settle()
            except Aborted:
                return
            except Exception as exc:
                ctx.errors.append(exc)
                gate.stop()
                feed.wake()
                return
            finally:
                if trial:
                    ctx.sizer.end_trial()
                gate.release_slot()

    async def _send(
        self, job: EmbedJob, ctx: RunContext, gate: AsyncGate, feed: Feed, batch: npt.NDArray[np.int64]
    ) -> None:
        if not job.all_exact(batch) and self.exact_counts_needed(gate.state):
            await asyncio.to_thread(job.make_exact, batch)  # a limit became known after this batch was packed
        tokens = job.batch_tokens(batch)
        cap = gate.max_request_tokens()
        if tokens > cap and not job.all_exact(batch):
            await asyncio.to_thread(job.make_exact, batch)
            tokens = job.batch_tokens(batch)
        if tokens > cap:
            if batch.size == 1:
                raise self.too_large_for_tpm(job, int(batch[0]), cap)
            feed.push_front(split_batch(job, batch, cap))
            job.splits += 1
            return
        timeout = ctx.timeout_for(batch)
        kwargs = self.request_kwargs(job.texts(batch))
        if timeout is not None and timeout != ctx.base_timeout:
            kwargs["timeout"] = timeout
        sent: list[float] = []

        async def op(sdk: openai.AsyncOpenAI) -> StreamDecoder:
            entries = await gate.acquire_budget(tokens)
            try:
                sent_at = self.clock()
                sent.append(sent_at)
                decoder = job.decoder(batch)
                try:
                    async with sdk.embeddings.with_streaming_response.create(**kwargs) as response:
                        limits = rate_limits_of(response.headers)
                        async for chunk in response.iter_bytes():
                            decoder.feed(chunk)
                except Exception as exc:
                    self.attempt_failed(exc, gate, tokens, entries, sent_at)
                    if is_transport_error(exc):  # the body broke off: the server may have billed it
                        ctx.rebilled_tokens += self.tokens_billed(job, batch, None)
                    raise
                gate.report_success(limits, sent_at, entries)
                return decoder
            finally:
                gate.done_sending()

        try:
            decoder = await self._request(op, ctx, f"embeddings ({batch.size} inputs, {tokens} tokens)")
        except Exception as exc:
            if self.settle_failure(ctx, feed, job, gate, batch, tokens, timeout, exc):
                return
            raise
        latency = self.clock() - sent[-1]
        missing_pos = decoder.finish(allow_missing=True)
        if job.all_exact(batch) or decoder.usage is not None:
            billed = self.tokens_billed(job, batch, decoder.usage)
        else:
            billed = await asyncio.to_thread(self.tokens_billed, job, batch, None)
        missing = await asyncio.to_thread(job.commit, batch, missing_pos, billed)
        job.requests += 1
        job.tokens_sent += billed
        self.settle_success(ctx, job, batch, tokens, latency)
        if missing.size:
            ctx.note_resends(missing, job.first_input_of)
            feed.push_front([missing])

    async def _request(self, op: Any, ctx: RunContext, description: str) -> StreamDecoder:
        """``await client.request(op)``, with every wait of the client's retry policy shown as feedback."""
        client = self.client
        policy = client.retry
        base_sleep = policy.sleep
        last: list[BaseException] = []
        sdk = client.openai

        async def sleep(seconds: float) -> None:
            ctx.feedback.retrying(seconds, last[-1] if last else None, "the request")
            if base_sleep is None:
                await asyncio.sleep(seconds)
                return
            result = base_sleep(seconds)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result

        async def attempt() -> StreamDecoder:
            try:
                decoder: StreamDecoder = await op(sdk)
                return decoder
            except Exception as exc:
                error = client._error(exc)
                last.append(error)
                if error is exc:
                    raise
                raise error from exc

        result: StreamDecoder = await dataclasses.replace(policy, sleep=sleep).acall(attempt, description=description)
        return result


def _async_client(client: Any) -> AsyncClient:
    if client is None:
        return AsyncClient()
    if isinstance(client, AsyncClient):
        return client
    import openai

    if isinstance(client, openai.AsyncOpenAI):
        return AsyncClient.from_openai(client)
    from .._client import Client

    if isinstance(client, Client | openai.OpenAI):
        raise ClientTypeError("AsyncEmbedder needs an AsyncClient; use Embedder with a sync Client")
    raise ClientTypeError(
        f"client must be a finetune_embed.AsyncClient or an openai.AsyncOpenAI, got {type(client).__name__}"
    )
