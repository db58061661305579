"""The running top-k: keys order (score, then position), exactness for any block split."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from finetune_embed.index._topk import RunningTopK, decode_keys, score_keys


def test_keys_order_and_round_trip() -> None:
    scores = np.array([-np.inf, -1.5, -0.0, 0.0, 1e-30, 2.0, np.inf, 2.0], dtype=np.float32)
    positions = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    keys = score_keys(scores, positions)
    order = np.argsort(keys)[::-1]
    # best first: inf, then 2.0 at position 5 before 2.0 at 7, ..., -0.0 and 0.0 tie (earlier first)
    assert order.tolist() == [6, 5, 7, 4, 2, 3, 1, 0]
    back, pos = decode_keys(keys)
    np.testing.assert_array_equal(back, scores + np.float32(0))
    np.testing.assert_array_equal(pos, positions)
    assert (keys > 0).all()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 400),
    q=st.integers(1, 4),
    k=st.integers(1, 30),
    block=st.integers(1, 97),
    levels=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_blocks_give_the_exact_deterministic_top_k(n: int, q: int, k: int, block: int, levels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(q, n)).astype(np.float32)  # many ties
    scores[rng.random((q, n)) < 0.1] = -np.inf  # masked items are never returned
    top = RunningTopK(q, k)
    for a in range(0, n, block):
        top.push(np.ascontiguousarray(scores[:, a : a + block]), a)
    for row, (got_scores, got_pos) in zip(scores, top.results(), strict=True):
        valid = np.flatnonzero(np.isfinite(row))
        expected = sorted(valid.tolist(), key=lambda i: (-row[i], i))[:k]
        assert got_pos.tolist() == expected
        np.testing.assert_array_equal(got_scores, row[expected])


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 900),
    q=st.integers(1, 12),
    k=st.integers(1, 30),
    block=st.integers(1, 600),
    levels=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_column_blocks_give_the_same_top_k_as_row_blocks(
    n: int, q: int, k: int, block: int, levels: int, seed: int
) -> None:
    """push_columns takes (rows x queries) blocks, the layout of BLAS's rows @ queries.T; blocks longer than a
    group (128 rows) take the per-group maximum route, shorter ones and the tail are compared directly."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(q, n)).astype(np.float32)
    scores[rng.random((q, n)) < 0.1] = -np.inf
    top = RunningTopK(q, k)
    for a in range(0, n, block):
        top.push_columns(np.ascontiguousarray(scores[:, a : a + block].T), a)
    for row, (got_scores, got_pos) in zip(scores, top.results(), strict=True):
        valid = np.flatnonzero(np.isfinite(row))
        expected = sorted(valid.tolist(), key=lambda i: (-row[i], i))[:k]
        assert got_pos.tolist() == expected
        np.testing.assert_array_equal(got_scores, row[expected])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 700), q=st.integers(1, 6), k=st.integers(1, 12), seed=st.integers(0, 1000))
def test_column_blocks_collect_the_same_margin_pool_with_positions(n: int, q: int, k: int, seed: int) -> None:
    """The int8 shortlist: with a margin, both layouts collect the same (query, key) pool; positions may be
    given one per row (a filtered scan's slots)."""
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((q, n)).astype(np.float32)
    slots = np.sort(rng.choice(10 * n, size=n, replace=False)).astype(np.int64)
    margin = rng.uniform(0, 1.5, size=q).astype(np.float32)
    rows, cols = RunningTopK(q, k, margin=margin), RunningTopK(q, k, margin=margin)
    for a in range(0, n, 300):
        rows.push(np.ascontiguousarray(scores[:, a : a + 300]), slots[a : a + 300])
        cols.push_columns(np.ascontiguousarray(scores[:, a : a + 300].T), slots[a : a + 300])
    assert rows.keys.tobytes() == cols.keys.tobytes()
    got = sorted(zip(*(x.tolist() for x in cols.pool()), strict=True))
    want = sorted(zip(*(x.tolist() for x in rows.pool()), strict=True))
    assert got == want
    for j in range(q):  # the pool is every item within the margin of the final k-th best score
        kth = np.sort(scores[j])[::-1][min(k, n) - 1]
        expected = set(slots[scores[j] >= kth - margin[j]].tolist())
        pool_rows, pool_keys = cols.pool()
        assert set(decode_keys(pool_keys[pool_rows == j])[1].tolist()) == expected


@settings(max_examples=40, deadline=None)
@given(groups=st.integers(1, 40), tail=st.integers(0, 127), q=st.integers(1, 9), seed=st.integers(0, 1000))
def test_group_maxima_are_the_maxima_of_interleaved_groups(groups: int, tail: int, q: int, seed: int) -> None:
    """push_columns' groups are interleaved: group g of a block of 128 * s rows holds rows g, g + s, g + 2s, ..."""
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((128 * groups + tail, q)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.05] = -np.inf
    top = RunningTopK(q, 3)
    whole = 128 * groups
    got = top._group_max(scores[:whole])
    expected = scores[:whole].reshape(128, groups, q).max(axis=0)
    np.testing.assert_array_equal(got, expected)
    again = top._group_max(scores[: 128 * max(1, groups // 2)])  # the reused buffer: a smaller block next
    np.testing.assert_array_equal(again, scores[: 128 * max(1, groups // 2)].reshape(128, -1, q).max(axis=0))


@settings(max_examples=30, deadline=None)
@given(
    blocks=st.lists(st.integers(128, 3000), min_size=1, max_size=4),
    q=st.integers(1, 20),
    k=st.integers(1, 12),
    seed=st.integers(0, 1000),
)
def test_large_column_blocks_find_every_hit_wherever_it_lies(blocks: list[int], q: int, k: int, seed: int) -> None:
    """Once a first block has set every threshold (k scores of 5.0 per query), later blocks of many groups go
    the per-group route: a few better scores and ties planted at random rows (the last rows and the tail
    included) must all be found at their own positions, and the ties at 5.0 must lose to the earlier ones."""
    rng = np.random.default_rng(seed)
    n = 128 + sum(blocks)
    scores = rng.standard_normal((q, n)).astype(np.float32)  # below 5 (a 1e-6 event otherwise)
    scores[:, :k] = 5.0
    for j in range(q):
        planted = 128 + rng.choice(n - 128, size=min(n - 128, 3), replace=False)
        scores[j, planted] = rng.choice(np.array([5.0, 6.0, 7.0], dtype=np.float32), size=planted.size)
    scores[:, n - 1] = 8.0
    top = RunningTopK(q, k)
    top.push_columns(np.ascontiguousarray(scores[:, :128].T), 0)
    a = 128
    for size in blocks:
        top.push_columns(np.ascontiguousarray(scores[:, a : a + size].T), a)
        a += size
    for row, (got_scores, got_pos) in zip(scores, top.results(), strict=True):
        expected = sorted(range(n), key=lambda i: (-row[i], i))[:k]
        assert got_pos.tolist() == expected
        np.testing.assert_array_equal(got_scores, row[expected])
