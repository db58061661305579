"""#16: float16 rows are widened to float32 block by block into a reused buffer, bit for bit as numpy casts."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_embed.index import EmbeddingIndex
from finetune_embed.index._store import subnormals_kept, widen_float16

from .conftest import assert_exact_topk, reference_scores


def _every_float16() -> np.ndarray:
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)


def test_widening_matches_numpys_cast_for_every_finite_float16() -> None:
    assert subnormals_kept()  # numpy's default: the fast path is the one under test
    values = _every_float16()
    finite = values[np.isfinite(values)].reshape(-1, 31)  # 63488 values: zeros, subnormals, normals, 65504
    out = np.full(finite.shape, np.nan, dtype=np.float32)
    got = widen_float16(finite, out, np.empty(finite.shape, dtype=np.uint32))
    assert got is out
    assert got.view(np.uint32).tobytes() == finite.astype(np.float32).view(np.uint32).tobytes()


def test_a_block_with_infinity_or_nan_is_cast_by_numpy() -> None:
    values = _every_float16()
    out = np.empty(values.shape, dtype=np.float32)
    got = widen_float16(values, out, np.empty(values.shape, dtype=np.uint32))
    assert got.view(np.uint32).tobytes() == values.astype(np.float32).view(np.uint32).tobytes()


@pytest.mark.parametrize("nq", [1, 2, 5, 40])
def test_float16_search_is_exact_over_the_stored_values(nq: int) -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((30_000, 48)).astype(np.float32)
    x[:50] *= 1e-3  # small components: float16 subnormals
    index = EmbeddingIndex(48, metric="dot", dtype=np.float16)
    index.add([str(i) for i in range(len(x))], x)
    stored = x.astype(np.float16).astype(np.float32)
    queries = rng.standard_normal((nq, 48)).astype(np.float32)
    for threads in (1, 2):
        result = index.search(queries, k=15, threads=threads)
        for q, matches in zip(queries, result, strict=True):
            assert_exact_topk(matches, index.ids, reference_scores(stored, q, "dot"), 15, tol=1e-4)
