"""Compile a parsed ``where`` filter into a Chroma ``where`` over the record layout of ``_chroma_layout``.

Chroma has ``$eq $ne $gt $gte $lt $lte $in $nin $and $or`` but no ``$not`` and no ``$exists``; its ``$ne`` and
``$nin`` match records without the key; its ranges take numbers only and ``$in`` lists one type at a time. So:

- ``$not`` is pushed down to the leaves (De Morgan), and every leaf has a negated form that Chroma can run;
- a missing field is a missing ``fe:t:<path>`` key: ``$exists`` is ``fe:t:<path> $in [every type]``; positive
  leaves never match it (a missing key matches no ``$eq`` / ``$in`` / range), negated leaves use ``$ne`` /
  ``$nin``, which do;
- ``null`` is ``fe:t:<path> == "null"``; lists and objects compare their canonical JSON text (``fe:c:<path>``);
- numbers are stored and sent as floats (integers beyond 2**53 compare approximately); a negated range is
  "not a number, or on the other side";
- ranges over strings cannot run in Chroma: :class:`~finetune_embed.UnsupportedFilterError` with operator
  ``"$gt:string"`` (and so on).
"""

from __future__ import annotations

import math
from typing import Any

from .._exceptions import UnsupportedFilterError
from ..index._filters import And, Condition, Filter, Not
from ._chroma_layout import JSON_KEY, TYPES, canonical, container_key, indexable, scalar, type_key

__all__ = ["ENGINE", "to_chroma_where"]

ENGINE = "chroma"
ChromaWhere = dict[str, Any]

TRUE: ChromaWhere = {JSON_KEY: {"$ne": ""}}  # every record has a non-empty JSON copy
FALSE: ChromaWhere = {JSON_KEY: {"$eq": ""}}
_INVERSE = {"$gt": "$lte", "$gte": "$lt", "$lt": "$gte", "$lte": "$gt"}


def _combine(joiner: str, parts: list[ChromaWhere]) -> ChromaWhere:
    neutral, absorbing = (TRUE, FALSE) if joiner == "$and" else (FALSE, TRUE)
    kept: list[ChromaWhere] = []
    for part in parts:
        if part == absorbing:
            return absorbing
        if part == neutral:
            continue
        kept.extend(part[joiner] if set(part) == {joiner} else [part])  # flatten nested same-kind groups
    if not kept:
        return neutral
    return kept[0] if len(kept) == 1 else {joiner: kept}


def _number(value: Any) -> float | None:
    """A filter number as Chroma compares it (a float), or ``None`` when no stored number can equal it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        return scalar(value)
    except Exception:  # an integer beyond doubles: no stored number equals it
        return None


def _equal(path: str, value: Any, negate: bool) -> ChromaWhere:
    eq = "$ne" if negate else "$eq"
    if value is None:
        return {type_key(path): {eq: "null"}}
    if isinstance(value, bool | str):
        return {path: {eq: value}}
    if isinstance(value, int | float):
        number = _number(value)
        if number is None:
            return TRUE if negate else FALSE
        return {path: {eq: number}}
    text = canonical(value) if isinstance(value, list | tuple | dict) else None
    if text is None:  # equals no stored value
        return TRUE if negate else FALSE
    return {container_key(path): {eq: text}}


def _member(path: str, values: list[Any], negate: bool) -> ChromaWhere:
    strings = [v for v in values if isinstance(v, str)]
    bools = [v for v in values if isinstance(v, bool)]
    numbers = [n for v in values if isinstance(v, int | float) and not isinstance(v, bool)
               if (n := _number(v)) is not None]
    containers = [t for v in values if isinstance(v, list | tuple | dict) if (t := canonical(v)) is not None]
    op = "$nin" if negate else "$in"
    parts: list[ChromaWhere] = []
    for key, group in ((path, strings), (path, bools), (path, numbers), (container_key(path), containers)):
        if group:
            parts.append({key: {op: list(dict.fromkeys(group))}})
    if any(v is None for v in values):
        parts.append({type_key(path): {"$ne" if negate else "$eq": "null"}})
    return _combine("$and" if negate else "$or", parts)


def _range(cond: Condition, path: str, negate: bool) -> ChromaWhere:
    op, bound = cond.op, cond.value
    if isinstance(bound, str):
        raise UnsupportedFilterError(
            f"engine {ENGINE!r}: Chroma compares only numbers with {op}; where[{cond.field!r}][{op!r}] has the string "
            f"bound {bound!r}. "
            "Filter strings with $eq / $in, or use another backend (EmbeddingIndex, PgVectorIndex).",
            engine=ENGINE,
            operator=f"{op}:string",
        )
    is_number = {type_key(path): {"$eq": "number"}}
    not_number = {type_key(path): {"$ne": "number"}}
    if isinstance(bound, float) and math.isinf(bound):
        everything = (bound > 0) == (op in ("$lt", "$lte"))  # every stored number is finite
        positive = is_number if everything else FALSE
        if not negate:
            return positive
        return not_number if everything else TRUE
    number = scalar(bound)
    if not negate:
        return {path: {op: number}}
    return _combine("$or", [not_number, {path: {_INVERSE[op]: number}}])


def _leaf(cond: Condition, negate: bool) -> ChromaWhere:
    if not indexable(cond.path):
        raise UnsupportedFilterError(
            f"engine {ENGINE!r}: Chroma cannot filter on the field {cond.field!r}: top-level keys starting with '$', "
            "'#' or 'fe:' are kept in the JSON copy only (Chroma refuses or reserves them). Rename the field.",
            engine=ENGINE,
            operator=f"field {cond.field!r}",
        )
    path = cond.field
    op = cond.op
    if op == "$exists":
        present = bool(cond.value) != negate
        return {type_key(path): {"$in" if present else "$nin": list(TYPES)}}
    if op in ("$eq", "$ne"):
        return _equal(path, cond.value, negate != (op == "$ne"))
    if op in ("$in", "$nin"):
        return _member(path, cond.value, negate != (op == "$nin"))
    return _range(cond, path, negate)


def _compile(tree: Filter, negate: bool) -> ChromaWhere:
    if isinstance(tree, Condition):
        return _leaf(tree, negate)
    if isinstance(tree, Not):
        return _compile(tree.filter, not negate)
    joiner = "$and" if isinstance(tree, And) != negate else "$or"
    return _combine(joiner, [_compile(part, negate) for part in tree.filters])


def to_chroma_where(tree: Filter | None) -> ChromaWhere | None:
    """The Chroma ``where`` for a parsed filter, or ``None`` when it lets every record through.

    Raises:
        UnsupportedFilterError: a range over strings, or a field kept in the JSON copy only.
    """
    if tree is None:
        return None
    where = _compile(tree, False)
    return None if where == TRUE else where
