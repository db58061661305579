"""Translate a mapping ``where`` filter into a SQL condition on a JSONB column, with the same rules as Python.

The rules are those of :mod:`finetune_embed.index._filters` (the in-process index's evaluator); each one
maps to SQL as follows (``x`` is the field's value, ``metadata -> 'a' -> 'b'`` for ``"a.b"``):

- A path step only enters JSON objects: ``->`` with a text key gives SQL NULL on arrays and scalars, as
  Python's lookup gives "missing" for anything but a mapping. A missing field is SQL NULL.
- Equality with a scalar (string, number, boolean, null) is JSONB containment, ``metadata @> '{"a": {"b":
  v}}'``: exact for scalars (``true`` is not ``1``, ``1`` equals ``1.0``) and served by a GIN index on the
  column. Equality with a list or object is JSONB ``=``, which compares item by item like ``json_equal``.
- ``$ne`` is the negation of equality, so a missing field matches; ``$in`` is ``x = ANY(array)``; ``$nin`` is
  ``x IS NULL OR NOT x = ANY(array)``.
- Ranges check the JSON type first (``jsonb_typeof(x) = 'number'`` or ``'string'``, anything else does not
  match) and then compare numbers as JSONB numerics and strings byte-wise (``COLLATE "C"``), which is code
  point order, as in Python.
- ``$exists`` is ``x IS NOT NULL`` (a JSON ``null`` is a value, not SQL NULL). ``$and`` / ``$or`` are SQL
  ``AND`` / ``OR``; ``$not`` is ``NOT COALESCE(..., FALSE)``: a condition that is SQL NULL (a missing field)
  counts as false before it is negated, so negation is two-valued, as in Python.
- Values that can never be stored in JSONB (NaN, infinities, strings with NUL characters or lone surrogates,
  sets, objects with non-string keys) equal no stored value: they make ``$eq`` / ``$in`` items false and
  ``$ne`` / ``$nin`` items true, exactly what the Python evaluator answers for stored JSON.

Known difference: numbers are compared as the decimals of their JSON text, Python compares an ``int`` with a
``float`` exactly. They disagree only for integers beyond 2**53 against floats that round near them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from psycopg import sql

from ..._exceptions import ConfigError
from .._filters import And, Condition, Filter, Not, Or, Where, parse_filter

__all__ = ["Unrepresentable", "metadata_json", "to_json_value", "where_to_sql"]


class Unrepresentable(Exception):
    """Raised internally by :func:`to_json_value` for a value JSONB cannot hold; ``path`` says where."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _check_string(text: str, path: str) -> None:
    if "\x00" in text:
        raise Unrepresentable(path, "a string with a NUL character (PostgreSQL text cannot hold \\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Unrepresentable(path, f"a string that is not valid Unicode ({exc.reason})") from None


def to_json_value(value: Any, path: str = "$") -> Any:
    """``value`` as plain JSON data (tuples become lists), or :class:`Unrepresentable` if JSONB cannot hold it."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unrepresentable(path, f"{value!r} is not a JSON number")
        return float(value)
    if isinstance(value, str):
        _check_string(value, path)
        return str(value)
    if isinstance(value, list | tuple):
        return [to_json_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Unrepresentable(path, f"key {key!r} is not a string")
            _check_string(key, f"{path}.{key}")
            out[key] = to_json_value(item, f"{path}.{key}")
        return out
    raise Unrepresentable(path, f"{type(value).__name__} is not a JSON type")


def _representable(value: Any) -> tuple[bool, Any]:
    try:
        return True, to_json_value(value)
    except Unrepresentable:
        return False, None


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _nest(path: tuple[str, ...], value: Any) -> Any:
    for part in reversed(path):
        value = {part: value}
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class _Builder:
    def __init__(self, column: sql.Composable) -> None:
        self.column = column

    def field(self, path: tuple[str, ...]) -> sql.Composable:
        expr: sql.Composable = self.column
        for part in path:
            expr = sql.SQL("({} -> {})").format(expr, sql.Literal(part))
        return expr

    def jsonb(self, value: Any) -> sql.Composable:
        return sql.SQL("{}::jsonb").format(sql.Literal(_dumps(value)))

    def equal(self, cond: Condition, value: Any) -> sql.Composable:
        if _is_scalar(value):
            return sql.SQL("({} @> {})").format(self.column, self.jsonb(_nest(cond.path, value)))
        return sql.SQL("({} = {})").format(self.field(cond.path), self.jsonb(value))

    def member(self, cond: Condition, values: list[Any]) -> sql.Composable:
        array = sql.SQL("ARRAY[{}]::jsonb[]").format(sql.SQL(", ").join(self.jsonb(v) for v in values))
        return sql.SQL("({} = ANY({}))").format(self.field(cond.path), array)

    def tree(self, node: Filter) -> sql.Composable:
        if isinstance(node, Condition):
            return self.condition(node)
        if isinstance(node, Not):
            return sql.SQL("(NOT COALESCE({}, FALSE))").format(self.tree(node.filter))
        joiner = " AND " if isinstance(node, And) else " OR "
        assert isinstance(node, And | Or)
        return sql.SQL("({})").format(sql.SQL(joiner).join(self.tree(part) for part in node.filters))

    def condition(self, cond: Condition) -> sql.Composable:
        op = cond.op
        if op == "$exists":
            return sql.SQL("({} IS {} NULL)").format(self.field(cond.path), sql.SQL("NOT" if cond.value else ""))
        if op in ("$eq", "$ne"):
            ok, value = _representable(cond.value)
            if not ok:  # equals no stored value
                return sql.SQL("FALSE" if op == "$eq" else "TRUE")
            test = self.equal(cond, value)
            # a missing field makes JSONB "=" NULL: $ne counts it as a match
            return test if op == "$eq" else sql.SQL("(NOT COALESCE({}, FALSE))").format(test)
        if op in ("$in", "$nin"):
            values = [v for ok, v in map(_representable, cond.value) if ok]
            if not values:
                return sql.SQL("FALSE" if op == "$in" else "TRUE")
            test = self.member(cond, values)
            if op == "$in":
                return test
            return sql.SQL("({} IS NULL OR NOT {})").format(self.field(cond.path), test)
        return self.range(cond)

    def range(self, cond: Condition) -> sql.Composable:
        x = self.field(cond.path)
        op, bound = cond.op, cond.value
        symbol = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
        if isinstance(bound, str):
            if "\x00" in bound:
                # stored strings hold no NUL: s < p + "\0" + rest  <=>  s <= p, and s > it  <=>  s > p
                bound = bound.split("\x00", 1)[0]
                symbol = "<=" if op in ("$lt", "$lte") else ">"
            try:
                bound.encode("utf-8")
            except UnicodeEncodeError:
                raise ConfigError(
                    f"where[{cond.field!r}][{op!r}]: the bound {cond.value!r} is not valid Unicode and cannot "
                    "be sent to PostgreSQL."
                ) from None
            return sql.SQL("(jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') COLLATE \"C\" {s} {b})").format(
                x=x, s=sql.SQL(symbol), b=sql.SQL("{} COLLATE \"C\"").format(sql.Literal(bound))
            )
        number = sql.SQL("(jsonb_typeof({}) = 'number')").format(x)
        if isinstance(bound, float) and math.isinf(bound):
            # every stored number is finite
            below = (bound > 0) == (op in ("$lt", "$lte"))
            return number if below else sql.SQL("FALSE")
        return sql.SQL("({} AND {} {} {})").format(number, x, sql.SQL(symbol), self.jsonb(bound))


def where_to_sql(where: Where | None, column: str | sql.Composable = "metadata") -> sql.Composable | None:
    """The SQL condition for a mapping ``where`` on JSONB column ``column``, or ``None`` when nothing filters.

    Values are embedded as quoted literals (``psycopg.sql.Literal``), so the result needs no parameters and
    is safe against injection.

    Raises:
        ConfigError: ``where`` is a callable (it cannot run inside PostgreSQL), or a malformed mapping (see
            :func:`~finetune_embed.index._filters.parse_filter`).
    """
    if where is None:
        return None
    if callable(where) and not isinstance(where, Mapping):
        raise ConfigError(
            "PgVectorIndex filters inside PostgreSQL, so `where` must be a mapping such as "
            "{'lang': 'en', 'stars': {'$gte': 4}} (operators: $eq $ne $gt $gte $lt $lte $in $nin $exists, "
            "$and $or $not); a Python "
            "callable cannot run there. Express the filter as a mapping, or search with a larger k and filter "
            "the matches in Python."
        )
    tree = parse_filter(where)
    if tree is None:
        return None
    col = sql.Identifier(column) if isinstance(column, str) else column
    return _Builder(col).tree(tree)


def metadata_json(metadata: Any, where: str) -> str:
    """Metadata as compact JSON text for JSONB; ``where`` names the item in errors.

    Raises:
        Unrepresentable: a value JSONB cannot hold.
    """
    if not isinstance(metadata, Mapping):
        raise Unrepresentable(where, f"metadata must be a mapping, got {type(metadata).__name__}")
    return _dumps(to_json_value(metadata, where))

