"""Metadata filters for search: a mapping in the MongoDB / Chroma style, or any callable.

A mapping ``where`` holds one entry per field, all of which must match (AND)::

    {"brand": "acme"}                               equality
    {"score": {"$gte": 4}}                          range: $gt $gte $lt $lte
    {"score": {"$gte": 2, "$lt": 5}}                several operators on one field: AND
    {"lang": {"$in": ["en", "fr"]}}                 membership: $in $nin
    {"brand": {"$ne": "acme"}}                      inequality
    {"user.country": "NL"}                          a dotted key reaches nested metadata
    {"user.country": {"$exists": True}}             the field is present (its value may be null)
    {"$or": [{"lang": "en"}, {"stars": 5}]}         any of the filters: $or; all of them: $and
    {"$not": {"lang": "en"}}                        the filter does not hold

Rules (every backend follows the same ones; an engine that cannot express an operator raises
:class:`~finetune_embed.UnsupportedFilterError` naming the engine and the operator):

- A field that is missing never matches, except under ``$ne`` and ``$nin``, which match it.
- ``$not`` is plain negation: ``{"$not": {"a": 1}}`` matches whatever ``{"a": 1}`` does not, items without
  ``a`` included. It can also wrap one field's operators: ``{"a": {"$not": {"$gt": 3}}}``.
- ``$and`` / ``$or`` take a non-empty list of filters; keys side by side in one mapping are an implicit
  ``$and``.
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

__all__ = [
    "LOGICAL_OPERATORS",
    "OPERATORS",
    "And",
    "Condition",
    "Filter",
    "Not",
    "Or",
    "Where",
    "compile_where",
    "evaluate",
    "parse_filter",
    "parse_where",
]

Where: TypeAlias = Mapping[str, Any] | Callable[[Mapping[str, Any]], bool]
"""A metadata filter: a mapping of conditions (see the module docstring) or a predicate over the metadata."""

OPERATORS: tuple[str, ...] = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
"""The operators on one field."""
LOGICAL_OPERATORS: tuple[str, ...] = ("$and", "$or", "$not")
"""The operators that combine filters."""
_RANGE = frozenset({"$gt", "$gte", "$lt", "$lte"})
_LISTS = frozenset({"$in", "$nin"})
MISSING: Any = object()
"""What :func:`lookup` gives for a field an item does not have."""


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


@dataclass(frozen=True)
class And:
    """All of ``filters`` hold (``$and``, or several keys in one mapping)."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    """At least one of ``filters`` holds (``$or``)."""

    filters: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    """``filter`` does not hold (``$not``)."""

    filter: Filter


Filter: TypeAlias = Condition | And | Or | Not
"""A parsed mapping filter: a tree of :class:`Condition` leaves under :class:`And`, :class:`Or` and :class:`Not`."""


def _allowed() -> str:
    return ", ".join(OPERATORS + LOGICAL_OPERATORS)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_value(field: str, op: str, value: Any) -> Any:
    if op == "$exists":
        if not isinstance(value, bool):
            raise ConfigError(f"where[{field!r}]['$exists'] takes True or False, got {value!r}.")
        return value
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


def _check_field(field: Any) -> str:
    if not isinstance(field, str) or not field or any(not part for part in field.split(".")):
        raise ConfigError(f"where keys are metadata field names (dotted for nested fields), got {field!r}.")
    return field


def _is_operators(spec: Any) -> bool:
    return isinstance(spec, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in spec)


def _field_filter(field: str, spec: Any) -> list[Filter]:
    """The conditions on one field: ``{"$gte": 1, "$lt": 3}``, ``{"$not": {...}}`` or a plain value."""
    if not _is_operators(spec):
        return [Condition(field, "$eq", spec)]
    out: list[Filter] = []
    for op, value in spec.items():
        if op == "$not":
            if not _is_operators(value):
                raise ConfigError(
                    f"where[{field!r}]['$not'] takes the field's operators, such as {{'$gt': 3}}; got {value!r}."
                )
            inner = _field_filter(field, value)
            out.append(Not(inner[0] if len(inner) == 1 else And(tuple(inner))))
        elif op not in OPERATORS:
            raise ConfigError(f"where[{field!r}]: unknown operator {op!r}; allowed: {_allowed()}.")
        else:
            out.append(Condition(field, op, _check_value(field, op, value)))
    return out


def _logical(op: str, value: Any, at: str) -> Filter:
    if op == "$not":
        return Not(_parse(value, f"{at}['$not']"))
    if op not in ("$and", "$or"):
        raise ConfigError(
            f"{at}: {op!r} is not a logical operator ($and, $or, $not); operators on a field go inside its "
            f"condition: {{'field': {{{op!r}: ...}}}}."
        )
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{at}[{op!r}] takes a non-empty list of filters, got {value!r}.")
    parts = tuple(_parse(item, f"{at}[{op!r}][{i}]") for i, item in enumerate(value))
    return And(parts) if op == "$and" else Or(parts)


def _parse(where: Any, at: str) -> Filter:
    if not isinstance(where, Mapping):
        raise ConfigError(f"{at} must be a mapping, got {type(where).__name__}: {where!r}.")
    parts: list[Filter] = []
    for key, spec in where.items():
        if isinstance(key, str) and key.startswith("$"):
            parts.append(_logical(key, spec, at))
        else:
            parts.extend(_field_filter(_check_field(key), spec))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def parse_filter(where: Mapping[str, Any]) -> Filter | None:
    """Parse a mapping filter into a tree (``None`` for an empty mapping: nothing is filtered).

    Raises:
        ConfigError: a key that is not a non-empty string, an unknown operator (the message lists the
            allowed ones), a ``$in`` / ``$nin`` value that is not a list, a range bound that is not a number
            or string, ``$exists`` without a bool, ``$and`` / ``$or`` without a non-empty list.

    Example:
        >>> parse_filter({"$or": [{"lang": "en"}, {"stars": {"$gte": 4}}]})
        Or(filters=(Condition(field='lang', op='$eq', value='en'), Condition(field='stars', op='$gte', value=4)))
    """
    if not isinstance(where, Mapping):
        raise ConfigError(f"where must be a mapping or a callable, got {type(where).__name__}.")
    if not where:
        return None
    return _parse(where, "where")


def parse_where(where: Mapping[str, Any]) -> list[Condition]:
    """Parse a mapping filter of field conditions only into a flat list of conditions (all of which must hold).

    :func:`parse_filter` parses the whole language, ``$and`` / ``$or`` / ``$not`` included; this one refuses them.

    Raises:
        ConfigError: as :func:`parse_filter`, and for the logical operators.

    Example:
        >>> parse_where({"stars": {"$gte": 4}, "lang": "en"})
        [Condition(field='stars', op='$gte', value=4), Condition(field='lang', op='$eq', value='en')]
    """
    tree = parse_filter(where)
    if tree is None:
        return []
    parts = tree.filters if isinstance(tree, And) else (tree,)
    if not all(isinstance(p, Condition) for p in parts):
        raise ConfigError(
            "parse_where gives a flat list of field conditions; this filter uses the logical operators "
            "($and, $or, $not): parse it with parse_filter."
        )
    return [p for p in parts if isinstance(p, Condition)]


def lookup(metadata: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a dotted ``path`` of one item's metadata, or :data:`MISSING`."""
    node: Any = metadata
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
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
    return value_matches(cond, lookup(metadata, path))


def value_matches(cond: Condition, value: Any) -> bool:
    """Whether a field's ``value`` (:data:`MISSING` when absent) passes ``cond``."""
    op = cond.op
    if op == "$exists":
        return (value is not MISSING) is bool(cond.value)
    if value is MISSING:
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


def evaluate(tree: Filter, metadata: Mapping[str, Any]) -> bool:
    """Whether one item's ``metadata`` passes a parsed filter (the reference semantics of every backend)."""
    if isinstance(tree, Condition):
        return _matches(tree, tree.path, metadata)
    if isinstance(tree, And):
        return all(evaluate(part, metadata) for part in tree.filters)
    if isinstance(tree, Or):
        return any(evaluate(part, metadata) for part in tree.filters)
    return not evaluate(tree.filter, metadata)


def compile_where(where: Where | None) -> Callable[[Mapping[str, Any]], bool] | None:
    """Turn ``where`` into a predicate over one item's metadata, or ``None`` when nothing is filtered.

    ``None`` and an empty mapping give ``None``; a callable is returned wrapped so that its result is a bool;
    a mapping is parsed (and checked) once by :func:`parse_filter`.

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
    tree = parse_filter(where)
    if tree is None:
        return None
    if isinstance(tree, Condition):
        cond, path = tree, tree.path
        return lambda metadata: _matches(cond, path, metadata)
    if isinstance(tree, And) and all(isinstance(p, Condition) for p in tree.filters):
        compiled = [(c, c.path) for c in tree.filters if isinstance(c, Condition)]
        return lambda metadata: all(_matches(c, path, metadata) for c, path in compiled)
    root = tree
    return lambda metadata: evaluate(root, metadata)
