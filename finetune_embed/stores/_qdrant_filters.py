"""Compile a parsed ``where`` filter into a Qdrant ``Filter`` over the payload layout of ``_qdrant_layout``.

``$and`` / ``$or`` / ``$not`` are Qdrant's ``must`` / ``should`` / ``must_not``; a negation of a condition on a
missing field holds, as the filter rules say. Every leaf checks the field's type key as well as its value (so
``true`` never equals ``1`` and a list never matches one of its items); numbers compare as floats through
``Range`` (Qdrant matches only strings, integers and booleans by value). Ranges over strings cannot run in
Qdrant: :class:`~finetune_embed.UnsupportedFilterError` with operator ``"$gt:string"`` and so on.
"""

from __future__ import annotations

import math
from typing import Any

from qdrant_client.http import models

from .._exceptions import UnsupportedFilterError
from ..index._filters import And, Condition, Filter, Not
from ._canonical import canonical
from ._qdrant_layout import FIELDS, JSON_KEY, TYPES, field_key

__all__ = ["ENGINE", "to_qdrant_filter"]

ENGINE = "qdrant"
Cond = models.Condition

FALSE = models.IsEmptyCondition(is_empty=models.PayloadField(key=JSON_KEY))  # every point has its JSON copy


def _key(kind: str, path: str) -> str:
    return f"{FIELDS}.{field_key(kind, path)}"


def _is(path: str, kind: str) -> models.FieldCondition:
    return models.FieldCondition(key=_key("t", path), match=models.MatchValue(value=kind))


def _value(path: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=_key("v", path), match=models.MatchValue(value=value))


def _all(*conds: Cond) -> models.Filter:
    return models.Filter(must=list(conds))


def _number(value: Any) -> float | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _equal(path: str, value: Any) -> Cond:
    if value is None:
        return _is(path, "null")
    if isinstance(value, bool):
        return _is(path, "true" if value else "false")
    if isinstance(value, str):
        return _all(_is(path, "string"), _value(path, value))
    if isinstance(value, int | float):
        number = _number(value)
        if number is None:
            return FALSE
        exactly = models.Range(gte=number, lte=number)
        return _all(_is(path, "number"), models.FieldCondition(key=_key("v", path), range=exactly))
    text = canonical(value) if isinstance(value, list | tuple | dict) else None
    if text is None:
        return FALSE
    return models.FieldCondition(key=_key("c", path), match=models.MatchValue(value=text))


def _member(path: str, values: list[Any]) -> Cond:
    strings = list(dict.fromkeys(v for v in values if isinstance(v, str)))
    texts = list(dict.fromkeys(t for v in values if isinstance(v, list | tuple | dict) if (t := canonical(v))))
    parts: list[Cond] = []
    if strings:
        parts.append(_all(_is(path, "string"),
                          models.FieldCondition(key=_key("v", path), match=models.MatchAny(any=strings))))
    if texts:
        parts.append(models.FieldCondition(key=_key("c", path), match=models.MatchAny(any=texts)))
    parts += [_equal(path, v) for v in values if not isinstance(v, str | list | tuple | dict)]
    if not parts:
        return FALSE
    return parts[0] if len(parts) == 1 else models.Filter(should=parts)


def _range(cond: Condition, path: str) -> Cond:
    op, bound = cond.op, cond.value
    if isinstance(bound, str):
        raise UnsupportedFilterError(
            f"engine {ENGINE!r}: Qdrant compares only numbers with {op}; where[{cond.field!r}][{op!r}] has the "
            f"string bound {bound!r}. Filter strings with $eq / $in, or use another backend (EmbeddingIndex, "
            "PgVectorIndex).",
            engine=ENGINE,
            operator=f"{op}:string",
        )
    if isinstance(bound, float) and math.isinf(bound):
        everything = (bound > 0) == (op in ("$lt", "$lte"))  # every stored number is finite
        return _is(path, "number") if everything else FALSE
    number = float(bound)
    limits = models.Range(**{op[1:]: number})
    return _all(_is(path, "number"), models.FieldCondition(key=_key("v", path), range=limits))


def _leaf(cond: Condition) -> Cond:
    path, op = cond.field, cond.op
    if op == "$exists":
        present = models.FieldCondition(key=_key("t", path), match=models.MatchAny(any=list(TYPES)))
        return present if cond.value else models.Filter(must_not=[present])
    if op == "$eq":
        return _equal(path, cond.value)
    if op == "$ne":
        return models.Filter(must_not=[_equal(path, cond.value)])
    if op == "$in":
        return _member(path, cond.value)
    if op == "$nin":
        return models.Filter(must_not=[_member(path, cond.value)])
    return _range(cond, path)


def _compile(tree: Filter) -> Cond:
    if isinstance(tree, Condition):
        return _leaf(tree)
    if isinstance(tree, Not):
        return models.Filter(must_not=[_compile(tree.filter)])
    parts = [_compile(part) for part in tree.filters]
    return models.Filter(must=parts) if isinstance(tree, And) else models.Filter(should=parts)


def to_qdrant_filter(tree: Filter | None, excluded: list[str] | None = None) -> models.Filter | None:
    """The Qdrant filter for a parsed ``where`` and the point ids to leave out, or ``None`` when nothing filters.

    Raises:
        UnsupportedFilterError: a range over strings.
    """
    must: list[Cond] = [] if tree is None else [_compile(tree)]
    must_not: list[Any] = [models.HasIdCondition(has_id=list(excluded))] if excluded else []
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)
