"""Bootstrap statistics for evaluation reports: a mean with its confidence interval, and a paired comparison.

Percentile bootstrap over examples (resampled with replacement, ``n_boot`` times, a seeded generator): the same
``seed`` gives the same intervals. A paired comparison resamples *examples*, keeping each example's two scores
together, so the interval is that of the mean difference on the same questions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .._exceptions import InvalidArgumentError

__all__ = ["Comparison", "MeanCI", "bootstrap_mean", "paired_comparison"]

_CHUNK = 256  # resamples per batch: bounds memory at 256 x n indices


@dataclass(frozen=True)
class MeanCI:
    """A mean over ``n`` examples with its ``confidence`` bootstrap interval ``[low, high]`` (NaN when n = 0)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    def __str__(self) -> str:
        if self.n == 0:
            return "n/a"
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class Comparison:
    """``b`` against ``a`` on one scorer, over the ``n`` examples both have a score for.

    ``wins`` / ``ties`` / ``losses`` count examples where ``b`` scored higher / the same / lower (for a scorer
    where lower is better, the other way round); ``mean_difference`` is mean(b - a) with its paired bootstrap
    interval ``[low, high]``; ``p_better`` is the share of bootstrap resamples in which ``b`` comes out ahead: near 1
    means ``b`` is better beyond the noise of this sample, near 0.5 that the sample cannot tell.
    """

    scorer: str
    a: str
    b: str
    n: int
    wins: int
    ties: int
    losses: int
    mean_difference: float
    low: float
    high: float
    p_better: float
    confidence: float

    def __str__(self) -> str:
        return (
            f"{self.b} vs {self.a} on {self.scorer}: {self.wins} wins, {self.ties} ties, {self.losses} losses; "
            f"mean difference {self.mean_difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}], "
            f"P(better) = {self.p_better:.3f}"
        )


def _resampled_means(values: npt.NDArray[np.float64], n_boot: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    n = values.size
    out = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, _CHUNK):
        stop = min(n_boot, start + _CHUNK)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def bootstrap_mean(values: npt.ArrayLike, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> MeanCI:
    """The mean of ``values`` and its percentile-bootstrap interval."""
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        nan = float("nan")
        return MeanCI(nan, nan, nan, 0, confidence)
    mean = float(data.mean())
    if data.size == 1 or np.all(data == data[0]):
        return MeanCI(mean, mean, mean, int(data.size), confidence)
    means = _resampled_means(data, n_boot, np.random.default_rng(seed))
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return MeanCI(mean, float(low), float(high), int(data.size), confidence)


def paired_comparison(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    scorer: str,
    names: tuple[str, str],
    higher_is_better: bool = True,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Compare paired scores ``b`` against ``a`` (NaN where a score is missing: those examples are left out)."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InvalidArgumentError(
            f"paired scores need equal lengths, got {x.size} and {y.size}: score both runs on the same examples",
            argument="b",
        )
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    diff = y - x if higher_is_better else x - y
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    ties = int(diff.size - wins - losses)
    if diff.size == 0:
        nan = float("nan")
        return Comparison(scorer, names[0], names[1], 0, 0, 0, 0, nan, nan, nan, nan, confidence)
    mean = float(diff.mean())
    if np.all(diff == diff[0]):
        p = 1.0 if mean > 0 else (0.0 if mean < 0 else 0.5)
        signed = mean if higher_is_better else -mean
        return Comparison(
            scorer, names[0], names[1], int(diff.size), wins, ties, losses, signed, signed, signed, p, confidence
        )
    means = _resampled_means(diff, n_boot, np.random.default_rng(seed))
    alpha = (1.0 - confidence) / 2.0
    low, high = (float(v) for v in np.quantile(means, [alpha, 1.0 - alpha]))
    p_better = float((means > 0).mean() + 0.5 * (means == 0).mean())
    if not higher_is_better:  # report the difference in the scorer's own direction
        mean, low, high = -mean, -high, -low
    return Comparison(
        scorer, names[0], names[1], int(diff.size), wins, ties, losses, mean, low, high, p_better, confidence
    )
