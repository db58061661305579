"""URL layouts (OpenAI's ``/v1/...`` and Azure's ``/openai/...?api-version=``) and the route table."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ._errors import ApiError, error_body
from ._http import FakeRequest, FakeResponse

if TYPE_CHECKING:
    from ._fake import FakeOpenAI

__all__ = ["Route", "Router", "canonical_endpoint"]

Handler = Callable[["FakeOpenAI", FakeRequest], FakeResponse]

_AZURE_DEPLOYMENT = re.compile(r"^/deployments/(?P<deployment>[^/]+)(?P<rest>/.*)$")


@dataclass(frozen=True)
class Route:
    """One endpoint: ``pattern`` is the path after ``/v1`` with ``{name}`` placeholders."""

    method: str
    pattern: str
    handler: Handler
    azure_deployment: bool = False  # Azure serves it under /openai/deployments/{deployment}/...

    @property
    def regex(self) -> re.Pattern[str]:
        """The compiled pattern."""
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern) + "$")


def canonical_endpoint(path: str) -> tuple[Literal["openai", "azure"] | None, str, str | None]:
    """(layout, path after the version prefix, Azure deployment) for a request path."""
    if path.startswith("/v1/"):
        return "openai", path[3:], None
    if path.startswith("/openai/"):
        rest = path[7:]
        m = _AZURE_DEPLOYMENT.match(rest)
        if m:
            return "azure", m.group("rest"), m.group("deployment")
        return "azure", rest, None
    return None, path, None


class Router:
    """Finds the handler of a request and fills ``req.layout``, ``req.endpoint`` and ``req.params``."""

    def __init__(self, routes: list[Route]) -> None:
        self._routes = [(r, r.regex) for r in routes]

    def resolve(self, req: FakeRequest) -> Handler:
        """The handler for ``req``; raises a 404 :class:`ApiError` for unknown URLs (as the service does)."""
        layout, rest, deployment = canonical_endpoint(req.path.rstrip("/") or "/")
        req.endpoint = "/v1" + rest if layout else req.path
        if layout is None:
            raise self._invalid_url(req)
        req.layout = layout
        method_seen = False
        for route, regex in self._routes:
            m = regex.match(rest)
            if not m:
                continue
            if layout == "azure" and route.azure_deployment != (deployment is not None):
                continue
            method_seen = True
            if route.method != req.method:
                continue
            req.params = dict(m.groupdict())
            if deployment is not None:
                req.params["deployment"] = deployment
            return route.handler
        if layout == "azure":
            raise ApiError(404, "Resource not found", body={"error": {"code": "404", "message": "Resource not found"}})
        if method_seen:
            raise self._invalid_url(req, method_not_allowed=True)
        raise self._invalid_url(req)

    @staticmethod
    def _invalid_url(req: FakeRequest, *, method_not_allowed: bool = False) -> ApiError:
        if method_not_allowed:
            message = f"Invalid method for URL ({req.method} {req.path})"
            return ApiError(405, message, body=error_body(message))
        return ApiError(
            404, f"Invalid URL ({req.method} {req.path})", body=error_body(f"Invalid URL ({req.method} {req.path})")
        )
