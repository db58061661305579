"""The :class:`EvaluationReport`: per-example rows, per-scorer means with bootstrap intervals, paired comparisons,
the worst examples, tokens, cost and latency per candidate."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, MissingDependencyError
from ._stats import Comparison, MeanCI, bootstrap_mean, paired_comparison

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CandidateUsage", "EvaluationReport", "ResultRow", "ScoreSummary"]


@dataclass(frozen=True)
class ResultRow:
    """One candidate's answer to one example, with its scores (``None``: the scorer does not apply)."""

    example: int
    line: int
    candidate: str
    model: str
    prompt: str
    reference: str
    prediction: str
    scores: Mapping[str, float | None]
    finish_reason: str | None = None
    latency: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    cached: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A flat dict (scores as ``score:<name>`` keys)."""
        out = {k: v for k, v in asdict(self).items() if k != "scores"}
        out.update({f"score:{k}": v for k, v in self.scores.items()})
        return out


@dataclass(frozen=True)
class ScoreSummary:
    """One candidate's mean on one scorer, with its bootstrap interval (``stats``)."""

    candidate: str
    scorer: str
    stats: MeanCI

    @property
    def mean(self) -> float:
        return self.stats.mean


@dataclass(frozen=True)
class CandidateUsage:
    """Requests, tokens, cost and latency of one candidate. ``cost_usd`` prices every answer (cached ones at what
    they cost when they were fetched); ``spent_usd`` only the requests this run sent. ``None`` without a price."""

    candidate: str
    model: str
    requests: int
    cached: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    spent_usd: float | None
    latency_mean: float | None
    latency_p50: float | None
    latency_p95: float | None
    price_per_1m: tuple[float, float] | None

    @property
    def cost_per_example(self) -> float | None:
        return None if self.cost_usd is None or not self.requests else self.cost_usd / self.requests


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


@dataclass
class EvaluationReport:
    """What :meth:`Evaluation.run` returns.

    ``candidates`` and ``scorers`` name the columns; ``rows`` holds one :class:`ResultRow` per example and
    candidate; ``skipped`` the source lines of examples without an assistant reply to compare with.
    """

    candidates: list[str]
    models: dict[str, str]
    scorers: list[str]
    rows: list[ResultRow]
    n_examples: int
    skipped: list[int] = field(default_factory=list)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    usage: dict[str, CandidateUsage] = field(default_factory=dict)
    n_boot: int = 2000
    confidence: float = 0.95
    seed: int = 0

    # --- lookups ----------------------------------------------------------------------------------------------

    def _check(self, candidate: str | None = None, scorer: str | None = None) -> None:
        if candidate is not None and candidate not in self.candidates:
            raise ConfigError(f"no candidate {candidate!r} in this report; it has {', '.join(self.candidates)}")
        if scorer is not None and scorer not in self.scorers:
            raise ConfigError(f"no scorer {scorer!r} in this report; it has {', '.join(self.scorers)}")

    def scores(self, candidate: str, scorer: str) -> npt.NDArray[np.float64]:
        """The candidate's score on every example, in example order (NaN where the scorer does not apply)."""
        self._check(candidate, scorer)
        by_example = {r.example: r.scores.get(scorer) for r in self.rows if r.candidate == candidate}
        order = sorted({r.example for r in self.rows})
        return np.array([np.nan if by_example.get(e) is None else by_example[e] for e in order], dtype=np.float64)

    def ci(self, candidate: str, scorer: str) -> MeanCI:
        """The mean over examples where the scorer applies, with its bootstrap interval."""
        values = self.scores(candidate, scorer)
        return bootstrap_mean(values[~np.isnan(values)], n_boot=self.n_boot, confidence=self.confidence, seed=self.seed)

    def mean(self, candidate: str, scorer: str) -> float:
        """The candidate's mean score (NaN when the scorer applies to no example)."""
        values = self.scores(candidate, scorer)
        kept = values[~np.isnan(values)]
        return float(kept.mean()) if kept.size else float("nan")

    def summary(self) -> list[ScoreSummary]:
        """Every candidate's mean on every scorer, with bootstrap intervals."""
        return [ScoreSummary(c, s, self.ci(c, s)) for c in self.candidates for s in self.scorers]

    def compare(self, a: str | None = None, b: str | None = None, *, scorer: str | None = None) -> list[Comparison]:
        """Paired comparisons of ``b`` against ``a`` (default: every other candidate against the first), on
        ``scorer`` (default: every scorer)."""
        base = a if a is not None else self.candidates[0]
        others = [b] if b is not None else [c for c in self.candidates if c != base]
        self._check(base, scorer)
        out: list[Comparison] = []
        for other in others:
            self._check(other)
            for s in [scorer] if scorer is not None else self.scorers:
                out.append(
                    paired_comparison(
                        self.scores(base, s),
                        self.scores(other, s),
                        scorer=s,
                        names=(base, other),
                        higher_is_better=self.higher_is_better.get(s, True),
                        n_boot=self.n_boot,
                        confidence=self.confidence,
                        seed=self.seed,
                    )
                )
        return out

    def worst(self, scorer: str, candidate: str | None = None, n: int = 5) -> list[ResultRow]:
        """The ``n`` rows where ``candidate`` (default: the last one) scored worst on ``scorer`` (errors first)."""
        who = candidate if candidate is not None else self.candidates[-1]
        self._check(who, scorer)
        rows = [r for r in self.rows if r.candidate == who and r.scores.get(scorer) is not None]
        sign = 1.0 if self.higher_is_better.get(scorer, True) else -1.0
        rows.sort(key=lambda r: (r.error is None, sign * float(r.scores[scorer] or 0.0), r.example))
        return rows[:n]

    # --- export -----------------------------------------------------------------------------------------------

    def to_rows(self) -> list[dict[str, Any]]:
        """The per-example table as dicts (one per example and candidate)."""
        return [r.to_dict() for r in self.rows]

    def to_pandas(self) -> pd.DataFrame:
        """The per-example table as a DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is in the dev extra
            raise MissingDependencyError(
                "EvaluationReport.to_pandas() needs pandas: pip install 'finetune-embed[pandas]'",
                package="pandas",
                extra="pandas",
            ) from exc
        return pd.DataFrame(self.to_rows())

    def to_dict(self, *, worst: int = 5) -> dict[str, Any]:
        """Everything as JSON-ready data: summary, comparisons against the first candidate, usage, the worst
        examples per scorer (of the last candidate) and the skipped lines; the rows are in :meth:`to_rows`."""

        def clean(value: Any) -> Any:  # NaN and inf are not JSON
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        data: dict[str, Any] = clean(
            {
                "candidates": [{"name": c, "model": self.models[c]} for c in self.candidates],
                "n_examples": self.n_examples,
                "skipped_lines": list(self.skipped),
                "summary": [{"candidate": s.candidate, "scorer": s.scorer, **asdict(s.stats)} for s in self.summary()],
                "comparisons": [asdict(c) for c in self.compare()] if len(self.candidates) > 1 else [],
                "usage": {c: asdict(u) for c, u in self.usage.items()},
                "worst": {
                    s: [
                        {
                            "line": r.line,
                            "score": r.scores[s],
                            "prompt": r.prompt,
                            "reference": r.reference,
                            "prediction": r.prediction,
                            "error": r.error,
                        }
                        for r in self.worst(s, n=worst)
                    ]
                    for s in self.scorers
                },
            }
        )
        return data

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` plus the rows as one JSON file (atomically)."""
        from .._atomic import atomic_write_lines

        data = {**self.to_dict(), "rows": self.to_rows()}
        atomic_write_lines(path, [json.dumps(data, indent=2, ensure_ascii=False)])

    # --- text -------------------------------------------------------------------------------------------------

    def format(self, *, worst: int = 3) -> str:
        """A plain-text report: scores with intervals, comparisons, usage and the worst examples."""
        pct = f"{self.confidence:.0%}"
        parts = [f"{self.n_examples} examples" + (f" ({len(self.skipped)} skipped: no reply)" if self.skipped else "")]
        rows = [
            [s.candidate, s.scorer, _fmt(s.stats.mean), f"[{_fmt(s.stats.low)}, {_fmt(s.stats.high)}]", str(s.stats.n)]
            for s in self.summary()
        ]
        parts.append(_table(rows, ["candidate", "scorer", "mean", f"{pct} CI", "n"]))
        if len(self.candidates) > 1:
            rows = [
                [
                    f"{c.b} vs {c.a}",
                    c.scorer,
                    f"{c.wins}/{c.ties}/{c.losses}",
                    _fmt(c.mean_difference, "+.3f"),
                    f"[{_fmt(c.low, '+.3f')}, {_fmt(c.high, '+.3f')}]",
                    _fmt(c.p_better),
                ]
                for c in self.compare()
            ]
            parts.append(_table(rows, ["comparison", "scorer", "win/tie/loss", "mean diff", f"{pct} CI", "P(better)"]))
        rows = [
            [
                u.candidate,
                str(u.requests),
                str(u.cached),
                str(u.errors),
                f"{u.prompt_tokens:,}",
                f"{u.completion_tokens:,}",
                _fmt(u.cost_usd, ".4f"),
                _fmt(u.latency_mean, ".2f"),
                _fmt(u.latency_p95, ".2f"),
            ]
            for u in self.usage.values()
        ]
        parts.append(
            _table(
                rows,
                [
                    "candidate",
                    "requests",
                    "cached",
                    "errors",
                    "prompt tok",
                    "completion tok",
                    "cost $",
                    "latency s",
                    "p95 s",
                ],
            )
        )
        if worst:
            for s in self.scorers:
                bad = [r for r in self.worst(s, n=worst) if (r.scores[s] or 0.0) < 1.0 or r.error]
                if bad:
                    lines = [f"Worst on {s} ({bad[0].candidate}):"]
                    for r in bad:
                        got = r.error or r.prediction
                        lines.append(
                            f"  line {r.line}: {_fmt(r.scores[s])}  {r.prompt[:60]!r} -> {got[:60]!r} "
                            f"(expected {r.reference[:60]!r})"
                        )
                    parts.append("\n".join(lines))
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.format()
