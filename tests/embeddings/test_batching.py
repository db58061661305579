"""finetune_embed.batching: batched() and the token-aware packer, with property tests."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finetune_embed.batching import ItemTooLargeError, batched, next_batch_end, pack_by_tokens, pack_stream


def test_batched_splits_lazily_and_keeps_order() -> None:
    assert list(batched("abcdefg", 3)) == [("a", "b", "c"), ("d", "e", "f"), ("g",)]
    assert list(batched([], 5)) == []
    with pytest.raises(ValueError, match="at least 1"):
        list(batched([1], 0))


def test_pack_respects_both_limits() -> None:
    assert pack_by_tokens([5, 5, 5, 9, 1], max_inputs=2, max_tokens=10) == [range(2), range(2, 3), range(3, 5)]
    assert pack_by_tokens([1] * 5, max_inputs=2, max_tokens=100) == [range(2), range(2, 4), range(4, 5)]
    assert pack_by_tokens([0, 0, 3], max_inputs=10, max_tokens=3) == [range(3)]


def test_item_over_the_budget_is_named() -> None:
    with pytest.raises(ItemTooLargeError) as info:
        pack_by_tokens([1, 2, 50, 1], max_inputs=10, max_tokens=10)
    assert info.value.index == 2
    assert info.value.tokens == 50


def test_bad_arguments() -> None:
    from finetune_embed import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="max_inputs") as info:
        pack_by_tokens([1], max_inputs=0, max_tokens=1)
    assert info.value.argument == "max_inputs"
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidArgumentError, match="negative"):
        pack_by_tokens([1, -1], max_inputs=5, max_tokens=5)
    with pytest.raises(InvalidArgumentError, match="outside"):
        next_batch_end([1], 3, max_inputs=1, max_tokens=1)


def _optimum(counts: list[int], max_inputs: int, max_tokens: int) -> int:
    """Fewest consecutive batches, by dynamic programming (the reference for greedy)."""

    @functools.cache
    def best(i: int) -> int:
        if i == len(counts):
            return 0
        out = 10**9
        total = 0
        for j in range(i, min(len(counts), i + max_inputs)):
            total += counts[j]
            if total > max_tokens:
                break
            out = min(out, 1 + best(j + 1))
        return out

    return best(0)


@settings(max_examples=300, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=8191), max_size=60),
    max_inputs=st.integers(min_value=1, max_value=8),
    max_tokens=st.integers(min_value=8191, max_value=40_000),
)
def test_packing_property(counts: list[int], max_inputs: int, max_tokens: int) -> None:
    batches = pack_by_tokens(counts, max_inputs=max_inputs, max_tokens=max_tokens)
    # every item exactly once, in order
    assert [i for r in batches for i in r] == list(range(len(counts)))
    for r in batches:
        assert 1 <= len(r) <= max_inputs
        assert sum(counts[i] for i in r) <= max_tokens
    assert len(batches) == _optimum(counts, max_inputs, max_tokens)


@settings(max_examples=50, deadline=None)
@given(counts=st.lists(st.integers(min_value=1, max_value=8191), min_size=1, max_size=5000))
def test_packing_at_the_api_limits(counts: list[int]) -> None:
    batches = pack_by_tokens(counts, max_inputs=2048, max_tokens=300_000)
    assert sum(len(r) for r in batches) == len(counts)
    assert all(len(r) <= 2048 and sum(counts[i] for i in r) <= 300_000 for r in batches)


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=100), max_size=80),
    max_inputs=st.integers(min_value=1, max_value=10),
    max_tokens=st.integers(min_value=100, max_value=400),
)
def test_pack_stream_matches_pack_by_tokens(counts: list[int], max_inputs: int, max_tokens: int) -> None:
    streamed = list(pack_stream(enumerate(counts), max_inputs=max_inputs, max_tokens=max_tokens))
    whole = pack_by_tokens(counts, max_inputs=max_inputs, max_tokens=max_tokens)
    assert streamed == [list(r) for r in whole]


def test_pack_stream_is_lazy_and_checks_items() -> None:
    seen: list[int] = []

    def items():  # type: ignore[no-untyped-def]
        for i in range(10**9):
            seen.append(i)
            yield i, 1

    first = next(pack_stream(items(), max_inputs=3, max_tokens=100))
    assert first == [0, 1, 2]
    assert len(seen) == 4  # read one item past the first batch, no more
    with pytest.raises(ItemTooLargeError):
        list(pack_stream([("a", 1), ("b", 500)], max_inputs=5, max_tokens=100))
