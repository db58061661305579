"""The synchronous :class:`Embedder`: worker threads (never ``asyncio.run``), so it works inside Jupyter's
running event loop."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._client import Client, RateLimits
from .._exceptions import BadRequestError, EmbeddingResponseError
from .._logging import get_logger
from ..batching import pack_by_tokens
from ..retry import retry_after_seconds
from ._base import (
    CacheArg,
    ClientTypeError,
    EmbedderBase,
    EncodingFormat,
    InvalidPolicy,
    RequestTooLarge,
    limits_from_message,
    request_too_large_limit,
    too_many_tokens,
)
from ._decode import StreamDecoder
from ._job import EmbedJob
from ._plan import EmptyPolicy, LongPolicy
from ._ratelimit import Aborted, Gate, RateState
from ._types import EmbeddingEstimate, EmbeddingResult

if TYPE_CHECKING:
    import openai

__all__ = ["Embedder"]

logger = get_logger("embeddings")

_MAX_RESENDS = 2  # times one text may be asked again after a response left it out


@dataclass
class RunState:
    """The queue and shared flags of one call's workers. A producer appends requests while the workers send
    them; a worker that finds the queue empty waits while the producer is still at work."""

    queue: deque[npt.NDArray[np.int64]]
    max_tokens: float
    producing: bool = False
    errors: list[BaseException] = field(default_factory=list)
    resends: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def pop(self) -> npt.NDArray[np.int64] | None:
        with self.lock:
            return self.queue.popleft() if self.queue else None

    def wait_pop(self, stopped: Callable[[], bool]) -> npt.NDArray[np.int64] | None:
        """The next request; waits while the queue is empty but more may come. ``None``: no more work."""
        with self.changed:
            while not self.queue and self.producing and not stopped():
                self.changed.wait(0.25)
            return self.queue.popleft() if self.queue else None

    def push(self, batch: npt.NDArray[np.int64]) -> None:
        with self.changed:
            self.queue.append(batch)
            self.changed.notify()

    def push_front(self, batches: list[npt.NDArray[np.int64]]) -> None:
        with self.changed:
            for b in reversed(batches):
                self.queue.appendleft(b)
            self.changed.notify_all()

    def done_producing(self) -> None:
        with self.changed:
            self.producing = False
            self.changed.notify_all()


def split_batch(
    job: EmbedJob, batch: npt.NDArray[np.int64], max_tokens: float | None = None
) -> list[npt.NDArray[np.int64]]:
    """Cut ``batch`` into requests of at most ``max_tokens`` tokens, or (``None``) into two halves of about
    equal tokens."""
    counts = job.unit_tokens[batch]
    if max_tokens is not None and int(counts.sum()) > max_tokens:
        ranges = pack_by_tokens(counts.tolist(), max_inputs=int(batch.size), max_tokens=max(1, int(max_tokens)))
        return [batch[r.start : r.stop] for r in ranges]
    cut = int(np.searchsorted(np.cumsum(counts), counts.sum() / 2.0))
    cut = min(max(cut, 1), int(batch.size) - 1)
    return [batch[:cut], batch[cut:]]


def note_resends(job: EmbedJob, run: RunState, missing: npt.NDArray[np.int64]) -> None:
    """Count how often each left-out text was asked again; give up past :data:`_MAX_RESENDS`."""
    with run.lock:
        for u in missing.tolist():
            run.resends[u] = run.resends.get(u, 0) + 1
            if run.resends[u] > _MAX_RESENDS:
                raise EmbeddingResponseError(
                    f"the server left input {job.first_input_of(u)} out of its response {run.resends[u]} times; "
                    "giving up (the other vectors are cached)"
                )
    logger.warning("A response left out %d of its vectors; asking for them again", missing.size)


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
    * ``max_batch_inputs`` (≤ 2048), ``max_batch_tokens`` (≤ 300,000) - per-request limits.
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
        self.client = _sync_client(client)

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
        items = self._as_list(texts)
        job = self.new_job(self.plan(items, count_all=False))
        self._run(job)
        return self.finish(job)

    def estimate(self, texts: Iterable[str], *, rpm: int | None = None, tpm: int | None = None) -> EmbeddingEstimate:
        """A dry run: tokens, requests, cost (standard and Batch API) and the shortest time the ``rpm`` /
        ``tpm`` limits allow (default: the embedder's). Sends nothing; reads the cache."""
        return self._estimate(texts, rpm=rpm, tpm=tpm)

    def embed_batch_api(self, texts: Iterable[str], **kwargs: Any) -> EmbeddingResult:
        """Embed through the Batch API (half the price, results within 24 h): see :func:`run_batch_api`."""
        from ._batch_api import run_batch_api

        items = self._as_list(texts)
        job = self.new_job(self.plan(items), desc="Batch API")
        run_batch_api(self, job, **kwargs)
        return self.finish(job)

    def close(self) -> None:
        """Close the cache this embedder opened (the client stays open)."""
        self._close_cache()

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the run ----------------------------------------------------------------------------------------------

    def _run(self, job: EmbedJob) -> None:
        if job.missing().size == 0:
            return
        state = RateState(max_concurrency=self.max_concurrency, rpm=self.rpm, tpm=self.tpm, now=self.clock())
        gate = Gate(state, clock=self.clock, sleep=self.sleep or time.sleep)
        run = RunState(queue=deque(), max_tokens=float(self.request_max_tokens()), producing=True)
        job.start_progress()
        workers = [
            threading.Thread(target=self._worker, args=(job, gate, run), name=f"finetune-embed-{i}", daemon=True)
            for i in range(self.max_concurrency)
        ]
        try:
            for t in workers:
                t.start()
            # this thread counts tokens and packs requests while the workers send the first ones
            batches = job.iter_batches(
                self.count_tokens, max_inputs=self.request_max_inputs(), max_tokens=self.request_max_tokens()
            )
            try:
                for batch in batches:
                    if gate.stopped:
                        break
                    run.push(batch)
            finally:
                run.done_producing()
            for t in workers:
                while t.is_alive():
                    t.join(0.25)
        except BaseException:  # KeyboardInterrupt: stop sending, let requests in flight land in the cache
            gate.stop()
            run.done_producing()
            for t in workers:
                t.join()
            raise
        finally:
            job.close_progress()
            with job.lock:
                job.rate_limited = state.rate_limited
        if run.errors:
            raise run.errors[0]

    def _worker(self, job: EmbedJob, gate: Gate, run: RunState) -> None:
        while not gate.stopped:
            batch = run.wait_pop(lambda: gate.stopped)
            if batch is None:
                return
            try:
                self._send(job, gate, run, batch)
            except Aborted:
                return
            except BaseException as exc:
                with run.lock:
                    run.errors.append(exc)
                gate.stop()
                return

    def _send(self, job: EmbedJob, gate: Gate, run: RunState, batch: npt.NDArray[np.int64]) -> None:
        tokens = job.batch_tokens(batch)
        cap = min(run.max_tokens, gate.max_request_tokens())
        if tokens > cap:
            if batch.size == 1:
                raise self.too_large_for_tpm(job, int(batch[0]), cap)
            run.push_front(split_batch(job, batch, cap))
            with job.lock:
                job.splits += 1
            return
        kwargs = self.create_kwargs(job.texts(batch))

        def op(sdk: openai.OpenAI) -> StreamDecoder:
            import openai as _openai

            gate.acquire(tokens)
            decoder = job.decoder(batch)
            try:
                with sdk.embeddings.with_streaming_response.create(**kwargs) as response:
                    limits = RateLimits.from_headers(response.headers)
                    for chunk in response.iter_bytes():
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
            decoder = self.client.request(op, description=f"embeddings ({batch.size} inputs, {tokens} tokens)")
        except BadRequestError as exc:
            if not too_many_tokens(exc):
                raise
            if batch.size == 1:
                raise self.single_too_long(job, int(batch[0]), exc) from exc
            logger.warning("The server refused %d inputs (%d tokens) as too many tokens; splitting", batch.size, tokens)
            run.push_front(split_batch(job, batch))
            with job.lock:
                job.splits += 1
            return
        except RequestTooLarge as exc:
            with run.lock:
                run.max_tokens = min(run.max_tokens, float(exc.limit if exc.limit else max(1, tokens // 2)))
            run.push_front([batch])
            return
        missing = job.commit(batch, decoder.finish(allow_missing=True))
        with job.lock:
            job.requests += 1
            job.tokens_sent += tokens
        if missing.size:
            note_resends(job, run, missing)
            run.push_front([missing])


def _on_rate_limit(gate: Any, exc: Any, tokens: int) -> None:
    """Feed a 429 to the gate; a "request too large" 429 becomes :class:`RequestTooLarge` (never retried)."""
    if getattr(exc, "code", None) == "insufficient_quota":
        gate.stop()  # before the slot is freed: no other request may start (a billing stop, never retried)
        gate.failure()
        return
    response = getattr(exc, "response", None)
    limits = RateLimits.from_headers(response.headers) if response is not None else None
    message = str(getattr(exc, "message", "") or exc)
    too_large = request_too_large_limit(message)
    if too_large is not False:
        gate.failure()
        gate.learn(limits)
        raise RequestTooLarge(too_large) from exc
    if limits is None or not limits.known:
        limits = limits_from_message(message, getattr(exc, "type", None)) or limits
    gate.rate_limited(limits, retry_after_seconds(exc), tokens)


def is_transport_error(exc: BaseException) -> bool:
    """An httpx (or httpx2) network error raised while a streamed body was being read."""
    import httpx

    if isinstance(exc, httpx.TransportError):
        return True
    try:
        import httpx2
    except ImportError:  # pragma: no cover - the openai SDK 3 depends on it
        return False
    return isinstance(exc, httpx2.TransportError)


def as_openai_error(exc: BaseException) -> Exception:
    """The openai SDK's error for a network failure mid-body, so the client retries and maps it as usual."""
    import httpx
    import openai

    try:
        request = exc.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        request = httpx.Request("POST", "https://api.openai.com/v1/embeddings")
    if "Timeout" in type(exc).__name__:
        return openai.APITimeoutError(request=request)
    message = f"The connection failed while reading the response: {exc}"
    return openai.APIConnectionError(message=message, request=request)


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

