"""How one item's metadata is laid out in a Milvus row, and our filter language as a Milvus boolean expression.

Milvus filters on declared fields and on keys of JSON fields, with SQL-like rules: a comparison on a missing JSON
key is "unknown" (Milvus Lite uses three-valued logic: ``not`` of unknown is still unknown), ``==`` on JSON
follows the engine's own type rules, and ids or values spliced into an expression need escaping. So each row
carries, in the JSON field ``filt``:

- ``filt["t"]``: a list of fixed-length hashed tokens: "path present" for every reachable dotted path (nested
  objects included), "path equals value" where the value is written in one canonical JSON text per value under
  the filters' equality (``1`` and ``1.0`` alike, ``true`` apart from ``1``, lists and objects item by item),
  "path holds a number" / "path holds a string", and one token every row has;
- ``filt["n<h>"]``: the number at a path (as a double), ``filt["s<h>"]``: the string at a path, where ``<h>`` is
  a hash of the path: the range operators compare these, guarded by the "holds a number / string" token, so a
  missing key never reaches a comparison and negation stays two-valued.

Equality, membership, ``$exists`` and ``null`` are token tests (``json_contains`` / ``json_contains_any``), so no
user text but a range's string bound is ever spliced into an expression, and that one is escaped with the
escapes both Milvus and Milvus Lite read. Numbers compare as doubles (integers beyond 2**53 approximately).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from .._exceptions import ConfigError, UnsupportedFilterError
from ..index._filters import And, Condition, Filter, Or
from ._canonical import filter_paths
from ._chroma_layout import canonical

__all__ = ["ENGINE", "FILTER_FIELD", "compile_filter", "filter_document", "quote"]

ENGINE = "milvus"
FILTER_FIELD = "filt"
_RANGE_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _hash(*parts: Any) -> str:
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


_EVERY = _hash("every row")


def _present(path: str) -> str:
    return _hash("has", path)


def _equals(path: str, text: str) -> str:
    return _hash("eq", path, text)


def _holds(kind: str, path: str) -> str:
    return _hash("kind", kind, path)


def _key(kind: str, path: str) -> str:
    """The JSON key of the number (``n``) or string (``s``) at ``path``: hex only, so it needs no escaping."""
    return kind + _hash("key", path)


def _double(value: int | float, item_id: str, path: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ConfigError(
            f"metadata of id {item_id!r}: the integer at {path!r} is too large for Milvus's JSON numbers "
            "(doubles); store it as a string."
        ) from None


def filter_document(metadata: Mapping[str, Any], item_id: str) -> dict[str, Any]:
    """The JSON value of the ``filt`` field for one item's (cleaned, JSON-ready) metadata."""
    tokens = [_EVERY]
    doc: dict[str, Any] = {}
    for path, value in filter_paths(metadata):
        tokens.append(_present(path))
        text = canonical(value)
        if text is not None:
            tokens.append(_equals(path, text))
        if isinstance(value, int | float) and not isinstance(value, bool):
            tokens.append(_holds("number", path))
            doc[_key("n", path)] = _double(value, item_id, path)
        elif isinstance(value, str):
            tokens.append(_holds("string", path))
            doc[_key("s", path)] = value
    doc["t"] = tokens
    return doc


def quote(text: str) -> str:
    """A string literal both Milvus (2.3) and Milvus Lite read back as ``text``: ``"`` and ``\\`` escaped, line
    breaks and tabs as ``\\n`` ``\\r`` ``\\t``."""
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
    return f'"{escaped}"'


def _number(value: float) -> str:
    text = repr(float(value) + 0.0)
    return text if any(c in text for c in ".en") else text + ".0"


def _has(token: str) -> str:
    return f'json_contains({FILTER_FIELD}["t"], "{token}")'


_TRUE = _has(_EVERY)
_FALSE = f"(not {_TRUE})"


def _range(cond: Condition) -> str:
    op, bound, path = cond.op, cond.value, cond.field
    if isinstance(bound, str):
        if "\x00" in bound:
            raise UnsupportedFilterError(
                f"engine {ENGINE!r}: where[{path!r}][{op!r}] compares with a string holding a NUL character, which "
                "a Milvus expression cannot carry. Drop the NUL from the bound.",
                engine=ENGINE,
                operator=f"{op}:string",
            )
        return f"({_has(_holds('string', path))} and {FILTER_FIELD}[\"{_key('s', path)}\"] {_RANGE_OPS[op]} " \
               f"{quote(bound)})"
    number = float(bound)
    holds = _has(_holds("number", path))
    if math.isinf(number):
        everything = (number > 0) == (op in ("$lt", "$lte"))  # every stored number is finite
        return holds if everything else _FALSE
    return f"({holds} and {FILTER_FIELD}[\"{_key('n', path)}\"] {_RANGE_OPS[op]} {_number(number)})"


def _tokens(path: str, values: list[Any]) -> list[str]:
    texts = [t for v in values if (t := canonical(v)) is not None]
    return sorted({_equals(path, t) for t in texts})


def _leaf(cond: Condition) -> str:
    path, op, value = cond.field, cond.op, cond.value
    if op == "$exists":
        found = _has(_present(path))
        return found if value else f"(not {found})"
    if op in ("$eq", "$ne"):
        tokens = _tokens(path, [value])
        found = _has(tokens[0]) if tokens else _FALSE
        return found if op == "$eq" else f"(not {found})"
    if op in ("$in", "$nin"):
        tokens = _tokens(path, value)
        if not tokens:
            found = _FALSE
        elif len(tokens) == 1:
            found = _has(tokens[0])
        else:
            listed = ", ".join(f'"{t}"' for t in tokens)
            found = f'json_contains_any({FILTER_FIELD}["t"], [{listed}])'
        return found if op == "$in" else f"(not {found})"
    return _range(cond)


def _compile(tree: Filter) -> str:
    if isinstance(tree, Condition):
        return _leaf(tree)
    if isinstance(tree, And | Or):
        joiner = " and " if isinstance(tree, And) else " or "
        return "(" + joiner.join(_compile(part) for part in tree.filters) + ")"
    return f"(not {_compile(tree.filter)})"


def compile_filter(tree: Filter | None) -> str | None:
    """The Milvus boolean expression for a parsed filter (``None``: nothing is filtered).

    Raises:
        UnsupportedFilterError: a string range bound holding a NUL character.
    """
    return None if tree is None else _compile(tree)
