"""Transport-neutral request and response objects: the in-process transport and the loopback server both
translate to and from these, so the two ways of running the fake behave the same."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from ._errors import ApiError, bad_request

__all__ = ["FakeRequest", "FakeResponse", "Fault"]

Fault = Literal["timeout", "disconnect"]

_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have "
    "trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"
)


@dataclass
class FakeRequest:
    """One HTTP request as the fake sees it (header names lowercased)."""

    method: str
    path: str
    query_string: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # filled in by the router
    layout: Literal["openai", "azure"] = "openai"
    endpoint: str = ""
    params: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # what the handler billed etc., for the ledger

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string, parsed."""
        return parse_qs(self.query_string, keep_blank_values=True)

    def q(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def content_type(self) -> str:
        """The request's content type (lowercased, without parameters)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The parsed JSON body; a 400 with the service's message when it is not JSON."""
        if not self.body:
            raise bad_request(_BAD_JSON)
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise bad_request(_BAD_JSON) from None

    def json_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        data = self.json()
        if not isinstance(data, dict):
            raise bad_request(f"{json.dumps(data)[:80]} is not of type 'object'")
        return data


@dataclass
class FakeResponse:
    """One HTTP response (or a fault: the connection times out or drops without a response)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    fault: Fault | None = None
    delay: float = 0.0  # seconds of (fake) latency before the response is sent
    hold: float = 0.0  # over loopback, how long a timeout fault keeps the connection silent
    arrival: float = 0.0  # the fake time the request arrived (latency counts from there)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> FakeResponse:
        """A JSON response."""
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        hdrs = {"content-type": "application/json"}
        hdrs.update(headers or {})
        return cls(status=status, body=body, headers=hdrs)

    @classmethod
    def from_error(cls, err: ApiError) -> FakeResponse:
        """The response for an :class:`ApiError`."""
        return cls.json(err.body, status=err.status, headers=err.headers)

    def json_body(self) -> Any:
        """The body parsed as JSON (for tests and the ledger)."""
        return json.loads(self.body) if self.body else None
