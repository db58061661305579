"""A tiny scripted HTTP handler for foundation tests: replies from a queue and counts attempts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


def error_body(
    message: str, *, type_: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass
class Script:
    """Answers requests with the queued responses in order (the last one repeats) and records every request
    (``sent`` keeps what went on the wire: the URL and headers at send time, before anyone could mask them)."""

    responses: list[httpx.Response | Callable[[httpx.Request], httpx.Response] | Exception]
    requests: list[httpx.Request] = field(default_factory=list)
    sent: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.sent.append((str(request.url), dict(request.headers)))
        item = self.responses[min(len(self.requests), len(self.responses)) - 1]
        if isinstance(item, Exception):
            raise item
        if callable(item) and not isinstance(item, httpx.Response):
            return item(request)
        return item

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


FILE_LIST = {"object": "list", "data": [], "has_more": False, "first_id": None, "last_id": None}


def ok(json: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(200, json=FILE_LIST if json is None else json, headers=headers)
