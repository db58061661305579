"""How one item is laid out as a Qdrant point: a UUID id, the vector, and a payload.

Qdrant point ids are unsigned integers or UUIDs, so a string id becomes ``uuid5(ID_NAMESPACE, id)`` and the
original id travels in the payload. The payload holds:

- ``fe_id``: the original id; ``fe_json``: the exact JSON text of the metadata (what reads return); ``fe_seq``: the
  insertion position (an integer-indexed field: ``iter_items`` reads in insertion order, as every backend does);
- ``fe_f``: one key per field a dotted filter path can name, named by a hash of the path (Qdrant reads dots in
  a key as nesting): ``t_<h>`` the JSON type (one of ``TYPES``; a boolean is its value, ``true`` or ``false``),
  ``v_<h>`` a string or a number (as a float), ``c_<h>`` a list's or object's canonical JSON text.

Qdrant's own matching treats an array as "any of its items" and, in the client's local mode, compares Python
values (``True == 1``); the typed keys give the filter language's rules on every engine.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from .._exceptions import ConfigError
from ._canonical import canonical

__all__ = [
    "FIELDS",
    "ID_KEY",
    "ID_NAMESPACE",
    "JSON_KEY",
    "SEQ_KEY",
    "TYPES",
    "field_key",
    "payload",
    "point_id",
    "restore",
]

ID_NAMESPACE = uuid.UUID("6f1c8f5e-2b7d-5a43-9c1e-3f0d4b8a7e21")
ID_KEY = "fe_id"
JSON_KEY = "fe_json"
SEQ_KEY = "fe_seq"
FIELDS = "fe_f"
TYPES = ("null", "true", "false", "number", "string", "list", "object")


def point_id(item_id: str) -> str:
    """The Qdrant point id of a string id: its UUIDv5 in :data:`ID_NAMESPACE`."""
    return str(uuid.uuid5(ID_NAMESPACE, item_id))


def field_key(kind: str, path: str) -> str:
    """The payload key (below ``fe_f``) of a field: ``kind`` is ``t`` (type), ``v`` (value) or ``c`` (container)."""
    return f"{kind}_{hashlib.blake2b(path.encode('utf-8', 'surrogatepass'), digest_size=10).hexdigest()}"


def _number(value: int | float, item_id: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(
            f"metadata of id {item_id!r} holds the integer {value}, too large for Qdrant's payload numbers "
            "(doubles); store it as a string."
        ) from None


def _walk(node: Mapping[str, Any], prefix: str, out: dict[str, Any], item_id: str) -> None:
    for key, value in node.items():
        if not key or "." in key:
            continue  # a filter path cannot name it: kept in the JSON copy only
        path = f"{prefix}.{key}" if prefix else key
        kind = "null"
        if isinstance(value, bool):
            kind = "true" if value else "false"  # the type key says it all: no boolean match needed
        elif isinstance(value, int | float):
            kind, out[field_key("v", path)] = "number", _number(value, item_id)
        elif isinstance(value, str):
            kind, out[field_key("v", path)] = "string", value
        elif isinstance(value, list):
            kind, out[field_key("c", path)] = "list", canonical(value) or ""
        elif isinstance(value, Mapping):
            kind, out[field_key("c", path)] = "object", canonical(value) or ""
            _walk(value, path, out, item_id)
        out[field_key("t", path)] = kind


def payload(item_id: str, metadata: Mapping[str, Any], seq: int = 0) -> dict[str, Any]:
    """The Qdrant payload of one item (``metadata`` already cleaned to JSON types)."""
    text = json.dumps(metadata, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
        item_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"metadata or id of {item_id!r} holds a string that is not valid Unicode ({exc.reason}); Qdrant stores "
            "UTF-8 text only."
        ) from None
    fields: dict[str, Any] = {}
    _walk(metadata, "", fields, item_id)
    return {ID_KEY: item_id, JSON_KEY: text, SEQ_KEY: seq, FIELDS: fields}


def restore(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """An item's metadata from its payload (the exact JSON copy)."""
    if not stored or JSON_KEY not in stored:
        return {}
    value: dict[str, Any] = json.loads(stored[JSON_KEY])
    return value
