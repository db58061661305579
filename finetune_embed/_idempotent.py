"""Never create a billable object twice: client request ids, and look before any retry of a create.

OpenAI's API has no idempotency key: a ``POST`` that times out (or answers 5xx from a gateway) may well have
created the job, batch or file, and sending it again creates a second one, billed again. So every create the
library makes carries a *client request id*:

* fine-tuning jobs and batches: ``metadata["finetune_embed_request"]``;
* files: the content tag (a SHA-256 prefix) in the uploaded file's name, with its byte count.

Before every retry of a create, and before the first attempt when the call may be a rerun of one that failed
(the same ``jobs.create`` made again after a crash; a Batch API shard the journal says was being created), the
server's objects are searched for that id, and one that exists is adopted instead of creating another.

:func:`create_once` and :func:`acreate_once` run that protocol under the client's retry policy; ``find(sdk,
retrying)`` searches (``retrying`` is false for the rerun check, where an object that already failed is not
adopted, so that calling again after a failure starts afresh).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._logging import get_logger

if TYPE_CHECKING:
    from ._client import AsyncClient, Client

__all__ = [
    "MAX_LOOKUP_PAGES",
    "REQUEST_KEY",
    "acreate_once",
    "ascan_pages",
    "create_once",
    "request_id",
    "request_id_of",
    "scan_pages",
]

logger = get_logger("client")

T = TypeVar("T")

#: The metadata key that carries the client request id of a job or batch.
REQUEST_KEY = "finetune_embed_request"
#: How many list pages a lookup reads at most (newest first; an object just created is on the first one).
MAX_LOOKUP_PAGES = 10


def request_id(kind: str, payload: Any) -> str:
    """A client request id derived from what is created (``kind`` and a JSON-able ``payload``): the same request
    made again yields the same id, so a rerun finds what the first run created."""
    data = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"{kind}-{hashlib.sha256(data.encode('utf-8')).hexdigest()[:32]}"


def request_id_of(obj: Any) -> str | None:
    """The client request id an API object carries in its metadata, or ``None``."""
    metadata = getattr(obj, "metadata", None)
    if metadata is None and isinstance(obj, dict):
        metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        value = metadata.get(REQUEST_KEY)
        return value if isinstance(value, str) else None
    return None


def _page_items(page: Any) -> list[Any]:
    return list(getattr(page, "data", None) or [])


def scan_pages(fetch: Callable[[str | None], Any], match: Callable[[Any], bool]) -> Any | None:
    """The first item ``match`` accepts in a cursor-paginated listing (``fetch(after)`` returns a page), reading
    at most :data:`MAX_LOOKUP_PAGES` pages."""
    after: str | None = None
    for _ in range(MAX_LOOKUP_PAGES):
        page = fetch(after)
        items = _page_items(page)
        for item in items:
            if match(item):
                return item
        cursor = getattr(items[-1], "id", None) if items else None
        if not items or not getattr(page, "has_more", False) or not cursor or cursor == after:
            return None
        after = str(cursor)
    return None


async def ascan_pages(
    fetch: Callable[[str | None], Awaitable[Any]], match: Callable[[Any], bool | Awaitable[bool]]
) -> Any | None:
    """The async twin of :func:`scan_pages` (``match`` may be a coroutine function, for a check that needs a
    request of its own)."""
    after: str | None = None
    for _ in range(MAX_LOOKUP_PAGES):
        page = await fetch(after)
        items = _page_items(page)
        for item in items:
            verdict = match(item)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if verdict:
                return item
        cursor = getattr(items[-1], "id", None) if items else None
        if not items or not getattr(page, "has_more", False) or not cursor or cursor == after:
            return None
        after = str(cursor)
    return None


def _adopted(description: str, found: Any, retrying: bool) -> Any:
    why = "before the failed attempt" if retrying else "by an earlier call with the same request"
    logger.info(
        "%s: the server already has it (%s, created %s); using it instead of creating another",
        description,
        getattr(found, "id", "?"),
        why,
    )
    return found


def create_once(
    client: Client,
    create: Callable[[Any], T],
    find: Callable[[Any, bool], T | None],
    *,
    description: str,
    look_first: bool,
) -> T:
    """``create(sdk)`` under the client's retry policy, unless ``find(sdk, retrying)`` returns the object: before
    every retry, and before the first attempt when ``look_first``."""
    attempts = 0

    def attempt(sdk: Any) -> T:
        nonlocal attempts
        attempts += 1
        retrying = attempts > 1
        if retrying or look_first:
            found = find(sdk, retrying)
            if found is not None:
                return _adopted(description, found, retrying)  # type: ignore[no-any-return]
        return create(sdk)

    return client.request(attempt, description=description)


async def acreate_once(
    client: AsyncClient,
    create: Callable[[Any], Awaitable[T]],
    find: Callable[[Any, bool], Awaitable[T | None]],
    *,
    description: str,
    look_first: bool,
) -> T:
    """The async twin of :func:`create_once`."""
    attempts = 0

    async def attempt(sdk: Any) -> T:
        nonlocal attempts
        attempts += 1
        retrying = attempts > 1
        if retrying or look_first:
            found = await find(sdk, retrying)
            if found is not None:
                return _adopted(description, found, retrying)  # type: ignore[no-any-return]
        return await create(sdk)

    return await client.request(attempt, description=description)
