"""Cursor pagination where every page is its own request under the client's retry policy.

The SDK's page objects fetch later pages by themselves, outside our retry and error mapping; here each page
is fetched with ``client.request`` and the cursor (``after`` = the id of the last item) is advanced by hand.
A server that answers ``has_more`` without moving the cursor ends the listing instead of looping forever.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .._logging import get_logger

if TYPE_CHECKING:
    import openai

    from .._client import AsyncClient, Client

__all__ = ["aiter_pages", "iter_pages"]

logger = get_logger("finetuning")

T = TypeVar("T")


def _bind(fetch: Callable[[Any, str | None], T], cursor: str | None) -> Callable[[Any], T]:
    return lambda sdk: fetch(sdk, cursor)


def _next_cursor(page: Any, seen_cursors: set[str], description: str) -> str | None:
    data = list(getattr(page, "data", None) or [])
    if not data or not getattr(page, "has_more", False):
        return None
    cursor = getattr(data[-1], "id", None)
    if not cursor or cursor in seen_cursors:
        logger.warning("%s: the server said has_more but the cursor did not move; stopping the listing", description)
        return None
    seen_cursors.add(str(cursor))
    return str(cursor)


def iter_pages(
    client: Client,
    fetch: Callable[[openai.OpenAI, str | None], Any],
    *,
    description: str,
    limit: int | None = None,
) -> Iterator[Any]:
    """Yield the items of every page: ``fetch(sdk, after)`` returns one page (``.data``, ``.has_more``).

    ``limit`` stops after that many items (``None``: all of them).
    """
    after: str | None = None
    count = 0
    seen: set[str] = set()
    while True:
        page = client.request(_bind(fetch, after), description=description)
        for item in getattr(page, "data", None) or []:
            if limit is not None and count >= limit:
                return
            count += 1
            yield item
        if limit is not None and count >= limit:
            return
        after = _next_cursor(page, seen, description)
        if after is None:
            return


async def aiter_pages(
    client: AsyncClient,
    fetch: Callable[[openai.AsyncOpenAI, str | None], Awaitable[Any]],
    *,
    description: str,
    limit: int | None = None,
) -> AsyncIterator[Any]:
    """The async twin of :func:`iter_pages`."""
    after: str | None = None
    count = 0
    seen: set[str] = set()
    while True:
        page = await client.request(_bind(fetch, after), description=description)
        for item in getattr(page, "data", None) or []:
            if limit is not None and count >= limit:
                return
            count += 1
            yield item
        if limit is not None and count >= limit:
            return
        after = _next_cursor(page, seen, description)
        if after is None:
            return
