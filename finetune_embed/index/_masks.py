"""Metadata filters as numpy masks: a parsed ``where`` evaluated over columns of metadata, not item by item.

For each field a filter names (a dotted path), one pass over the items' metadata builds a :class:`Column`:
what kind of JSON value each item holds there (missing, null, bool, number, string, list or object), the
numbers as float64, the strings as codes numbered in sorted order (so string ranges are integer ranges) and
the booleans. A condition is then a few vectorised comparisons, and ``$and`` / ``$or`` / ``$not`` combine the
masks. The semantics are exactly :func:`~finetune_embed.index._filters.evaluate`'s; the rare cases floats
cannot decide (integers beyond 2**53, which float64 rounds) and equality with lists or objects fall back to
the reference predicate, for the items concerned only.

Columns are cached per field by :class:`ColumnCache`. Appending items extends a column by the new rows only;
any write that changes existing rows (upsert of an existing id, compaction) clears the cache.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._filters import MISSING, And, Condition, Filter, Or, json_equal, lookup, value_matches

__all__ = ["Column", "ColumnCache", "filter_mask"]

Mask = npt.NDArray[np.bool_]

_MISSING_KIND, _NULL, _BOOL, _NUMBER, _STRING, _CONTAINER = range(6)
_EXACT_INT = 2**53  # integers up to this magnitude are exact in float64


def _mask(x: Any) -> Mask:
    """``x`` (a comparison of arrays) typed as a bool mask."""
    return np.asarray(x, dtype=bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True)
class Column:
    """One field's values for slots ``0 .. len(values) - 1``."""

    values: list[Any]  # the raw values (MISSING where absent): the fallback's input
    kind: npt.NDArray[np.int8]
    number: npt.NDArray[np.float64]  # NaN where not a number
    truth: Mask  # the value where it is a bool
    code: npt.NDArray[np.int64]  # -1 where not a string; otherwise the rank of the string in ``strings``
    strings: list[str]  # the distinct strings, sorted
    exact: bool  # every number is exact in float64

    @classmethod
    def build(cls, values: list[Any]) -> Column:
        n = len(values)
        kind = np.zeros(n, dtype=np.int8)
        number = np.full(n, np.nan)
        truth = np.zeros(n, dtype=bool)
        texts: dict[str, list[int]] = {}
        exact = True
        for i, v in enumerate(values):
            if v is MISSING:
                continue
            if v is None:
                kind[i] = _NULL
            elif isinstance(v, bool):
                kind[i] = _BOOL
                truth[i] = v
            elif isinstance(v, int | float):
                kind[i] = _NUMBER
                if isinstance(v, int) and abs(v) > _EXACT_INT:
                    exact = False  # float64 would round it (or overflow): numeric conditions use the fallback
                else:
                    number[i] = v
            elif isinstance(v, str):
                kind[i] = _STRING
                texts.setdefault(v, []).append(i)
            else:
                kind[i] = _CONTAINER
        strings = sorted(texts)
        code = np.full(n, -1, dtype=np.int64)
        for rank, s in enumerate(strings):
            code[texts[s]] = rank
        return cls(values, kind, number, truth, code, strings, exact)

    def extended(self, more: list[Any]) -> Column:
        """This column with ``more`` rows appended: only the new rows are read; string codes are renumbered
        into the merged sorted list by a vectorised lookup."""
        new = Column.build(more)
        strings = sorted(set(self.strings).union(new.strings))
        table = np.array(strings, dtype=object)

        def renumber(col: Column) -> npt.NDArray[np.int64]:
            if not col.strings:
                return col.code
            ranks = np.searchsorted(table, np.array(col.strings, dtype=object)).astype(np.int64)
            return np.where(col.code >= 0, ranks[np.maximum(col.code, 0)], -1)

        return Column(
            self.values + more,
            np.concatenate([self.kind, new.kind]),
            np.concatenate([self.number, new.number]),
            np.concatenate([self.truth, new.truth]),
            np.concatenate([renumber(self), renumber(new)]),
            strings,
            self.exact and new.exact,
        )


class ColumnCache:
    """Columns of the metadata, built on first use per field path and kept until a write invalidates them.

    Readers may build columns concurrently (each builds the same column from the same state and the last
    assignment wins); writers call :meth:`clear` or rely on :meth:`get` extending a column after appends.
    """

    def __init__(self) -> None:
        self._columns: dict[tuple[str, ...], Column] = {}

    def clear(self) -> None:
        """Forget every column (existing rows changed)."""
        self._columns = {}

    def get(self, path: tuple[str, ...], metadata: Sequence[Mapping[str, Any] | None]) -> Column:
        """The column of ``path`` over ``metadata`` (one mapping per slot, ``None`` for a deleted slot)."""
        columns = self._columns
        col = columns.get(path)
        n = len(metadata)
        if col is not None and len(col.values) == n:
            return col
        start = 0 if col is None or len(col.values) > n else len(col.values)
        more = [MISSING if m is None else lookup(m, path) for m in metadata[start:]]
        col = Column.build(more) if start == 0 else col.extended(more)  # type: ignore[union-attr]
        columns[path] = col
        return col


def filter_mask(
    tree: Filter, metadata: Sequence[Mapping[str, Any] | None], cache: ColumnCache
) -> Mask:
    """Which slots of ``metadata`` pass ``tree`` (deleted slots, ``None``, have every field missing)."""
    n = len(metadata)
    if isinstance(tree, Condition):
        return _condition(tree, cache.get(tree.path, metadata))
    if isinstance(tree, And):
        out = np.ones(n, dtype=bool)
        for part in tree.filters:
            out &= filter_mask(part, metadata, cache)
        return out
    if isinstance(tree, Or):
        out = np.zeros(n, dtype=bool)
        for part in tree.filters:
            out |= filter_mask(part, metadata, cache)
        return out
    return ~filter_mask(tree.filter, metadata, cache)


def _fallback(cond: Condition, col: Column, where: Mask | None = None) -> Mask:
    """The reference predicate over the column's raw values (only where ``where`` is set, when given)."""
    out = np.zeros(len(col.values), dtype=bool)
    idx = range(len(col.values)) if where is None else np.flatnonzero(where).tolist()
    values = col.values
    for i in idx:
        out[i] = value_matches(cond, values[i])
    return out


def _equal(col: Column, value: Any) -> Mask:
    """Where the field is present and equals ``value`` as JSON values do."""
    if value is None:
        return _mask(col.kind == _NULL)
    if isinstance(value, bool):
        return _mask((col.kind == _BOOL) & (col.truth == value))
    if _is_number(value):
        if not col.exact or (isinstance(value, int) and abs(value) > _EXACT_INT):
            candidates = col.kind == _NUMBER
            out = np.zeros(len(col.values), dtype=bool)
            for i in np.flatnonzero(candidates).tolist():
                out[i] = json_equal(col.values[i], value)
            return out
        return _mask((col.kind == _NUMBER) & (col.number == value))
    if isinstance(value, str):
        at = bisect.bisect_left(col.strings, value)
        if at == len(col.strings) or col.strings[at] != value:
            return np.zeros(len(col.values), dtype=bool)
        return _mask(col.code == at)
    # a list or an object: only containers can equal it, compared item by item
    out = np.zeros(len(col.values), dtype=bool)
    for i in np.flatnonzero(col.kind == _CONTAINER).tolist():
        out[i] = json_equal(col.values[i], value)
    return out


def _member(col: Column, values: list[Any]) -> Mask:
    """Where the field equals one of ``values``: strings by their codes and exact numbers by value, one
    vectorised lookup each; anything else value by value."""
    texts: list[str] = []
    numbers: list[float] = []
    rest: list[Any] = []
    for v in values:
        if isinstance(v, str):
            texts.append(v)
        elif _is_number(v) and col.exact and not (isinstance(v, int) and abs(v) > _EXACT_INT):
            numbers.append(v)
        else:
            rest.append(v)
    hit = np.zeros(len(col.values), dtype=bool)
    if texts:
        ranks = [bisect.bisect_left(col.strings, t) for t in texts]
        codes = [r for r, t in zip(ranks, texts, strict=True) if r < len(col.strings) and col.strings[r] == t]
        hit |= (col.code >= 0) & np.isin(col.code, np.array(codes, dtype=np.int64))
    if numbers:
        hit |= (col.kind == _NUMBER) & np.isin(col.number, np.array(numbers, dtype=np.float64))
    for v in rest:
        hit |= _equal(col, v)
    return hit


def _range(op: str, col: Column, bound: Any) -> Mask:
    if isinstance(bound, str):
        strings = col.strings
        if op == "$gt":
            return col.code >= bisect.bisect_right(strings, bound)
        if op == "$gte":
            return col.code >= bisect.bisect_left(strings, bound)
        is_string = col.kind == _STRING
        if op == "$lt":
            return _mask(is_string & (col.code < bisect.bisect_left(strings, bound)))
        return _mask(is_string & (col.code < bisect.bisect_right(strings, bound)))
    if not col.exact or (isinstance(bound, int) and abs(bound) > _EXACT_INT):
        return _fallback(Condition("", op, bound), col, col.kind == _NUMBER)
    compare: dict[str, Callable[[Any, Any], Mask]] = {
        "$gt": np.greater, "$gte": np.greater_equal, "$lt": np.less, "$lte": np.less_equal
    }
    with np.errstate(invalid="ignore"):
        return compare[op](col.number, bound)  # NaN (not a number) compares false


def _condition(cond: Condition, col: Column) -> Mask:
    op = cond.op
    if op == "$exists":
        present = col.kind != _MISSING_KIND
        return _mask(present if cond.value else ~present)
    if op == "$eq":
        return _equal(col, cond.value)
    if op == "$ne":
        return ~_equal(col, cond.value)
    if op in ("$in", "$nin"):
        hit = _member(col, cond.value)
        return hit if op == "$in" else ~hit
    return _range(op, col, cond.value)
