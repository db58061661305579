"""One text per JSON value under the filter language's equality, for engines that compare containers as text."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["canonical"]


def _number_text(value: int | float) -> str:
    # equal numbers give equal text: 1 and 1.0, 0 and -0.0, 10**20 and 1e20 (json_equal compares exactly)
    try:
        as_float = float(value)
    except OverflowError:
        return str(value)
    if as_float != value:
        return str(value)
    return repr(as_float + 0.0)


def canonical(value: Any) -> str | None:
    """One text per JSON value under the filters' equality (``1`` = ``1.0``, ``true`` ≠ ``1``, key order
    ignored); ``None`` for a value no stored JSON can equal (NaN, infinities, sets, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return _number_text(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        items = [canonical(v) for v in value]
        if any(i is None for i in items):
            return None
        return "[" + ",".join(i for i in items if i is not None) + "]"
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            return None
        parts = []
        for key in sorted(value):
            text = canonical(value[key])
            if text is None:
                return None
            parts.append(json.dumps(key, ensure_ascii=False) + ":" + text)
        return "{" + ",".join(parts) + "}"
    return None


def filter_paths(metadata: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``(dotted path, value)`` a filter can name, nested objects included. Keys that are empty or hold a dot
    cannot be named by a dotted filter key, so they (and what lies under them) are left to the exact JSON copy."""
    for key, value in metadata.items():
        if not key or "." in key:
            continue
        path = prefix + key
        yield path, value
        if isinstance(value, Mapping):
            yield from filter_paths(value, path + ".")
