"""Our filter language as RediSearch query syntax, and the index fields each item carries for it.

RediSearch indexes declared fields only, while metadata is schemaless JSON. Each item therefore carries:

- one TAG field (``t``) holding fixed-length hashed tokens: "path present" for every reachable path (nested
  objects included), and "path equals value" where the value is written in a canonical form that follows
  :func:`~finetune_embed.index._filters.json_equal` (``1`` and ``1.0`` alike, ``true`` apart from ``1``, lists
  and objects item by item), plus one token every item has;
- one NUMERIC field per path that ever held a number (``n0``, ``n1``, ... : slots handed out per path and
  recorded in Redis), for the range operators.

Hashing the tokens means no user text is ever spliced into a query, so nothing needs escaping. Booleans are
never numbers, so a range never matches them. A string range cannot be expressed (RediSearch has no lexical
range over tags) and raises :class:`~finetune_embed.UnsupportedFilterError`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from .._exceptions import ConfigError, UnsupportedFilterError
from ..index._filters import And, Condition, Filter, Or
from ._canonical import filter_paths

__all__ = ["ENGINE", "compile_filter", "numeric_values", "tag_tokens"]

ENGINE = "redis"
_RANGE = {"$gt": ("(", "+inf"), "$gte": ("", "+inf"), "$lt": ("-inf", "("), "$lte": ("-inf", "")}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _canonical(value: Any) -> Any:
    """A JSON value rewritten so that values :func:`json_equal` calls equal serialise identically."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return ["n", str(value)]
    if isinstance(value, float):
        return ["n", str(int(value)) if value.is_integer() else repr(value)]
    if isinstance(value, Mapping):
        return {"o": {key: _canonical(item) for key, item in sorted(value.items())}}
    if isinstance(value, list | tuple):
        return {"l": [_canonical(item) for item in value]}
    raise ConfigError(f"filter values are JSON values; got {type(value).__name__}: {value!r}.")


def _token(*parts: Any) -> str:
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()


_EVERY = _token("every item")


@functools.lru_cache(maxsize=4096)
def _present(path: str) -> str:
    return _token("has", path)


@functools.lru_cache(maxsize=16384)
def _scalar_equals(path: str, kind: str, value: Any) -> str:
    return _token("eq", path, _canonical(value))


_CACHED_TEXT = 64  # longer strings (a document's text under "text") are hashed each time, never kept in the cache


def _equals(path: str, value: Any) -> str:
    short = isinstance(value, str) and len(value) <= _CACHED_TEXT
    if value is None or isinstance(value, bool | int | float) or short:
        # the common case: cached (the type is in the key, so True and 1 stay apart); the cache holds short values
        return _scalar_equals(path, type(value).__name__, value)
    return _token("eq", path, _canonical(value))


def tag_tokens(metadata: Mapping[str, Any]) -> list[str]:
    """The TAG tokens of one item's metadata."""
    tokens = [_EVERY]
    for path, value in filter_paths(metadata):
        tokens += (_present(path), _equals(path, value))
    return tokens


def numeric_values(metadata: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of one item's metadata by dotted path (booleans are not numbers)."""
    return {path: float(value) for path, value in filter_paths(metadata) if _is_number(value)}


def _tags(tokens: list[str]) -> str:
    return "@t:{" + " | ".join(tokens) + "}"


def _nothing() -> str:
    return f"-{_tags([_EVERY])}"


def _bound(value: float) -> str:
    return repr(float(value))


class _Compiler:
    def __init__(self, slot_of: Callable[[str], str | None]) -> None:
        self._slot_of = slot_of

    def node(self, tree: Filter) -> str:
        if isinstance(tree, Condition):
            return self.condition(tree)
        if isinstance(tree, And):
            return "(" + " ".join(self.node(part) for part in tree.filters) + ")"
        if isinstance(tree, Or):
            return "(" + " | ".join(self.node(part) for part in tree.filters) + ")"
        return "(-" + self.node(tree.filter) + ")"

    def condition(self, cond: Condition) -> str:
        field, op, value = cond.field, cond.op, cond.value
        if op == "$exists":
            return ("" if value else "-") + _tags([_present(field)])
        if op in ("$eq", "$ne"):
            return ("" if op == "$eq" else "-") + _tags([_equals(field, value)])
        if op in ("$in", "$nin"):
            if not value:
                return _nothing() if op == "$in" else _tags([_EVERY])
            return ("" if op == "$in" else "-") + _tags(sorted({_equals(field, v) for v in value}))
        if isinstance(value, str):
            raise UnsupportedFilterError(
                f"{ENGINE} (RediSearch) cannot compare strings by order: where[{field!r}][{op!r}] = {value!r}. "
                "Filter on equality or $in, or store the value as a number.",
                engine=ENGINE,
                operator=f"{op}:string",
            )
        slot = self._slot_of(field)
        if slot is None:  # no item ever held a number at this path
            return _nothing()
        low, high = _RANGE[op]
        number = float(value)
        if math.isinf(number):
            number = math.copysign(1e308, number)
        if op in ("$gt", "$gte"):
            return f"@{slot}:[{low}{_bound(number)} {high}]"
        return f"@{slot}:[{low} {high}{_bound(number)}]"


def compile_filter(tree: Filter | None, slot_of: Callable[[str], str | None]) -> str | None:
    """The RediSearch query for a parsed filter (``None``: nothing filtered). ``slot_of`` names the NUMERIC field
    that holds a path's numbers, or ``None`` when no item has one.

    Raises:
        UnsupportedFilterError: a range bound that is a string.
    """
    return None if tree is None else _Compiler(slot_of).node(tree)
