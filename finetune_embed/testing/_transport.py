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

    @property
    def cache_namespace(self) -> str:
        """The embedding cache keeps this fake's vectors apart from every real server's (and from fakes with
        another ``seed``, whose vectors differ)."""
        return f"fake:seed={self.fake.seed}"

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request synchronously."""
        resp = self.fake.handle(_to_fake(request, request.read()))
        timeout = _read_timeout(request)
        if timeout is not None and resp.fault is None and resp.delay > timeout:
            self.fake.clock.sleep_until(resp.arrival + timeout)
            raise _timed_out(request, resp, timeout)
        if resp.delay > 0:
            self.fake.clock.sleep_until(resp.arrival + resp.delay)
        return _to_httpx(request, resp)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request inside an event loop (never blocks the loop)."""
        body = await request.aread()
        resp = self.fake.handle(_to_fake(request, body))
        timeout = _read_timeout(request)
        late = timeout is not None and resp.fault is None and resp.delay > timeout
        wait = timeout if late and timeout is not None else resp.delay
        if wait > 0:
            if self.fake.clock.realtime:
                await asyncio.sleep(max(0.0, resp.arrival + wait - self.fake.clock.now()) / self.fake.clock.scale)
            else:
                self.fake.clock.advance_to(resp.arrival + wait)
        if late and timeout is not None:
            raise _timed_out(request, resp, timeout)
        return _to_httpx(request, resp)


def _read_timeout(request: httpx.Request) -> float | None:
    """The client's read timeout for this request (httpx passes it along), if any."""
    timeout = request.extensions.get("timeout")
    if isinstance(timeout, dict):
        read = timeout.get("read")
        if isinstance(read, int | float) and read > 0:
            return float(read)
    return None


def _timed_out(request: httpx.Request, resp: FakeResponse, timeout: float) -> httpx.ReadTimeout:
    """The client gives up before the server answers; the server still finishes (and bills) the work."""
    return httpx.ReadTimeout(
        f"The read operation timed out (the server needed {resp.delay:.1f} s, the client waits {timeout:g} s)",
        request=request,
    )
