"""#16: the int8 mode's approximate scan for a few queries (``code_scores``): widened tiles multiplied by BLAS."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from finetune_embed.index import EmbeddingIndex
from finetune_embed.index import _index as index_module
from finetune_embed.index._kernels import code_scores

from .conftest import assert_exact_topk

_U = 2.0**-24


def _split_in(parts: int) -> Callable[[Callable[[int, int], object], int], None]:
    """A stand-in for the search's threads: ``work`` over ``parts`` row ranges, one after the other."""

    def split(work: Callable[[int, int], object], n: int) -> None:
        edges = np.linspace(0, n, parts + 1).astype(int).tolist()
        for a, b in itertools.pairwise(edges):
            if b > a:
                work(a, b)

    return split


@pytest.mark.parametrize("nq", [1, 2, 3, 4])
@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("tile_values", [1 << 18, 5 * 37 * 4])  # the default, and tiles of a few rows
def test_code_scores_are_the_products_within_the_float32_rounding_bound(nq: int, parts: int, tile_values: int) -> None:
    rng = np.random.default_rng(nq * 10 + parts)
    dim = 37
    codes = rng.integers(-127, 128, size=(1001, dim), dtype=np.int8)
    queries = rng.standard_normal((nq, dim)).astype(np.float32)
    wide = np.full((nq, 1200), np.nan, dtype=np.float32)  # a score buffer wider than the block, as in the scan
    out = wide[:, : codes.shape[0]]
    code_scores(codes, queries, out, _split_in(parts), tile_values=tile_values)
    exact = queries.astype(np.float64) @ codes.astype(np.float64).T
    gamma = dim * _U / (1 - dim * _U)
    bound = gamma * (np.abs(queries).astype(np.float64) @ np.abs(codes).astype(np.float64).T)
    assert np.all(np.abs(out - exact) <= bound)  # every cell written (NaN fails), none off by more than rounding
    assert np.isnan(wide[:, codes.shape[0] :]).all()  # nothing written past the block


@pytest.mark.parametrize("nq", [2, 4])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_few_queries_on_int8_go_through_code_scores_and_stay_exact(
    nq: int, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(nq + threads)
    x = rng.standard_normal((30_000, 48)).astype(np.float32)
    index = EmbeddingIndex(48, metric="dot", dtype="int8")
    ids = [str(i) for i in range(x.shape[0])]
    index.add(ids, x)
    calls = [0]
    real = code_scores

    def counting(*args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        real(*args, **kwargs)

    monkeypatch.setattr(index_module, "code_scores", counting)
    queries = rng.standard_normal((nq, 48)).astype(np.float32)
    got = index.search(queries, k=15, threads=threads)
    assert calls[0] > 0
    stored = index.vectors.astype(np.float64)
    for q, result in zip(queries, got, strict=True):
        assert_exact_topk(result, ids, stored @ q.astype(np.float64), 15, tol=1e-5)
    one = index.search(queries, k=15, threads=1)
    assert [m.ids for m in got] == [m.ids for m in one]
    for a, b in zip(got, one, strict=True):
        assert a.scores.tobytes() == b.scores.tobytes()
