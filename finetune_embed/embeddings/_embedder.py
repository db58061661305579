"""The synchronous :class:`Embedder`: worker threads (never ``asyncio.run``), so it works inside Jupyter's
running event loop."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._client import Client
from .._logging import get_logger
from ._base import (
    CacheArg,
    ClientTypeError,
    EmbedderBase,
    EncodingFormat,
    InvalidPolicy,
    merge_results,
    rate_limits_of,
)
from ._decode import StreamDecoder
from ._job import EmbedJob
from ._namespace import cache_model
from ._plan import EmptyPolicy, LongPolicy
from ._ratelimit import Aborted, Gate, RateState
from ._run import Feed, RunContext
from ._tokens import TokenizerArg
from ._types import EmbeddingEstimate, EmbeddingResult

if TYPE_CHECKING:
    import openai

__all__ = ["Embedder"]

logger = get_logger("embeddings")

_MAX_REPLANS = 3  # times inputs a server found too long are cut again, smaller


class Embedder(EmbedderBase):
    """Embed any number of texts fast, within the API's limits, never losing or paying twice for anything.

    **Parameters:**

    * ``client`` - a :class:`~finetune_embed.Client` (default: ``Client()`` from the environment) or an
      ``openai.OpenAI``.
    * ``model`` - the embedding model (on Azure: the deployment name; then set ``base_model``).
    * ``dimensions`` - shorter vectors (text-embedding-3-* only; other models raise
      :class:`~finetune_embed.UnsupportedModelError`).
    * ``base_model`` - the catalog model behind ``model`` (limits, prices, tokenizer) when ``model`` is an
      Azure deployment or a compatible server's name.
    * ``max_batch_inputs`` (≤ 2048), ``max_batch_tokens`` (≤ 300,000) - per-request caps. Below them the size
      adapts: it starts from what the provider takes (OpenAI / Azure: these caps; a compatible server: 32
      inputs), grows while answers are fast, shrinks when they approach the client's timeout, on a timeout and
      on a size error (413 / 422, "batch size 64 > maximum allowed batch size 32"), which it remembers for the
      client's lifetime.
    * ``max_concurrency`` - requests in flight at most (the embedder adapts below it).
    * ``rpm``, ``tpm`` - your own requests / tokens per minute budget, on top of the server's headers.
    * ``cache`` - ``True`` (default: :func:`default_cache_path`), a path, an :class:`EmbeddingCache`, or
      ``False``.
    * ``long_inputs`` - over the model's token limit: ``"error"`` (default), ``"truncate"``, ``"chunk"``
      (token-weighted mean of the pieces, renormalised) or ``"pieces"`` (also every piece with its offsets).
    * ``empty_inputs`` - empty or whitespace-only inputs, never sent: ``"error"`` (default), ``"zero"``,
      ``"nan"`` or ``"skip"`` (``embed()`` leaves their rows out; ``embed_with_info().empty`` says which).
    * ``invalid_vectors`` - non-finite or all-zero vectors: ``"error"`` (default,
      :class:`InvalidEmbeddingError` once everything else is done) or ``"warn"`` (flagged in ``invalid``).
    * ``encoding_format`` - ``"base64"`` (default, 4 bytes a value on the wire) or ``"float"`` for servers
      without base64 support; both are decoded straight into float32.
    * ``progress`` - ``None``: a bar when stderr is a terminal or in a notebook; ``True`` / ``False`` force it.
    * ``clock``, ``sleep`` - the time source and sleep used for rate pacing (tests pass a fake clock's).
    * ``tokenizer`` - how to count tokens for a model the catalog does not know: a tiktoken encoding name, a
      :class:`~finetune_embed.Tokenizer`, a callable (``text -> count`` or ``text -> ids``, e.g. the model's own
      Hugging Face tokenizer) or ``"chars"``; default: the catalog's encoding, else an estimate of one token per
      3 bytes of UTF-8.
    * ``max_input_tokens`` - tokens per input the server accepts (default: the catalog's, 8191 for unknown
      models).
    * ``max_rebilled_tokens`` - after timeouts, how many tokens may be billed twice before the call stops with
      :class:`~finetune_embed.EmbeddingTimeoutError` (default: 10 % of the call's tokens, at least 100,000).

    >>> from finetune_embed.testing import FakeOpenAI
    >>> emb = Embedder(FakeOpenAI().client(), cache=False)
    >>> emb.embed(["hello", "world"]).shape
    (2, 1536)
    """

    def __init__(
        self,
        client: Client | openai.OpenAI | None = None,
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
        self.client = _sync_client(client)
        self.cache_model = cache_model(self.client, self.model)
        self.note_unknown_model(self.client)

    # --- public API -------------------------------------------------------------------------------------------

    def embed(self, texts: Iterable[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts``: a float32 array ``(n, d)``, row ``i`` for ``texts[i]`` (under
        ``empty_inputs="skip"``, only the rows of non-empty inputs)."""
        return self.output(self.embed_with_info(texts), self.empty_inputs)

    def embed_one(self, text: str) -> npt.NDArray[np.float32]:
        """The vector of one text."""
        row: npt.NDArray[np.float32] = self.embed_with_info([text]).vectors[0]
        return row

    def embed_with_info(self, texts: Iterable[str]) -> EmbeddingResult:
        """Embed ``texts`` and return everything: vectors, empty / invalid masks, pieces and statistics."""
        return self.check(self._embed(self._as_list(texts), None, 0))

    def _embed(self, items: list[str], max_input_tokens: int | None, depth: int) -> EmbeddingResult:
        job = self.new_job(self.plan(items, count_all=False, max_input_tokens=max_input_tokens))
        ctx = self._run(job)
        if ctx is None or not ctx.too_long:
            return self.assemble(job)
        inputs, limit = self.too_long_plan(items, job, ctx)
        if depth >= _MAX_REPLANS:
            raise self.too_long_for_server(job, sorted(ctx.too_long), next(iter(ctx.too_long.values())).message,
                                           ctx.sizer.input_limit)
        sub = self._embed([items[i] for i in inputs], limit, depth + 1)
        job.mark_failed(list(ctx.too_long))
        if sub.dimensions:
            job.ensure_dim(sub.dimensions)
        return merge_results(self.assemble(job), sub, inputs)

    def estimate(self, texts: Iterable[str], *, rpm: int | None = None, tpm: int | None = None) -> EmbeddingEstimate:
        """A dry run: tokens, requests, cost (standard and Batch API) and the shortest time the ``rpm`` /
        ``tpm`` limits allow (default: the embedder's). Sends nothing; reads the cache."""
        return self._estimate(texts, rpm=rpm, tpm=tpm)

    def embed_batch_api(
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
        """Embed through the Batch API (half the price, results within 24 h). Texts already cached are not sent;
        every batch is journaled in the cache, so a run that is killed or times out is resumed by the next call
        over the same texts, and nothing is paid for twice.

        * ``poll_interval`` / ``max_poll_interval`` - seconds between polls, growing 1.5× up to the maximum.
        * ``timeout`` - give up waiting after this many seconds (:class:`~finetune_embed.BatchTimeoutError`; the
          batches go on on the server and the next call resumes them).
        * ``max_requests_per_file`` (≤ 50,000), ``max_inputs_per_batch`` (≤ 50,000), ``max_file_bytes``
          (≤ 200 MB) - per-batch limits.
        * ``max_enqueued_tokens`` - your organisation's queued-token limit for the model; batches are held back
          so that no more than this is queued at once.
        * ``max_rounds`` - how many times a failed or expired line is sent in all.
        * ``metadata`` - added to each batch's metadata.
        * ``delete_files`` - delete the input, output and error files once their vectors are cached.
        """
        from ._batch_api import batch_settings, run_batch_api

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
        job = self.new_job(self.plan(items), desc="Batch API")
        run_batch_api(self, job, settings)
        return self.finish(job)

    def close(self) -> None:
        """Close the cache this embedder opened (the client stays open)."""
        self._close_cache()

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the run ----------------------------------------------------------------------------------------------

    def _run(self, job: EmbedJob) -> RunContext | None:
        if job.missing().size == 0:
            return None
        server = self.server(self.client)
        ctx = self.new_context(job, server, self.client)
        state = RateState(
            max_concurrency=self.max_concurrency, rpm=self.rpm, tpm=self.tpm, now=self.clock(), quota=server.quota
        )
        gate = Gate(state, clock=self.clock, sleep=self.sleep or time.sleep, on_wait=ctx.feedback.wait)
        feed = Feed(job.unit_tokens)
        job.start_progress()
        workers = [
            threading.Thread(target=self._worker, args=(job, ctx, gate, feed), name=f"finetune-embed-{i}", daemon=True)
            for i in range(self.max_concurrency)
        ]
        try:
            for t in workers:
                t.start()
            # this thread counts tokens while the workers send the first requests
            try:
                exact = self.counting_policy(state, gate, feed)
                for units in job.counted_chunks(
                    self.count_tokens, exact=exact, request_tokens=self.request_max_tokens()
                ):
                    if gate.stopped:
                        break
                    feed.add(units)
            finally:
                feed.done_producing()
            for t in workers:
                while t.is_alive():
                    t.join(0.25)
        except BaseException:  # KeyboardInterrupt: stop sending, let requests in flight land in the cache
            gate.stop()
            feed.done_producing()
            for t in workers:
                t.join()
            raise
        finally:
            job.close_progress()
            self.close_run(job, ctx, state)
        if ctx.errors:
            raise ctx.errors[0]
        return ctx

    def _worker(self, job: EmbedJob, ctx: RunContext, gate: Gate, feed: Feed) -> None:
        while not gate.stopped:
            try:
                gate.acquire_slot()
            except Aborted:
                return
            trial = ctx.sizer.claim_trial()
            try:
                batch = feed.wait_take(partial(self.request_limits, ctx, gate, trial), lambda: gate.stopped)
                if batch is None:
                    return
                try:
                    self._send(job, ctx, gate, feed, batch)
                finally:
                    feed.settle()
            except Aborted:
                return
            except BaseException as exc:
                with ctx.lock:
                    ctx.errors.append(exc)
                gate.stop()
                feed.wake()
                return
            finally:
                if trial:
                    ctx.sizer.end_trial()
                gate.release_slot()

    def _send(self, job: EmbedJob, ctx: RunContext, gate: Gate, feed: Feed, batch: npt.NDArray[np.int64]) -> None:
        if not job.all_exact(batch) and self.exact_counts_needed(gate.state):
            job.make_exact(batch)  # a limit became known after this batch was packed by its bound
        tokens = job.batch_tokens(batch)
        cap = gate.max_request_tokens()
        if tokens > cap and not job.all_exact(batch):
            job.make_exact(batch)
            tokens = job.batch_tokens(batch)
        if tokens > cap:
            if batch.size == 1:
                raise self.too_large_for_tpm(job, int(batch[0]), cap)
            from ._base import split_batch

            feed.push_front(split_batch(job, batch, cap))
            with job.lock:
                job.splits += 1
            return
        timeout = ctx.timeout_for(batch)
        kwargs = self.request_kwargs(job.texts(batch))
        if timeout is not None and timeout != ctx.base_timeout:
            kwargs["timeout"] = timeout
        sent: list[float] = []

        def op(sdk: openai.OpenAI) -> StreamDecoder:
            entries = gate.acquire_budget(tokens)
            try:
                sent_at = self.clock()
                sent.append(sent_at)
                decoder = job.decoder(batch)
                try:
                    with sdk.embeddings.with_streaming_response.create(**kwargs) as response:
                        limits = rate_limits_of(response.headers)
                        for chunk in response.iter_bytes():
                            decoder.feed(chunk)
                except Exception as exc:
                    self.attempt_failed(exc, gate, tokens, entries, sent_at)
                    if is_transport_error(exc):  # the body broke off: the server may have billed it
                        billed = self.tokens_billed(job, batch, None)
                        with ctx.lock:
                            ctx.rebilled_tokens += billed
                    raise
                gate.report_success(limits, sent_at, entries)
                return decoder
            finally:
                gate.done_sending()

        try:
            decoder = self._request(op, ctx, f"embeddings ({batch.size} inputs, {tokens} tokens)")
        except Exception as exc:
            if self.settle_failure(ctx, feed, job, gate, batch, tokens, timeout, exc):
                return
            raise
        latency = self.clock() - sent[-1]
        missing_pos = decoder.finish(allow_missing=True)
        billed = self.tokens_billed(job, batch, decoder.usage)
        missing = job.commit(batch, missing_pos, billed)
        with job.lock:
            job.requests += 1
            job.tokens_sent += billed
        self.settle_success(ctx, job, batch, tokens, latency)
        if missing.size:
            ctx.note_resends(missing, job.first_input_of)
            feed.push_front([missing])

    def _request(
        self, op: Callable[[openai.OpenAI], StreamDecoder], ctx: RunContext, description: str
    ) -> StreamDecoder:
        """``client.request(op)``, with every wait of the client's retry policy shown as feedback."""
        client = self.client
        policy = client.retry
        base_sleep = policy.sleep or time.sleep
        last: list[BaseException] = []
        sdk = client.openai

        def sleep(seconds: float) -> Any:
            ctx.feedback.retrying(seconds, last[-1] if last else None, "the request")
            return base_sleep(seconds)

        def attempt() -> StreamDecoder:
            try:
                return op(sdk)
            except Exception as exc:
                error = client._error(exc)
                last.append(error)
                if error is exc:
                    raise
                raise error from exc

        result: StreamDecoder = dataclasses.replace(policy, sleep=sleep).call(attempt, description=description)
        return result


def is_transport_error(exc: BaseException) -> bool:
    """An httpx (or httpx2) network error raised while a streamed body was being read."""
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore")


def _sync_client(client: Any) -> Client:
    if client is None:
        return Client()
    if isinstance(client, Client):
        return client
    try:
        import openai
    except ImportError:  # pragma: no cover
        openai = None  # type: ignore[assignment]
    if openai is not None and isinstance(client, openai.OpenAI):
        return Client.from_openai(client)
    from .._client import AsyncClient

    if isinstance(client, AsyncClient) or (openai is not None and isinstance(client, openai.AsyncOpenAI)):
        raise ClientTypeError("Embedder needs a sync Client; use AsyncEmbedder with an AsyncClient")
    raise ClientTypeError(f"client must be a finetune_embed.Client or an openai.OpenAI, got {type(client).__name__}")

