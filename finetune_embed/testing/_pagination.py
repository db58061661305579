"""Cursor pagination (``after`` + ``limit`` → ``has_more``, ``first_id``, ``last_id``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._errors import bad_request
from ._http import FakeRequest
from ._validate import check_int

__all__ = ["page", "parse_limit"]


def parse_limit(req: FakeRequest, *, default: int, maximum: int, minimum: int = 1) -> int:
    """The ``limit`` query parameter, checked against the endpoint's bounds."""
    raw = req.q("limit")
    if raw is None or raw == "":
        return default
    try:
        value: Any = int(raw)
    except ValueError:
        value = raw
    limit = check_int(value, "limit", minimum=minimum, maximum=maximum)
    assert isinstance(limit, int)
    return limit


def page(items: Sequence[dict[str, Any]], *, after: str | None, limit: int, ids: bool = True) -> dict[str, Any]:
    """The list response for ``items`` (already in response order) after the object ``after``."""
    start = 0
    if after:
        for i, item in enumerate(items):
            if item["id"] == after:
                start = i + 1
                break
        else:
            raise bad_request(
                f"Invalid 'after': no object with id '{after}' in this list.", param="after", code="invalid_value"
            )
    chunk = list(items[start : start + limit])
    out: dict[str, Any] = {"object": "list", "data": chunk, "has_more": start + limit < len(items)}
    if ids:
        out["first_id"] = chunk[0]["id"] if chunk else None
        out["last_id"] = chunk[-1]["id"] if chunk else None
    return out
