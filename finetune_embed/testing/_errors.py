"""Error bodies exactly as the service sends them: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ApiError",
    "bad_request",
    "default_fault_body",
    "error_body",
    "not_found",
]

API_REFERENCE = "https://platform.openai.com/docs/api-reference"


def error_body(
    message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The JSON error envelope (all four keys are always present, as the spec requires)."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class ApiError(Exception):
    """Raised inside a handler to answer with an HTTP error (never escapes the fake)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})
        self._body = body

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        if self._body is not None:
            return self._body
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message, param=param, code=code)


def not_found(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 404 ``invalid_request_error``."""
    return ApiError(404, message, param=param, code=code)


_FAULT_MESSAGES: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to perform this operation.", "invalid_request_error", None),
    404: ("Not found.", "invalid_request_error", None),
    408: ("Request timed out.", "timeout", None),
    409: ("Conflict.", "invalid_request_error", None),
    429: (
        "Rate limit reached. Please try again in 1s. Visit https://platform.openai.com/account/rate-limits "
        "to learn more.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


def default_fault_body(status: int) -> dict[str, Any]:
    """The body of an injected error when the test gave none."""
    message, type_, code = _FAULT_MESSAGES.get(
        status, (f"Injected error (HTTP {status}).", "server_error" if status >= 500 else "invalid_request_error", None)
    )
    return error_body(message, type=type_, code=code)
