"""Helpers for the index tests: a brute-force reference to compare every search against."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from finetune_embed.index import Matches

TOL = 2e-5


def reference_scores(vectors: npt.ArrayLike, query: npt.ArrayLike, metric: str) -> npt.NDArray[np.float64]:
    """Exact scores in float64 (vectors and query normalised for cosine)."""
    x = np.asarray(vectors, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q)
    return x @ q


def assert_exact_topk(
    result: Matches,
    ids: Sequence[str],
    scores: npt.NDArray[np.float64],
    k: int,
    *,
    allowed: npt.NDArray[np.bool_] | None = None,
    tol: float = TOL,
) -> None:
    """``result`` is a valid exact top-k of ``scores`` (up to float32 rounding ``tol``): right length, sorted,
    every returned score correct, nothing left out that beats the last returned one."""
    mask = np.ones(len(ids), dtype=bool) if allowed is None else allowed
    assert len(result) == min(k, int(mask.sum()))
    pos = {i: n for n, i in enumerate(ids)}
    got = np.array([pos[i] for i in result.ids], dtype=np.int64)
    assert len(set(result.ids)) == len(result.ids)
    assert mask[got].all()
    assert np.all(np.diff(result.scores) <= 0)
    np.testing.assert_allclose(result.scores, scores[got], atol=tol, rtol=0)
    if len(result) and len(result) < mask.sum():
        left_out = np.ones(len(ids), dtype=bool)
        left_out[got] = False
        left_out &= mask
        assert scores[left_out].max() <= result.scores[-1] + tol
