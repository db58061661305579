"""Test data shared by the conformance suite: vectors, metadata with every JSON type, and filters.

The in-process :class:`~finetune_embed.index.EmbeddingIndex` (whose filters are the reference evaluator)
gives the expected answer for every backend.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import numpy.typing as npt

# values a metadata field can hold: every JSON type, numbers that are equal across int/float, look-alikes
VALUES: list[Any] = [
    None, True, False, 0, 1, 1.0, -2, 2.5, 3, 10**15, -0.0,
    "a", "b", "B", "ab", "é", "", "1", "true",
    [1, 2], [1.0, 2], ["a"], [], {"x": 1}, {},
]  # fmt: skip
BOUNDS: list[Any] = [0, 1, 2.5, -1, 3, 10**15]
FIELDS = ["a", "b", "c", "n.x", "n.y", "tags"]


def vectors(n: int, dim: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """``n`` random Gaussian vectors (no two score alike, so results have no ties)."""
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def metadata(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Metadata per item: a category and a year (for the common filters), plus fields of mixed JSON types."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        meta: dict[str, Any] = {"cat": i % 7, "year": 2000 + i % 25, "lang": ["en", "fr", "de"][i % 3]}
        for key in ("a", "b", "c"):
            r = rng.random()
            if r < 0.6:
                meta[key] = rng.choice(VALUES)
            elif r < 0.75:
                meta[key] = float(rng.randint(-3, 3)) + rng.choice([0.0, 0.5])
        if rng.random() < 0.7:
            meta["n"] = {"x": rng.choice(VALUES), "y": rng.randint(0, 5)}
        if rng.random() < 0.5:
            meta["tags"] = rng.sample(["red", "green", "blue"], rng.randint(0, 2))
        if rng.random() < 0.1:
            meta["price"] = rng.choice([9.99, 10, 12.5])
        out.append(meta)
    return out


# Every operator, every logical combination, and the type rules (a filter -> the operators it needs).
FILTERS: list[dict[str, Any]] = [
    {"cat": 3},
    {"cat": {"$eq": 3}},
    {"cat": 3.0},  # 3 == 3.0
    {"cat": {"$ne": 3}},
    {"year": {"$gt": 2010}},
    {"year": {"$gte": 2010, "$lt": 2015}},
    {"year": {"$lte": 2003}},
    {"cat": 3, "year": {"$gte": 2010}},
    {"lang": "en"},
    {"lang": {"$in": ["en", "de"]}},
    {"lang": {"$nin": ["en", "de"]}},
    {"cat": {"$in": [1, 2.0]}},
    {"a": None},
    {"a": {"$ne": None}},
    {"a": True},
    {"a": 1},  # 1 and 1.0, never true
    {"a": {"$in": [True, "a", 0]}},
    {"a": {"$nin": [None, 1]}},  # a missing field matches
    {"a": {"$gt": 0.5}},  # numbers only: never a string, a bool or a list
    {"a": {"$lte": 0}},
    {"a": [1, 2]},  # a list equals a list (1 == 1.0 inside)
    {"a": {"x": 1}},  # an object equals an object
    {"a": {}},
    {"a": {"$exists": True}},
    {"a": {"$exists": False}},
    {"n.x": "a"},
    {"n.y": {"$gte": 3}},
    {"n.x": {"$exists": True}},
    {"n": {"$exists": False}},
    {"tags": ["red"]},  # a list is never matched by one of its items
    {"tags": "red"},
    {"price": 10},
    {"price": {"$lt": 10}},
    {"$or": [{"cat": 1}, {"year": {"$gte": 2020}}]},
    {"$and": [{"cat": {"$in": [1, 2]}}, {"lang": "fr"}]},
    {"$not": {"cat": 3}},
    {"$not": {"a": {"$gt": 0}}},  # negation: includes missing and non-numbers
    {"a": {"$not": {"$gte": 0, "$lt": 2}}},
    {"$or": [{"a": None}, {"a": {"$exists": False}}]},
    {"$not": {"$or": [{"lang": "en"}, {"$and": [{"cat": 2}, {"year": {"$lt": 2010}}]}]}},
    {"b": "b", "$or": [{"c": {"$exists": True}}, {"n.y": 0}]},
    {"cat": 99},  # matches nothing
    {"b": {"$gt": "a"}},  # strings compare with strings
    {"b": {"$lte": "ab"}},
]


def operators(where: Any) -> set[str]:
    """The operators a filter uses, with ``:string`` for a range bound that is a string and ``:container`` for
    equality with a list or object (the unsupported-operator names adapters report)."""
    found: set[str] = set()
    if not isinstance(where, dict):
        return found
    for key, spec in where.items():
        if key in ("$and", "$or"):
            found.add(key)
            for item in spec:
                found |= operators(item)
        elif key == "$not":
            found.add(key)
            found |= operators(spec)
        elif isinstance(spec, dict) and any(k.startswith("$") for k in spec):
            for op, value in spec.items():
                if op == "$not":
                    found.add("$not")
                    found |= operators({key: value})
                else:
                    ranged = op in ("$gt", "$gte", "$lt", "$lte") and isinstance(value, str)
                    found.add(op + (":string" if ranged else ""))
        else:
            found.add("$eq")
    return found


def random_filters(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Random nested filters over the mixed-type fields (numeric ranges only, which every engine runs)."""
    rng = random.Random(seed)

    def leaf() -> dict[str, Any]:
        field = rng.choice(FIELDS)
        op = rng.choice(["plain", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"])
        if op == "plain":
            return {field: rng.choice(VALUES)}
        if op in ("$in", "$nin"):
            return {field: {op: [rng.choice(VALUES) for _ in range(rng.randint(1, 3))]}}
        if op == "$exists":
            return {field: {op: rng.random() < 0.5}}
        if op in ("$gt", "$gte", "$lt", "$lte"):
            return {field: {op: rng.choice(BOUNDS)}}
        return {field: {op: rng.choice(VALUES)}}

    def node(depth: int) -> dict[str, Any]:
        r = rng.random()
        if depth >= 2 or r < 0.4:
            return leaf()
        if r < 0.6:
            return {"$not": node(depth + 1)}
        return {rng.choice(["$and", "$or"]): [node(depth + 1) for _ in range(rng.randint(2, 3))]}

    return [node(0) for _ in range(count)]
