"""The in-process transport: an httpx transport (sync and async) that hands requests to the fake, no sockets."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

from ._http import FakeRequest, FakeResponse

if TYPE_CHECKING:
    from ._fake import FakeOpenAI

__all__ = ["FakeTransport"]


def _to_fake(request: httpx.Request, body: bytes) -> FakeRequest:
    return FakeRequest(
        method=request.method.upper(),
        path=request.url.path,
        query_string=request.url.query.decode("ascii", "replace"),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )


def _to_httpx(request: httpx.Request, resp: FakeResponse) -> httpx.Response:
    if resp.fault == "timeout":
        raise httpx.ReadTimeout("The read operation timed out (injected by FakeOpenAI)", request=request)
    if resp.fault == "disconnect":
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response. (injected by FakeOpenAI)", request=request
        )
    return httpx.Response(resp.status, headers=resp.headers, content=resp.body, request=request)


class FakeTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Pass as ``transport=`` to ``httpx.Client`` *or* ``httpx.AsyncClient`` (and so to our ``Client`` /
    ``AsyncClient``). Latency advances the fake clock instead of sleeping, unless the clock runs in real time."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request synchronously."""
        resp = self.fake.handle(_to_fake(request, request.read()))
        if resp.delay > 0:
            self.fake.clock.sleep(resp.delay)
        return _to_httpx(request, resp)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request inside an event loop (never blocks the loop)."""
        body = await request.aread()
        resp = self.fake.handle(_to_fake(request, body))
        if resp.delay > 0:
            if self.fake.clock.realtime:
                await asyncio.sleep(resp.delay / self.fake.clock.scale)
            else:
                self.fake.clock.advance(resp.delay)
        return _to_httpx(request, resp)
