"""An httpx transport that adds credential query parameters on the wire only.

A key given in the base URL's query (``https://gateway/v1?api-key=...``) must reach the server, but never the URL
that httpx logs at INFO (``HTTP Request: GET https://gateway/v1/files ...``) or the request object our exceptions
hold. httpx logs, and attaches to the response, the request it handed to its transport; this transport sends a copy
with the parameters added, so the secret exists only in the copy on the wire. Imported only when such a URL is
used (it imports httpx).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

__all__ = ["WireQueryTransport", "wrap_mounts"]


class WireQueryTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wraps a sync or async transport; every request goes out with ``params`` merged into its URL."""

    def __init__(self, inner: Any, params: Sequence[tuple[str, str]]) -> None:
        self.inner = inner
        self.params = tuple(params)

    def _wire(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            request.method,
            request.url.copy_merge_params(httpx.QueryParams(self.params)),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send a copy of ``request`` with the parameters (sync)."""
        return self.inner.handle_request(self._wire(request))  # type: ignore[no-any-return]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send a copy of ``request`` with the parameters (async)."""
        return await self.inner.handle_async_request(self._wire(request))  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the wrapped transport (sync)."""
        self.inner.close()

    async def aclose(self) -> None:
        """Close the wrapped transport (async)."""
        await self.inner.aclose()


def wrap_mounts(client: object, params: Sequence[tuple[str, str]]) -> None:
    """Wrap the proxy transports httpx mounted from the environment (``HTTPS_PROXY`` ...) on a client we built,
    so that proxied requests carry the parameters too."""
    mounts = getattr(client, "_mounts", None)
    if isinstance(mounts, dict):
        for pattern, transport in list(mounts.items()):
            if transport is not None:
                mounts[pattern] = WireQueryTransport(transport, params)
