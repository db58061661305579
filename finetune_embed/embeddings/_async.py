"""The asyncio twin of :class:`~finetune_embed.embeddings.Embedder`: same arguments, same results."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._client import AsyncClient, RateLimits
from .._exceptions import BadRequestError
from .._logging import get_logger
from ._base import (
    CacheArg,
    ClientTypeError,
    EmbedderBase,
    EncodingFormat,
    InvalidPolicy,
    RequestTooLarge,
    too_many_tokens,
)
from ._decode import StreamDecoder
from ._embedder import RunState, _on_rate_limit, as_openai_error, is_transport_error, note_resends, split_batch
from ._job import EmbedJob
from ._plan import EmptyPolicy, LongPolicy
from ._ratelimit import Aborted, AsyncGate, RateState
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
        )
        self.client = _async_client(client)

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
        items = self._as_list(texts)
        plan = await asyncio.to_thread(self.plan, items, count_all=False)
        job = await asyncio.to_thread(self.new_job, plan)
        await self._run(job)
        return self.finish(job)

    async def estimate(
        self, texts: Iterable[str], *, rpm: int | None = None, tpm: int | None = None
    ) -> EmbeddingEstimate:
        """See :meth:`Embedder.estimate` (runs in a worker thread)."""
        return await asyncio.to_thread(self._estimate, texts, rpm=rpm, tpm=tpm)

    async def aclose(self) -> None:
        """Close the cache this embedder opened (the client stays open)."""
        self._close_cache()

    async def __aenter__(self) -> AsyncEmbedder:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the run ----------------------------------------------------------------------------------------------

    async def _run(self, job: EmbedJob) -> None:
        if job.missing().size == 0:
            return
        state = RateState(max_concurrency=self.max_concurrency, rpm=self.rpm, tpm=self.tpm, now=self.clock())
        gate = AsyncGate(state, clock=self.clock, sleep=self.sleep)
        run = RunState(queue=deque(), max_tokens=float(self.request_max_tokens()), producing=True)
        more = asyncio.Event()
        job.start_progress()
        tasks = [asyncio.create_task(self._worker(job, gate, run, more)) for _ in range(self.max_concurrency)]
        batches = job.iter_batches(
            self.count_tokens, max_inputs=self.request_max_inputs(), max_tokens=self.request_max_tokens()
        )
        try:
            try:
                # tokens are counted in a worker thread while the first requests are on their way
                while not gate.stopped:
                    batch = await asyncio.to_thread(next, batches, None)
                    if batch is None:
                        break
                    run.queue.append(batch)
                    more.set()
            finally:
                run.producing = False
                more.set()
            await asyncio.gather(*tasks)
        except BaseException:  # cancelled: stop sending, let requests in flight land in the cache
            gate.stop()
            more.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            job.close_progress()
            with job.lock:
                job.rate_limited = state.rate_limited
        if run.errors:
            raise run.errors[0]

    async def _worker(self, job: EmbedJob, gate: AsyncGate, run: RunState, more: asyncio.Event) -> None:
        while not gate.stopped:
            batch = run.pop()
            if batch is None:
                if not run.producing:
                    return
                more.clear()
                await more.wait()
                continue
            try:
                await self._send(job, gate, run, batch)
            except Aborted:
                return
            except Exception as exc:
                run.errors.append(exc)
                gate.stop()
                more.set()
                return

    async def _send(self, job: EmbedJob, gate: AsyncGate, run: RunState, batch: npt.NDArray[np.int64]) -> None:
        tokens = job.batch_tokens(batch)
        cap = min(run.max_tokens, gate.max_request_tokens())
        if tokens > cap:
            if batch.size == 1:
                raise self.too_large_for_tpm(job, int(batch[0]), cap)
            run.push_front(split_batch(job, batch, cap))
            job.splits += 1
            return
        kwargs = self.create_kwargs(job.texts(batch))

        async def op(sdk: openai.AsyncOpenAI) -> StreamDecoder:
            import openai as _openai

            await gate.acquire(tokens)
            decoder = job.decoder(batch)
            try:
                async with sdk.embeddings.with_streaming_response.create(**kwargs) as response:
                    limits = RateLimits.from_headers(response.headers)
                    async for chunk in response.iter_bytes():
                        decoder.feed(chunk)
            except _openai.RateLimitError as exc:
                _on_rate_limit(gate, exc, tokens)
                raise
            except BaseException as exc:
                gate.failure()
                if is_transport_error(exc):
                    raise as_openai_error(exc) from exc
                raise
            gate.success(limits)
            return decoder

        try:
            decoder = await self.client.request(op, description=f"embeddings ({batch.size} inputs, {tokens} tokens)")
        except BadRequestError as exc:
            if not too_many_tokens(exc):
                raise
            if batch.size == 1:
                raise self.single_too_long(job, int(batch[0]), exc) from exc
            logger.warning("The server refused %d inputs (%d tokens) as too many tokens; splitting", batch.size, tokens)
            run.push_front(split_batch(job, batch))
            job.splits += 1
            return
        except RequestTooLarge as exc:
            run.max_tokens = min(run.max_tokens, float(exc.limit if exc.limit else max(1, tokens // 2)))
            run.push_front([batch])
            return
        missing = await asyncio.to_thread(job.commit, batch, decoder.finish(allow_missing=True))
        job.requests += 1
        job.tokens_sent += tokens
        if missing.size:
            note_resends(job, run, missing)
            run.push_front([missing])


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
