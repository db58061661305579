"""Bootstrap means and paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_embed.evaluate import bootstrap_mean, paired_comparison


def test_bootstrap_interval_holds_the_mean_and_is_reproducible() -> None:
    values = np.r_[np.ones(30), np.zeros(70)]
    ci = bootstrap_mean(values, seed=3)
    assert ci.mean == pytest.approx(0.3)
    assert ci.low < 0.3 < ci.high
    assert ci.high - ci.low == pytest.approx(2 * 1.96 * np.sqrt(0.3 * 0.7 / 100), rel=0.2)  # the normal approximation
    assert bootstrap_mean(values, seed=3) == ci
    assert bootstrap_mean(values, confidence=0.5, seed=3).high < ci.high
    constant = bootstrap_mean([1.0, 1.0, 1.0])
    assert (constant.low, constant.high) == (1.0, 1.0)
    empty = bootstrap_mean([])
    assert empty.n == 0
    assert str(empty) == "n/a"


def test_paired_comparison_counts_and_interval() -> None:
    a = np.array([0, 0, 1, 1, 0, 1, 0, 0, 0, 0], dtype=float)
    b = np.array([1, 1, 1, 0, 1, 1, 1, 0, 1, 1], dtype=float)
    cmp = paired_comparison(a, b, scorer="exact", names=("base", "tuned"), seed=0)
    assert (cmp.wins, cmp.ties, cmp.losses, cmp.n) == (6, 3, 1, 10)
    assert cmp.mean_difference == pytest.approx(0.5)
    assert cmp.low < 0.5 < cmp.high
    assert cmp.p_better > 0.95
    assert "6 wins, 3 ties, 1 losses" in str(cmp)
    reverse = paired_comparison(b, a, scorer="exact", names=("tuned", "base"), seed=0)
    assert (reverse.wins, reverse.losses) == (1, 6)
    assert reverse.p_better < 0.05


def test_missing_scores_are_left_out_and_lower_can_be_better() -> None:
    a = np.array([1.0, np.nan, 3.0, 4.0])
    b = np.array([0.5, 9.0, 3.0, np.nan])
    cmp = paired_comparison(a, b, scorer="latency", names=("a", "b"), higher_is_better=False)
    assert cmp.n == 2
    assert (cmp.wins, cmp.ties, cmp.losses) == (1, 1, 0)  # lower latency wins
    assert cmp.mean_difference == pytest.approx(-0.25)  # mean(b - a), in the scorer's own units
    with pytest.raises(ValueError, match="equal lengths"):
        paired_comparison([1.0], [1.0, 2.0], scorer="s", names=("a", "b"))
    none = paired_comparison([np.nan], [1.0], scorer="s", names=("a", "b"))
    assert none.n == 0
