"""#16: metadata filters compiled to numpy masks over cached columns give exactly the reference semantics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune_embed.index import EmbeddingIndex
from finetune_embed.index import _masks as masks_module
from finetune_embed.index._filters import And, Condition, Filter, Not, Or, evaluate, parse_filter
from finetune_embed.index._masks import ColumnCache, filter_mask

BIG = 2**53
STRINGS = ["", "a", "b", "ab", "B", "é", "z"]
NUMBERS = [-1, 0, 1, 2, 0.0, -0.0, 0.5, 1.0, BIG, BIG + 1, -BIG - 1, float(BIG), 2**60]
scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(NUMBERS), st.sampled_from(STRINGS))
values = st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(st.sampled_from(["x", "y"]), scalars,
                                                                           max_size=2))
metadata = st.dictionaries(
    st.sampled_from(["a", "b", "n"]),
    st.one_of(scalars, scalars, values, st.fixed_dictionaries({}, optional={"x": values, "y": values})),
    max_size=3,
)
fields = st.sampled_from(["a", "b", "n", "n.x", "n.y", "a.x", "zz"])
bounds = st.one_of(st.sampled_from(NUMBERS), st.sampled_from([*STRINGS, "Z", "aa"]))


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    field = draw(fields)
    op = draw(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]))
    if op == "$exists":
        return Condition(field, op, draw(st.booleans()))
    if op in ("$in", "$nin"):
        return Condition(field, op, draw(st.lists(values, max_size=4)))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return Condition(field, op, draw(bounds))
    return Condition(field, op, draw(values))


trees: st.SearchStrategy[Filter] = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda parts: And(tuple(parts))),
        st.lists(inner, min_size=1, max_size=3).map(lambda parts: Or(tuple(parts))),
        inner.map(Not),
    ),
    max_leaves=6,
)


def as_mapping(tree: Filter) -> dict[str, Any]:
    """The mapping a user would write for ``tree``."""
    if isinstance(tree, Condition):
        return {tree.field: {tree.op: tree.value}}
    if isinstance(tree, And):
        return {"$and": [as_mapping(p) for p in tree.filters]}
    if isinstance(tree, Or):
        return {"$or": [as_mapping(p) for p in tree.filters]}
    return {"$not": as_mapping(tree.filter)}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(metadata, metadata, st.none()), min_size=5, max_size=25), trees)
def test_masks_agree_with_the_reference_predicate(items: list[dict[str, Any] | None], tree: Filter) -> None:
    expected = [m is not None and evaluate(tree, m) for m in items]
    got = filter_mask(tree, items, ColumnCache())
    deleted = [m is None for m in items]
    # a deleted slot (None) is excluded by the index whatever its mask says; every other slot must agree
    assert [g for g, d in zip(got.tolist(), deleted, strict=True) if not d] == [
        e for e, d in zip(expected, deleted, strict=True) if not d
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(metadata, min_size=1, max_size=30), st.lists(metadata, max_size=10), trees, st.data())
def test_search_with_a_mapping_equals_search_with_the_predicate(
    first: list[dict[str, Any]], later: list[dict[str, Any]], tree: Filter, data: st.DataObject
) -> None:
    """Through the index: cached columns stay right across appends (extended), upserts and deletes."""
    rng = np.random.default_rng(len(first) * 31 + len(later))
    index = EmbeddingIndex(4)
    index.add([f"i{j}" for j in range(len(first))], rng.standard_normal((len(first), 4)) + 0.1, first)
    where = as_mapping(tree)
    assert parse_filter(where) == tree
    query = rng.standard_normal(4)

    def check() -> None:
        got = index.search(query, k=50, where=where)
        want = index.search(query, k=50, where=lambda m: evaluate(tree, m))
        assert got.ids == want.ids
        assert got.scores.tobytes() == want.scores.tobytes()

    check()
    if later:
        index.add([f"j{j}" for j in range(len(later))], rng.standard_normal((len(later), 4)) + 0.1, later)
        check()
    changed = data.draw(st.lists(st.sampled_from(index.ids), max_size=3, unique=True))
    if changed:
        index.upsert(changed, rng.standard_normal((len(changed), 4)) + 0.1,
                     [data.draw(metadata) for _ in changed])
        check()
    gone = data.draw(st.lists(st.sampled_from(index.ids), max_size=3, unique=True))
    index.delete(gone)
    check()


def test_columns_are_cached_per_field_and_rebuilt_only_after_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    real_build = masks_module.Column.build.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, column_values: list[Any]) -> Any:
        built.append(len(column_values))
        return real_build(cls, column_values)

    monkeypatch.setattr(masks_module.Column, "build", classmethod(counting))
    index = EmbeddingIndex(2)
    index.add([str(i) for i in range(1000)], np.ones((1000, 2)), [{"n": i, "s": f"v{i % 7}"} for i in range(1000)])
    index.search([1, 0], where={"n": {"$gte": 500}, "s": "v3"})
    assert sorted(built) == [1000, 1000]  # one column per field
    index.search([1, 0], where={"$or": [{"n": {"$lt": 5}}, {"s": {"$in": ["v1", "v2"]}}]})
    assert len(built) == 2  # both cached
    index.add(["new"], [[1, 1]], [{"n": 5000, "s": "a"}])
    hits = index.search([1, 1], k=3, where={"s": {"$lt": "b"}, "n": {"$gt": 4000}})
    assert hits.ids == ["new"]
    assert built[2:] == [1, 1]  # appends read only the new rows
    index.upsert(["7"], [[1, 0]], [{"n": 7, "s": "changed"}])
    assert index.search([1, 0], k=3, where={"s": "changed"}).ids == ["7"]
    assert built[4:] == [1001]  # an upsert of an existing id rebuilds the fields used
    index.delete(["7"])
    assert index.search([1, 0], k=3, where={"s": "changed"}).ids == []


def test_many_items_are_filtered_without_a_python_call_per_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first search has built the columns, a filtered search evaluates no per-item predicate."""
    n = 200_000
    index = EmbeddingIndex(2)
    index.add([str(i) for i in range(n)], np.ones((n, 2)), [{"n": i % 100, "tag": f"t{i % 13}"} for i in range(n)])
    where = {"$and": [{"n": {"$gte": 10}}, {"$not": {"tag": {"$in": ["t1", "t2"]}}}]}
    first = index.search([1, 0], k=5, where=where)
    calls = [0]
    real = masks_module.value_matches

    def counting(*args: Any) -> bool:
        calls[0] += 1
        return real(*args)

    monkeypatch.setattr(masks_module, "value_matches", counting)
    monkeypatch.setattr(masks_module, "json_equal", counting)
    again = index.search([1, 0], k=5, where=where)
    assert calls[0] == 0
    assert again.ids == first.ids == ["10", "11", "12", "13", "16"]  # 14, 15: t1, t2


EDGE_ITEMS: list[dict[str, Any] | None] = [
    {"v": BIG}, {"v": BIG + 1}, {"v": float(BIG)}, {"v": -BIG - 1}, {"v": 2**60}, {"v": 10**400}, {"v": 0}, {"v": -0.0},
    {"v": 1}, {"v": 1.0}, {"v": True}, {"v": False}, {"v": None}, {"v": "a"}, {"v": "B"}, {"v": "é"},
    {"v": ""}, {"v": [1, "a"]}, {"v": [True]}, {"v": {"x": 1}}, {"v": {"x": 1.0}}, {}, {"v": {"w": 2}}, None,
]


@pytest.mark.parametrize(
    "where",
    [
        {"v": {"$gt": BIG}}, {"v": {"$gte": BIG + 1}}, {"v": {"$lt": BIG + 1}}, {"v": {"$lte": float(BIG)}},
        {"v": BIG + 1}, {"v": {"$in": [BIG + 1, "a", None]}}, {"v": {"$nin": [BIG, 1]}}, {"v": 2**60},
        {"v": {"$gt": -0.5, "$lt": 0.5}}, {"v": 0}, {"v": 1}, {"v": True}, {"v": {"$in": [True, 0]}},
        {"v": {"$gt": "B"}}, {"v": {"$gte": ""}}, {"v": {"$lt": "a"}}, {"v": {"$lte": "zz"}}, {"v": {"$gt": "é"}},
        {"v": [1, "a"]}, {"v": [1.0, "a"]}, {"v": {"x": 1.0}}, {"v": {"$in": [[True], {"x": 1}]}},
        {"v": {"$ne": [1, "a"]}}, {"v": {"$exists": False}}, {"v": {"$exists": True}}, {"v.w": 2},
        {"v.x": {"$gte": 1}}, {"v": None}, {"v": {"$ne": None}}, {"$not": {"v": {"$gt": 0}}},
        {"$or": [{"v": "é"}, {"v.x": 1}], "v": {"$exists": True}},
    ],
)
def test_edge_values_match_the_reference(where: dict[str, Any]) -> None:
    """Integers beyond 2**53 (float64 rounds them), -0.0, booleans against numbers, string order (code points),
    lists and objects, null, missing fields and paths through non-objects."""
    tree = parse_filter(where)
    assert tree is not None
    cache = ColumnCache()
    for items in (EDGE_ITEMS, EDGE_ITEMS[::-1]):
        got = filter_mask(tree, items, cache if items is EDGE_ITEMS else ColumnCache()).tolist()
        assert [g for g, m in zip(got, items, strict=True) if m is not None] == [
            evaluate(tree, m) for m in items if m is not None
        ]
