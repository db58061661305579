"""The asyncio twin of :class:`~finetune_embed.chat.ChatCompletions` (``async_client.chat``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._client import AsyncClient
from .._exceptions import ConfigError
from .._ids import check_deployment
from .._logging import get_logger
from .._progress import progress_bar
from ._base import CacheArg, ChatBase, RequestLike, is_per_request_error, parse_body, sdk_arguments, server_namespace
from ._pacing import AsyncGate, new_async_gate, report_error, report_success
from ._request import ChatRequest
from ._types import ChatResult

if TYPE_CHECKING:
    import openai
    from openai._legacy_response import LegacyAPIResponse

__all__ = ["AsyncChatCompletions"]

logger = get_logger("chat")


class AsyncChatCompletions(ChatBase):
    """:class:`ChatCompletions` for asyncio code: ``await client.chat.create(...)``; same arguments, same results.

    Takes an :class:`~finetune_embed.AsyncClient`. ``sleep`` may be a coroutine function.
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        cache: CacheArg = True,
        max_concurrency: int = 4,
        rpm: int | None = None,
        tpm: int | None = None,
        progress: bool | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        if not isinstance(client, AsyncClient):
            raise ConfigError(
                f"AsyncChatCompletions needs a finetune_embed.AsyncClient, got {type(client).__name__} (for a Client "
                "use ChatCompletions)"
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
        self._gates: dict[str, AsyncGate] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        cache = self.cache_path
        return (
            f"AsyncChatCompletions(client={self.client!r}, max_concurrency={self.max_concurrency}, cache={cache!r})"
        )

    def with_options(self, **options: Any) -> AsyncChatCompletions:
        """A new instance on the same client with some settings changed (see :meth:`ChatCompletions.with_options`)."""
        unknown = set(options) - set(self._options())
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return AsyncChatCompletions(self.client, **{**self._options(), **options})

    # --- public API -------------------------------------------------------------------------------------------

    async def create(self, model: str, messages: Sequence[Any], *, cache: bool = True, **params: Any) -> ChatResult:
        """One chat completion (see :meth:`ChatCompletions.create`)."""
        request = ChatRequest.build(model, messages, **params)
        check_deployment(self.client, request.model)
        return await self._complete(request, request.key(self.namespace) if cache else None)

    async def create_many(
        self,
        requests: Iterable[RequestLike],
        *,
        cache: bool = True,
        return_exceptions: bool = False,
        progress: bool | None = None,
        desc: str = "Chat completions",
        on_result: Callable[[int, ChatResult | BaseException], None] | None = None,
    ) -> list[ChatResult | BaseException]:
        """Run many requests concurrently, results in input order (see :meth:`ChatCompletions.create_many`).
        Cancelling the call lets the requests in flight land in the cache."""
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
        queue = list(reversed(todo))
        failure: list[BaseException] = []

        async def worker() -> None:
            while queue and not failure:
                i = queue.pop()
                try:
                    results[i] = await self._complete(items[i], keys[i])
                except Exception as exc:
                    if not (return_exceptions and is_per_request_error(exc)):
                        failure.append(exc)
                        return
                    logger.warning("Request %d failed: %s", i, exc)
                    results[i] = exc
                if on_result is not None:
                    item = results[i]
                    assert item is not None
                    on_result(i, item)
                bar.update(1)

        try:
            if todo:
                await asyncio.gather(*(worker() for _ in range(min(self.max_concurrency, len(todo)))))
        finally:
            bar.close()
        if failure:
            raise failure[0]
        return [r for r in results if r is not None]

    async def aclose(self) -> None:
        """Close the cache this instance opened (the client stays open)."""
        self._close_cache()

    async def __aenter__(self) -> AsyncChatCompletions:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the work ---------------------------------------------------------------------------------------------

    def _gate(self, model: str) -> AsyncGate:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # an asyncio gate belongs to one event loop
            self._gates = {}
            self._loop = loop
        gate = self._gates.get(model)
        if gate is None:
            gate = self._gates[model] = new_async_gate(
                max_concurrency=self.max_concurrency, rpm=self.rpm, tpm=self.tpm, clock=self.clock, sleep=self.sleep
            )
        return gate

    async def _complete(self, request: ChatRequest, key: bytes | None) -> ChatResult:
        hit = self.cached_result(key)
        if hit is not None:
            return hit
        gate = self._gate(request.model)
        tokens = self.estimate_tokens(request)
        kwargs = sdk_arguments(request.body())
        clock = self.clock

        async def op(sdk: openai.AsyncOpenAI) -> tuple[LegacyAPIResponse[Any], float]:
            await gate.acquire(tokens)
            started = clock()
            try:
                raw = await sdk.chat.completions.with_raw_response.create(**kwargs)
            except BaseException as exc:
                report_error(gate, exc, tokens)
                raise
            report_success(gate, raw.headers)
            return raw, clock() - started

        raw, latency = await self.client.request(op, description=f"chat completion ({request.model})")
        body = parse_body(raw.text)
        self.store(key, request.model, body, latency)
        return ChatResult.from_response(body, latency=latency, cached=False, request_id=raw.headers.get("x-request-id"))
