"""Metadata filters: the mapping language shared with the PostgreSQL backend, and callables."""

from __future__ import annotations

from typing import Any

import pytest

from finetune_embed import ConfigError
from finetune_embed.index import Condition, compile_where, parse_where

ITEMS: list[dict[str, Any]] = [
    {"brand": "acme", "stars": 5, "price": 9.5, "lang": "en", "user": {"country": "NL"}, "ok": True},
    {"brand": "bolt", "stars": 2, "price": 20, "lang": "fr", "user": {"country": "FR"}, "ok": False},
    {"brand": "acme", "stars": 4, "lang": None},
    {"stars": "5", "price": 1},
    {},
]


def _ids(where: Any) -> list[int]:
    keep = compile_where(where)
    assert keep is not None
    return [i for i, m in enumerate(ITEMS) if keep(m)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"brand": "acme"}, [0, 2]),
        ({"brand": {"$eq": "acme"}}, [0, 2]),
        ({"brand": {"$ne": "acme"}}, [1, 3, 4]),  # a missing field matches $ne
        ({"stars": {"$gte": 4}}, [0, 2]),  # "5" is text: no match for a numeric range
        ({"stars": {"$gt": 2, "$lte": 4}}, [2]),
        ({"price": {"$lt": 10}}, [0, 3]),
        ({"stars": 5}, [0]),
        ({"stars": 5.0}, [0]),  # 5 == 5.0 as JSON numbers
        ({"ok": 1}, []),  # true is not 1
        ({"ok": True}, [0]),
        ({"lang": {"$in": ["en", "fr"]}}, [0, 1]),
        ({"lang": {"$nin": ["en"]}}, [1, 2, 3, 4]),  # missing fields match $nin
        ({"lang": None}, [2]),  # present and null
        ({"user.country": "NL"}, [0]),
        ({"user.country": {"$in": ["NL", "FR"]}, "brand": "bolt"}, [1]),
        ({"brand": {"$gte": "b"}}, [1]),  # strings compare with strings
        ({"user": {"country": "FR"}}, [1]),  # a plain dict value is equality on the whole object
    ],
)
def test_mapping_semantics(where: dict[str, Any], expected: list[int]) -> None:
    assert _ids(where) == expected


def test_callable_and_empty() -> None:
    assert _ids(lambda m: m.get("stars") == 2) == [1]
    assert compile_where(None) is None
    assert compile_where({}) is None


def test_parse_gives_conditions_with_paths() -> None:
    conds = parse_where({"a.b": {"$gte": 1, "$lt": 3}, "c": "x"})
    assert conds == [Condition("a.b", "$gte", 1), Condition("a.b", "$lt", 3), Condition("c", "$eq", "x")]
    assert conds[0].path == ("a", "b")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            {"a": {"$regex": "x"}},
            r"unknown operator '\$regex'; allowed: \$eq, \$ne, \$gt, \$gte, \$lt, \$lte, \$in, \$nin",
        ),
        ({"a": {"$in": "abc"}}, "needs a list"),
        ({"a": {"$gt": [1]}}, "compares numbers or strings"),
        ({"a": {"$gt": float("nan")}}, "NaN"),
        ({"$nor": [{"a": 1}]}, "not a logical operator"),
        ({"$or": []}, "non-empty list"),
        ({"a": {"$exists": 1}}, "True or False"),
        ({"": 1}, "field names"),
        ({"a..b": 1}, "field names"),
    ],
)
def test_errors(where: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_where(where)
    with pytest.raises(ValueError, match=message):  # ConfigError is a ValueError
        compile_where(where)


def test_parse_where_is_flat() -> None:
    """parse_where gives flat conditions only; the logical operators need parse_filter."""
    with pytest.raises(ConfigError, match="parse_filter"):
        parse_where({"$or": [{"a": 1}, {"b": 2}]})


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping or a callable"):
        parse_where(["a"])  # type: ignore[arg-type]
