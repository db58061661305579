"""The synchronous :class:`ChatCompletions` (``client.chat``): worker threads, never ``asyncio.run``, so it works
inside Jupyter's running event loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from .._client import Client
from .._exceptions import ConfigError
from .._ids import check_deployment
from .._logging import get_logger
from .._progress import progress_bar
from ._base import CacheArg, ChatBase, RequestLike, is_per_request_error, parse_body, sdk_arguments, server_namespace
from ._pacing import Gate, new_gate, report_error, report_success
from ._request import ChatRequest
from ._types import ChatResult

if TYPE_CHECKING:
    import openai
    from openai._legacy_response import LegacyAPIResponse

__all__ = ["ChatCompletions"]

logger = get_logger("chat")


class ChatCompletions(ChatBase):
    """Chat completions through our client: one retry layer, rate pacing, concurrency and a response cache.

    ``client.chat`` is the client's instance with the defaults below; build your own for other settings.

    **Parameters:**

    * ``client`` - a :class:`~finetune_embed.Client` (OpenAI, Azure OpenAI or a compatible server).
    * ``cache`` - ``True`` (default: :func:`~finetune_embed.chat.default_chat_cache_path`), a path, a
      :class:`ChatCache`, or ``False``. Keyed by the server, model, messages, tools and sampling parameters:
      asking the same again costs nothing, and an interrupted run resumes where it stopped.
    * ``max_concurrency`` - requests in flight at most in :meth:`create_many` (adapting below it on 429s).
    * ``rpm``, ``tpm`` - your own requests / tokens per minute budget per model, on top of the server's
      ``x-ratelimit-*`` headers (the Embedder's pacing machinery).
    * ``progress`` - ``None``: a bar when stderr is a terminal or in a notebook; ``True`` / ``False`` force it.
    * ``clock``, ``sleep`` - the time source (for pacing and latency) and sleep (tests pass a fake clock's).

    >>> from finetune_embed.testing import FakeOpenAI
    >>> chat = FakeOpenAI().client().chat
    >>> chat.create("gpt-4o-mini", [{"role": "user", "content": "Hello"}]).finish_reason
    'stop'
    """

    def __init__(
        self,
        client: Client,
        *,
        cache: CacheArg = True,
        max_concurrency: int = 4,
        rpm: int | None = None,
        tpm: int | None = None,
        progress: bool | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        if not isinstance(client, Client):
            raise ConfigError(
                f"ChatCompletions needs a finetune_embed.Client, got {type(client).__name__} (for an AsyncClient use "
                "AsyncChatCompletions; for an openai.OpenAI wrap it with Client.from_openai)"
            )
        super().__init__(
            cache=cache,
            max_concurrency=max_concurrency,
            rpm=rpm,
            tpm=tpm,
            progress=progress,
            clock=clock,
            sleep=sleep,
        )
        self.client = client
        self.namespace = server_namespace(client)
        self._gates: dict[str, Gate] = {}
        self._gates_lock = threading.Lock()

    def __repr__(self) -> str:
        cache = self.cache_path
        return f"ChatCompletions(client={self.client!r}, max_concurrency={self.max_concurrency}, cache={cache!r})"

    def with_options(self, **options: Any) -> ChatCompletions:
        """A new instance on the same client with some settings changed (``cache``, ``max_concurrency``, ``rpm``,
        ``tpm``, ``progress``, ``clock``, ``sleep``); it shares this one's open cache unless ``cache`` is given."""
        unknown = set(options) - set(self._options())
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return ChatCompletions(self.client, **{**self._options(), **options})

    # --- public API -------------------------------------------------------------------------------------------

    def create(self, model: str, messages: Sequence[Any], *, cache: bool = True, **params: Any) -> ChatResult:
        """One chat completion. ``params`` are the API's body fields (``tools``, ``tool_choice``,
        ``temperature``, ``max_completion_tokens``, ``response_format``, ``seed``, ...; on a compatible server
        any field it takes). ``cache=False`` skips the cache for this call (neither read nor written)."""
        request = ChatRequest.build(model, messages, **params)
        check_deployment(self.client, request.model)
        return self._complete(request, request.key(self.namespace) if cache else None)

    def create_many(
        self,
        requests: Iterable[RequestLike],
        *,
        cache: bool = True,
        return_exceptions: bool = False,
        progress: bool | None = None,
        desc: str = "Chat completions",
        on_result: Callable[[int, ChatResult | BaseException], None] | None = None,
    ) -> list[ChatResult | BaseException]:
        """Run many requests (``ChatRequest`` objects or dicts of body fields) concurrently; results in input order.

        Cached answers come back at once; the rest are sent by up to ``max_concurrency`` threads within the rate
        limits. Each answer is cached the moment it arrives, so an interrupted call (Ctrl-C, a crash) resumes on
        the next call without paying again. With ``return_exceptions=True`` an error that concerns one request
        (a 400 for its content, a 5xx that outlasted the retries) is returned in its place; errors that would
        fail every request (authentication, a missing model, no quota, no network) are raised.
        ``on_result(index, result)`` is called (in a worker thread) as each one completes.
        """
        items = [self.as_request(r) for r in requests]
        for item in items:
            check_deployment(self.client, item.model)
        keys = [r.key(self.namespace) if cache else None for r in items]
        results: list[ChatResult | BaseException | None] = [None] * len(items)
        todo: list[int] = []
        for i, key in enumerate(keys):
            hit = self.cached_result(key)
            if hit is None:
                todo.append(i)
            else:
                results[i] = hit
                if on_result is not None:
                    on_result(i, hit)
        bar = progress_bar(
            total=len(items), desc=desc, unit="req", progress=self.progress if progress is None else progress
        )
        bar.update(len(items) - len(todo))
        try:
            if todo:
                self._run(items, keys, todo, results, bar, return_exceptions, on_result)
        finally:
            bar.close()
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Close the cache this instance opened (the client stays open)."""
        self._close_cache()

    def __enter__(self) -> ChatCompletions:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the work ---------------------------------------------------------------------------------------------

    def _run(
        self,
        items: list[ChatRequest],
        keys: list[bytes | None],
        todo: list[int],
        results: list[ChatResult | BaseException | None],
        bar: Any,
        return_exceptions: bool,
        on_result: Callable[[int, ChatResult | BaseException], None] | None,
    ) -> None:
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(todo)), thread_name_prefix="finetune-chat")
        pending: dict[Future[ChatResult], int] = {}
        queue = list(reversed(todo))
        try:
            # keep at most 2 x max_concurrency submitted, so an interruption leaves little queued
            while queue or pending:
                while queue and len(pending) < 2 * self.max_concurrency:
                    i = queue.pop()
                    pending[pool.submit(self._complete, items[i], keys[i])] = i
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        if not (return_exceptions and is_per_request_error(exc)):
                            raise exc
                        logger.warning("Request %d failed: %s", i, exc)
                        results[i] = exc
                    else:
                        results[i] = fut.result()
                    if on_result is not None:
                        item = results[i]
                        assert item is not None
                        on_result(i, item)
                    bar.update(1)
        finally:
            # requests in flight finish and land in the cache; nothing queued is sent
            pool.shutdown(wait=True, cancel_futures=True)

    def _gate(self, model: str) -> Gate:
        with self._gates_lock:
            gate = self._gates.get(model)
            if gate is None:
                gate = self._gates[model] = new_gate(
                    max_concurrency=self.max_concurrency, rpm=self.rpm, tpm=self.tpm, clock=self.clock, sleep=self.sleep
                )
            return gate

    def _complete(self, request: ChatRequest, key: bytes | None) -> ChatResult:
        hit = self.cached_result(key)
        if hit is not None:
            return hit
        gate = self._gate(request.model)
        tokens = self.estimate_tokens(request)
        kwargs = sdk_arguments(request.body())
        clock = self.clock

        def op(sdk: openai.OpenAI) -> tuple[LegacyAPIResponse[Any], float]:
            gate.acquire(tokens)
            started = clock()
            try:
                raw = sdk.chat.completions.with_raw_response.create(**kwargs)
            except BaseException as exc:
                report_error(gate, exc, tokens)
                raise
            report_success(gate, raw.headers)
            return raw, clock() - started

        raw, latency = self.client.request(op, description=f"chat completion ({request.model})")
        body = parse_body(raw.text)
        self.store(key, request.model, body, latency)
        return ChatResult.from_response(body, latency=latency, cached=False, request_id=raw.headers.get("x-request-id"))
