"""The where → SQL translation gives exactly the in-process evaluator's answers (random filters, edge values)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("psycopg", reason="the pgvector extra (psycopg) is not installed")

import psycopg
from psycopg import sql

from finetune_embed import ConfigError
from finetune_embed.index._filters import compile_where
from finetune_embed.index.pgvector import where_to_sql
from finetune_embed.index.pgvector._sql import metadata_json

pytestmark = pytest.mark.pgvector

VALUES: list[Any] = [
    None, True, False, 0, 1, 1.0, -2, 2.5, 3, 1e-7, 10**20, float(2**60), -0.0,
    "a", "b", "B", "ab", "a b", "é", "", "\U0001f600", "10",
    [1, 2], [1.0, 2], ["a"], [], {"x": 1}, {},
]  # fmt: skip
ODD: list[Any] = [float("nan"), float("inf"), -float("inf"), "a\x00", (1, 2), {1: 2}, {"x"}, b"a"]
BOUNDS: list[Any] = [0, 1, 2.5, -1, 1e-8, 10**20, "a", "b", "", "ab", "a\x00b", "é", float("inf"), -float("inf")]
FIELDS = ["a", "b", "c", "a.x", "b.y", "c.x.z", "it's", 'q"uote']


def _meta(rng: random.Random) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key in ["a", "b", "c", "it's", 'q"uote']:
        r = rng.random()
        if r < 0.55:
            meta[key] = rng.choice(VALUES)
        elif r < 0.8:
            meta[key] = {"x": rng.choice(VALUES), "y": rng.choice(VALUES), "z": {"z": 1}}
    return meta


def _where(rng: random.Random) -> dict[str, Any]:
    where: dict[str, Any] = {}
    for _ in range(rng.randint(1, 3)):
        field = rng.choice(FIELDS)
        op = rng.choice(["plain", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"])
        if op == "plain":
            where[field] = rng.choice(VALUES)
            continue
        value: Any
        if op in ("$in", "$nin"):
            value = [rng.choice(VALUES + ODD[:5]) for _ in range(rng.randint(0, 3))]
        elif op in ("$gt", "$gte", "$lt", "$lte"):
            value = rng.choice(BOUNDS)
        else:
            value = rng.choice(VALUES + ODD)
        spec = where.get(field)
        if isinstance(spec, dict) and spec and all(str(k).startswith("$") for k in spec):
            spec[op] = value
        else:
            where[field] = {op: value}
    return where


@pytest.fixture(scope="module")
def metadata_table(conninfo: str) -> Iterator[tuple[psycopg.Connection[Any], list[dict[str, Any]]]]:
    rng = random.Random(7)
    metas = [_meta(rng) for _ in range(300)]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE m (i int, metadata jsonb)")
        with conn.cursor().copy("COPY m FROM STDIN") as copy:
            for i, meta in enumerate(metas):
                copy.write_row((i, metadata_json(meta, f"row {i}")))
        yield conn, metas


def _sql_ids(conn: psycopg.Connection[Any], where: Any) -> list[int]:
    condition = where_to_sql(where)
    query = sql.SQL("SELECT i FROM m WHERE {} ORDER BY i").format(
        condition if condition is not None else sql.SQL("TRUE")
    )
    return [row[0] for row in conn.execute(query)]


def _python_ids(metas: list[dict[str, Any]], where: Any) -> list[int]:
    keep = compile_where(where)
    return [i for i, meta in enumerate(metas) if keep is None or keep(meta)]


def test_random_filters_match_the_python_evaluator(metadata_table: Any) -> None:
    conn, metas = metadata_table
    rng = random.Random(11)
    checked = 0
    nonempty = 0
    for _ in range(600):
        where = _where(rng)
        expected = _python_ids(metas, where)
        assert _sql_ids(conn, where) == expected, where
        checked += 1
        nonempty += bool(expected) and len(expected) < len(metas)
    assert checked == 600
    assert nonempty > 150  # the filters really discriminate


@pytest.mark.parametrize(
    "where",
    [
        {"a": 1},  # 1 == 1.0 but not True
        {"a": True},
        {"a": None},  # present and null; a missing field does not match
        {"a": {"$ne": None}},  # missing matches $ne
        {"a": [1, 2]},  # list equality, item by item, 1 == 1.0 inside
        {"a": {}},
        {"a": {"$in": []}},
        {"a": {"$nin": []}},
        {"a": {"$in": [1, "a", None]}},
        {"a": {"$nin": [1, "a", None]}},
        {"a": {"$gt": "a"}},  # strings only compare with strings, code point order ("B" < "a")
        {"a": {"$lt": "b", "$gte": "B"}},
        {"a": {"$gte": 1}},  # numbers only, booleans are not numbers
        {"a": {"$lt": math.inf}},  # every number
        {"a": {"$gt": math.inf}},
        {"a": {"$gt": -math.inf}},
        {"a": {"$eq": math.nan}},  # equals nothing
        {"a": {"$ne": math.nan}},  # so $ne matches everything
        {"a": {"$in": [math.nan, 1]}},
        {"a": {"$gt": "a\x00b"}},  # NUL in a bound: compared as Python does
        {"a": {"$lte": "a\x00"}},
        {"a.x": 1},  # nested
        {"a.x": {"$ne": 1}},
        {"c.x.z": {"z": 1}},
        {"a": {"x": 1}},  # object equality
        {"it's": "a"},  # quotes in keys are literals, not SQL
        {'q"uote': {"$in": ["a", "b"]}},
    ],
)
def test_edge_filters_match_the_python_evaluator(metadata_table: Any, where: dict[str, Any]) -> None:
    conn, metas = metadata_table
    assert _sql_ids(conn, where) == _python_ids(metas, where)


def test_values_are_literals_not_sql(metadata_table: Any) -> None:
    conn, metas = metadata_table
    attack = {"a": "x'); DROP TABLE m; --", "b'); DROP TABLE m; --": {"$in": ["'"]}}
    assert _sql_ids(conn, attack) == []
    assert len(_sql_ids(conn, None)) == len(metas)  # the table is still there


def test_empty_and_none_filters_give_no_condition() -> None:
    assert where_to_sql(None) is None
    assert where_to_sql({}) is None


def test_callable_filter_is_refused_with_advice() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        where_to_sql(lambda meta: True)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"a": {"$regex": "x"}}, "unknown operator"),
        ({"a": {"$in": "abc"}}, "needs a list"),
        ({"$nor": [{"a": 1}]}, "not a logical operator"),
        ({"a": {"$gt": [1]}}, "compares numbers or strings"),
        ({"a": {"$gt": "\ud800"}}, "not valid Unicode"),
    ],
)
def test_malformed_filters_raise_config_error(where: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        where_to_sql(where)
