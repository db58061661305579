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
