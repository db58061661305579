"""Metadata filters for search: a mapping in the MongoDB / Chroma style, or any callable.

A mapping ``where`` holds one entry per field, all of which must match (AND)::

    {"brand": "acme"}                               equality
    {"score": {"$gte": 4}}                          range: $gt $gte $lt $lte
    {"score": {"$gte": 2, "$lt": 5}}                several operators on one field: AND
    {"lang": {"$in": ["en", "fr"]}}                 membership: $in $nin
    {"brand": {"$ne": "acme"}}                      inequality
    {"user.country": "NL"}                          a dotted key reaches nested metadata

Rules (the PostgreSQL backend follows the same ones):

- A field that is missing never matches, except under ``$ne`` and ``$nin``, which match it.
- Values compare as JSON values: ``true`` is not ``1``; ``1`` equals ``1.0``; a list equals a list with the
  same items in the same order (there is no "array contains" matching).
- Ranges compare numbers with numbers and strings with strings; any other pairing does not match.
- ``{"field": None}`` matches a field that is present with the value ``null``.
- An unknown operator raises :class:`~finetune_embed.ConfigError` listing the allowed ones.

A callable ``where`` receives each item's metadata mapping and returns ``True`` to keep the item.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from .._exceptions import ConfigError

__all__ = ["OPERATORS", "Condition", "Where", "compile_where", "parse_where"]

Where: TypeAlias = Mapping[str, Any] | Callable[[Mapping[str, Any]], bool]
"""A metadata filter: a mapping of conditions (see the module docstring) or a predicate over the metadata."""

OPERATORS: tuple[str, ...] = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
_RANGE = frozenset({"$gt", "$gte", "$lt", "$lte"})
_LISTS = frozenset({"$in", "$nin"})
_MISSING = object()


@dataclass(frozen=True)
class Condition:
    """One parsed condition: ``field`` (dotted path), ``op`` (one of :data:`OPERATORS`) and ``value``."""

    field: str
    op: str
    value: Any

    @property
    def path(self) -> tuple[str, ...]:
        """The field split on dots: ``"user.country"`` → ``("user", "country")``."""
        return tuple(self.field.split("."))


def _allowed() -> str:
    return ", ".join(OPERATORS)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_value(field: str, op: str, value: Any) -> Any:
    if op in _LISTS:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple | set | frozenset):
            raise ConfigError(
                f"where[{field!r}][{op!r}] needs a list of values, got {type(value).__name__}: {value!r}."
            )
        return list(value)
    if op in _RANGE:
        if not (_is_number(value) or isinstance(value, str)):
            raise ConfigError(
                f"where[{field!r}][{op!r}] compares numbers or strings, "
                f"got {type(value).__name__}: {value!r}."
            )
        if isinstance(value, float) and math.isnan(value):
            raise ConfigError(f"where[{field!r}][{op!r}] cannot compare with NaN.")
    return value


def parse_where(where: Mapping[str, Any]) -> list[Condition]:
    """Parse a mapping filter into a flat list of conditions (all of which must hold).

    Raises:
        ConfigError: a key that is not a non-empty string, an unknown operator (the message lists the
            allowed ones), a ``$in`` / ``$nin`` value that is not a list, or a range bound that is not a
            number or string.

    Example:
        >>> parse_where({"stars": {"$gte": 4}, "lang": "en"})
        [Condition(field='stars', op='$gte', value=4), Condition(field='lang', op='$eq', value='en')]
    """
    if not isinstance(where, Mapping):
        raise ConfigError(f"where must be a mapping or a callable, got {type(where).__name__}.")
    conditions: list[Condition] = []
    for field, spec in where.items():
        if not isinstance(field, str) or not field or any(not part for part in field.split(".")):
            raise ConfigError(
                f"where keys are metadata field names (dotted for nested fields), got {field!r}."
            )
        if field.startswith("$"):
            raise ConfigError(
                f"where[{field!r}]: operators go inside a field's condition ({{'field': {{'$gte': 1}}}}); "
                "logical operators ($and, $or, $not) are not supported - pass a callable instead."
            )
        if isinstance(spec, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in spec):
            if not spec:  # pragma: no cover - guarded by any() above
                continue
            for op, value in spec.items():
                if op not in OPERATORS:
                    raise ConfigError(f"where[{field!r}]: unknown operator {op!r}; allowed: {_allowed()}.")
                conditions.append(Condition(field, op, _check_value(field, op, value)))
        else:
            conditions.append(Condition(field, "$eq", spec))
    return conditions


def _lookup(metadata: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = metadata
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: booleans are not numbers, containers compare item by item."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[key], b[key]) for key in a)
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        return False
    return bool(a == b)


def _compare(op: str, value: Any, bound: Any) -> bool:
    if _is_number(bound):
        if not _is_number(value) or (isinstance(value, float) and math.isnan(value)):
            return False
    elif not isinstance(value, str):
        return False
    if op == "$gt":
        return bool(value > bound)
    if op == "$gte":
        return bool(value >= bound)
    if op == "$lt":
        return bool(value < bound)
    return bool(value <= bound)


def _matches(cond: Condition, path: tuple[str, ...], metadata: Mapping[str, Any]) -> bool:
    value = _lookup(metadata, path)
    op = cond.op
    if value is _MISSING:
        return op in ("$ne", "$nin")
    if op == "$eq":
        return json_equal(value, cond.value)
    if op == "$ne":
        return not json_equal(value, cond.value)
    if op == "$in":
        return any(json_equal(value, v) for v in cond.value)
    if op == "$nin":
        return not any(json_equal(value, v) for v in cond.value)
    return _compare(op, value, cond.value)


def compile_where(where: Where | None) -> Callable[[Mapping[str, Any]], bool] | None:
    """Turn ``where`` into a predicate over one item's metadata, or ``None`` when nothing is filtered.

    ``None`` and an empty mapping give ``None``; a callable is returned wrapped so that its result is a bool;
    a mapping is parsed (and checked) once by :func:`parse_where`.

    Example:
        >>> keep = compile_where({"stars": {"$gte": 4}})
        >>> keep({"stars": 5}), keep({"stars": 2}), keep({})
        (True, False, False)
    """
    if where is None:
        return None
    if callable(where) and not isinstance(where, Mapping):
        fn = where

        def call(metadata: Mapping[str, Any]) -> bool:
            return bool(fn(metadata))

        return call
    conditions = parse_where(where)
    if not conditions:
        return None
    compiled = [(c, c.path) for c in conditions]

    def predicate(metadata: Mapping[str, Any]) -> bool:
        return all(_matches(c, path, metadata) for c, path in compiled)

    return predicate
