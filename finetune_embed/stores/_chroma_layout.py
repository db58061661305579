"""How one item's JSON metadata is laid out in a Chroma record (Chroma keeps flat str / int / float / bool only).

For every field reachable by a dotted filter path (``"user.country"``), the record holds:

- ``fe:t:<path>``: the JSON type of the value, one of :data:`TYPES` (so ``null``, ``$exists`` and "not a
  number" can be asked of Chroma);
- ``<path>``: the value itself when it is a string, number (always as a float) or boolean (native Chroma
  metadata, so a plain Chroma query like ``{"user.country": "NL"}`` works too);
- ``fe:c:<path>``: for a list or an object, its canonical JSON text (equality on containers; nested objects are
  flattened further as well).

``fe:json`` holds the exact JSON text of the whole metadata, which is what reads return: ints stay ints, null
and nesting come back as they went in. Keys Chroma refuses or that a filter path cannot name (empty, holding a
dot, or a top-level key starting with ``$``, ``#`` or ``fe:``) are kept in ``fe:json`` only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._exceptions import ConfigError
from ._canonical import canonical

__all__ = [
    "JSON_KEY",
    "TYPES",
    "canonical",
    "container_key",
    "flatten",
    "indexable",
    "restore",
    "scalar",
    "type_key",
]

JSON_KEY = "fe:json"
TYPES = ("null", "bool", "number", "string", "list", "object")

Scalar = str | int | float | bool


def type_key(path: str) -> str:
    """The key holding the JSON type of the field at ``path``."""
    return "fe:t:" + path


def container_key(path: str) -> str:
    """The key holding the canonical JSON text of the list or object at ``path``."""
    return "fe:c:" + path


def indexable(parts: tuple[str, ...]) -> bool:
    """Whether a field at these path parts gets its own keys (else it lives in ``fe:json`` only)."""
    if not parts or any(not p or "." in p for p in parts):
        return False
    head = parts[0]
    return not (head.startswith(("$", "#", "fe:")))


def scalar(value: int | float) -> float:
    """A number as a float, the one numeric type stored and compared (Chroma 1.5 compares an int field with a
    float bound after cutting the bound to an int: ``3 < 2.5`` would hold)."""
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(
            f"the integer {value} is too large for Chroma's metadata numbers (doubles); store it as a string."
        ) from None


def _walk(node: Mapping[str, Any], prefix: tuple[str, ...], out: dict[str, Scalar]) -> None:
    for key, value in node.items():
        parts = (*prefix, key)
        if not indexable(parts):
            continue
        path = ".".join(parts)
        if value is None:
            out[type_key(path)] = "null"
        elif isinstance(value, bool):
            out[type_key(path)] = "bool"
            out[path] = value
        elif isinstance(value, int | float):
            out[type_key(path)] = "number"
            out[path] = scalar(value)
        elif isinstance(value, str):
            out[type_key(path)] = "string"
            out[path] = value
        elif isinstance(value, list):
            out[type_key(path)] = "list"
            out[container_key(path)] = canonical(value) or ""
        elif isinstance(value, Mapping):
            out[type_key(path)] = "object"
            out[container_key(path)] = canonical(value) or ""
            _walk(value, parts, out)


def flatten(metadata: Mapping[str, Any], item_id: str) -> dict[str, Scalar]:
    """The Chroma record metadata for one item's (cleaned, JSON-ready) metadata."""
    text = json.dumps(metadata, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"metadata of id {item_id!r} holds a string that is not valid Unicode ({exc.reason}); Chroma stores "
            "UTF-8 text only."
        ) from None
    out: dict[str, Scalar] = {JSON_KEY: text}
    _walk(metadata, (), out)
    return out


def restore(record: Mapping[str, Any] | None) -> dict[str, Any]:
    """An item's metadata from its Chroma record (the exact JSON copy)."""
    if not record or JSON_KEY not in record:
        return {}
    value: dict[str, Any] = json.loads(record[JSON_KEY])
    return value
