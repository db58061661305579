"""Describing a dataset: token distributions, the default-epochs heuristic, billed tokens, cost and balance.

Epochs follow the cookbook's mirror of the service's ``n_epochs="auto"``: 3 epochs, raised so that small sets
see at least 100 examples (at most 25 epochs) and lowered so that big sets see at most 25,000 (at least 1).
Billed tokens are ``epochs × Σ min(limit, tokens per example)``; cost is billed tokens × the catalog's dated
training price.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

__all__ = [
    "MAX_DEFAULT_EPOCHS",
    "MAX_TARGET_EXAMPLES",
    "MIN_DEFAULT_EPOCHS",
    "MIN_TARGET_EXAMPLES",
    "TARGET_EPOCHS",
    "DatasetStats",
    "Distribution",
    "StatsBuilder",
    "default_epochs",
    "percentile",
]

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
ROLE_BUCKETS = ("system", "user", "assistant", "tool", "tools", "other")


def default_epochs(n_examples: int) -> int:
    """The number of epochs the service picks with ``n_epochs="auto"`` (cookbook heuristic).

    >>> [default_epochs(n) for n in (1, 5, 10, 34, 8334, 25001)]
    [25, 20, 10, 3, 2, 1]
    """
    if n_examples <= 0:
        return TARGET_EPOCHS
    epochs = TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        epochs = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    elif n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return epochs


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of sorted values, interpolated linearly (numpy's default method)."""
    if not len(sorted_values):
        return math.nan
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


@dataclass(frozen=True)
class Distribution:
    """Summary of one number per example. Percentiles are what their names say (``p5`` is the 5th percentile;
    the cookbook prints its 10th/90th percentiles as "p5/p95" — here they are ``p10``/``p90``)."""

    n: int
    min: float
    max: float
    mean: float
    p5: float
    p10: float
    p50: float
    p90: float
    p95: float

    @property
    def median(self) -> float:
        """The 50th percentile."""
        return self.p50

    @classmethod
    def of(cls, values: Sequence[float] | array[int]) -> Distribution:
        """The distribution of ``values`` (an ``array('q')`` is sorted in numpy, 8 bytes per value)."""
        if not len(values):
            nan = math.nan
            return cls(0, nan, nan, nan, nan, nan, nan, nan, nan)
        if isinstance(values, array):
            import numpy as np

            arr = np.sort(np.frombuffer(values, dtype=np.int32 if values.itemsize == 4 else np.int64))
            mean = float(np.sum(arr, dtype=np.float64)) / len(arr)
            s: Sequence[float] = arr  # type: ignore[assignment]  # indexable like a sequence
        else:
            s = sorted(values)
            mean = math.fsum(s) / len(s)
        return cls(
            n=len(s),
            min=float(s[0]),
            max=float(s[-1]),
            mean=mean,
            p5=percentile(s, 0.05),
            p10=percentile(s, 0.10),
            p50=percentile(s, 0.50),
            p90=percentile(s, 0.90),
            p95=percentile(s, 0.95),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (NaN, for an empty distribution, becomes ``None``)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class DatasetStats:
    """What a dataset holds and what training on it costs.

    Token counts use ``encoding`` (the model's own; see ``counting``). ``approximate`` is true when tool
    definitions or images were counted (the service renders those in ways it does not publish).
    ``n_epochs`` is the default-epochs heuristic (or the epochs you passed); ``billed_tokens`` =
    ``n_epochs × billed_tokens_per_epoch`` where each example counts at most ``max_example_tokens``;
    ``cost_usd`` uses the catalog's price (``price_as_of``), ``None`` when the model has no per-token price.
    Balance: ``refusal_share`` (assistant replies that look like refusals), exact and near duplicates (same text
    after folding case and whitespace), and ``n_leaked`` (examples also present in a validation set).
    """

    n_examples: int
    format: str | None
    model: str | None
    encoding: str
    counting: str
    approximate: bool
    messages_per_example: Distribution
    tokens_per_example: Distribution
    assistant_tokens_per_example: Distribution
    tokens_by_role: dict[str, int]
    total_tokens: int
    max_example_tokens: int | None
    n_over_limit: int
    over_limit_lines: list[int]
    n_missing_system: int
    n_missing_user: int
    n_epochs: int
    epochs_source: str
    billed_tokens_per_epoch: int
    billed_tokens: int
    price_per_1m: float | None
    price_unit: str | None
    price_as_of: date | None
    cost_usd: float | None
    n_images: int
    n_assistant_replies: int
    n_refusals: int
    refusal_share: float
    n_exact_duplicates: int
    n_near_duplicates: int
    n_leaked: int | None = None
    notes: list[str] = field(default_factory=list)

    def billed_tokens_for(self, n_epochs: int) -> int:
        """Billed training tokens for ``n_epochs`` epochs."""
        return n_epochs * self.billed_tokens_per_epoch

    def cost_for(self, n_epochs: int) -> float | None:
        """Training cost in USD for ``n_epochs`` epochs (``None`` without a per-token price)."""
        if self.price_per_1m is None:
            return None
        return self.billed_tokens_for(n_epochs) / 1_000_000 * self.price_per_1m

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the report schema's ``stats`` object)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, Distribution):
                out[key] = value.to_dict()
            elif isinstance(value, date):
                out[key] = value.isoformat()
            elif isinstance(value, float) and math.isnan(value):
                out[key] = None
            else:
                out[key] = value
        return out

    def summary(self) -> str:
        """The human-readable description, exactly as ``finetune-embed dataset validate`` and ``stats`` print it:
        tokens and their distribution, examples over the limit, epochs, billed tokens and cost, balance (refusal
        share, duplicates, validation leakage) and notes."""
        return "\n".join(self._summary_lines())

    def _summary_lines(self) -> list[str]:
        d = self.tokens_per_example
        a = self.assistant_tokens_per_example
        approx = " (approximate: tool definitions/images estimated)" if self.approximate else ""
        lines = [f"Tokens: {self.total_tokens:,} in {self.n_examples:,} examples with {self.encoding}{approx}"]
        if d.n:
            lines.append(
                f"  per example: min {d.min:,.0f}  mean {d.mean:,.1f}  p5 {d.p5:,.0f}  p50 {d.p50:,.0f}  "
                f"p95 {d.p95:,.0f}  max {d.max:,.0f}"
            )
            lines.append(f"  assistant tokens per example: mean {a.mean:,.1f}  p50 {a.p50:,.0f}  max {a.max:,.0f}")
        if self.max_example_tokens:
            lines.append(
                f"  {self.n_over_limit} example(s) over the {self.max_example_tokens:,}-token limit "
                "(truncated in training)"
            )
        price = ""
        if self.cost_usd is not None:
            per_1m = f" at ${self.price_per_1m:,.2f} / 1M training tokens" if self.price_per_1m is not None else ""
            when = f" (catalog prices as of {self.price_as_of})" if self.price_as_of else ""
            price = f"; estimated cost ${self.cost_usd:,.2f}{per_1m}{when}"
        elif self.model:
            price = f"; no per-token price for {self.model} ({self.price_unit or 'unknown'})"
        lines.append(
            f"Epochs: {self.n_epochs} ({self.epochs_source}); billed tokens: {self.billed_tokens:,} "
            f"({self.billed_tokens_per_epoch:,} per epoch){price}"
        )
        balance = []
        if self.n_missing_system:
            balance.append(f"{self.n_missing_system} without a system message")
        if self.n_missing_user:
            balance.append(f"{self.n_missing_user} without a user message")
        if self.n_assistant_replies:
            balance.append(f"{self.refusal_share:.1%} refusal-like replies")
        if self.n_exact_duplicates or self.n_near_duplicates:
            balance.append(f"{self.n_exact_duplicates} exact / {self.n_near_duplicates} near duplicates")
        if self.n_leaked is not None:
            balance.append(f"{self.n_leaked} validation example(s) also in the training data")
        if balance:
            lines.append("Balance: " + "; ".join(balance))
        lines.extend(f"Note: {note}" for note in self.notes)
        return lines

    def __str__(self) -> str:
        return self.summary()


class StatsBuilder:
    """Accumulates per-example numbers in compact arrays (4 bytes per example per series, 8 for the
    near-duplicate digest); mergeable."""

    def __init__(self) -> None:
        self.totals = array("i")  # 4 bytes per example and series: an example has < 2**31 tokens
        self.assistant = array("i")
        self.n_messages = array("i")
        self.near = array("q")
        self.role_tokens = [0] * len(ROLE_BUCKETS)
        self.n_missing_system = 0
        self.n_missing_user = 0
        self.n_images = 0
        self.n_replies = 0
        self.n_refusals = 0
        self.approximate = False
        self.over_limit_lines: list[int] = []
        self.n_over_limit = 0

    def add_example(
        self,
        total: int,
        assistant: int,
        n_messages: int,
        has_system: bool,
        has_user: bool,
        near_hash: int | None,
    ) -> None:
        """Record one example's numbers."""
        self.totals.append(total)
        self.assistant.append(assistant)
        self.n_messages.append(n_messages)
        if near_hash is not None:
            self.near.append(near_hash)
        if not has_system:
            self.n_missing_system += 1
        if not has_user:
            self.n_missing_user += 1

    def over_limit(self, line: int) -> None:
        self.n_over_limit += 1
        if len(self.over_limit_lines) < 100:
            self.over_limit_lines.append(line)

    def merge(self, other: StatsBuilder) -> None:
        self.totals.extend(other.totals)
        self.assistant.extend(other.assistant)
        self.n_messages.extend(other.n_messages)
        self.near.extend(other.near)
        for i, n in enumerate(other.role_tokens):  # in place: a RowChecker may hold this very list
            self.role_tokens[i] += n
        self.n_missing_system += other.n_missing_system
        self.n_missing_user += other.n_missing_user
        self.n_images += other.n_images
        self.n_replies += other.n_replies
        self.n_refusals += other.n_refusals
        self.approximate = self.approximate or other.approximate
        self.n_over_limit += other.n_over_limit
        self.over_limit_lines = (self.over_limit_lines + other.over_limit_lines)[:100]

    def near_duplicates(self) -> int:
        """Examples whose normalised text equals an earlier example's."""
        if len(self.near) < 2:
            return 0
        import numpy as np

        s = np.sort(np.frombuffer(self.near, dtype=np.int64))
        return int(np.count_nonzero(s[1:] == s[:-1]))

    def finish(
        self,
        *,
        format: str | None,
        model: str | None,
        encoding: str,
        counting: str,
        max_example_tokens: int | None,
        n_epochs: int | None,
        price_per_1m: float | None,
        price_unit: str | None,
        price_as_of: date | None,
        n_exact_duplicates: int,
        n_leaked: int | None = None,
        notes: Sequence[str] = (),
    ) -> DatasetStats:
        n = len(self.totals)
        cap = max_example_tokens
        import numpy as np

        totals = np.frombuffer(self.totals, dtype=np.int32).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
        total_tokens = int(totals.sum())
        per_epoch = int(np.minimum(totals, cap).sum()) if cap else total_tokens
        epochs = n_epochs if n_epochs is not None else default_epochs(n)
        billed = epochs * per_epoch
        cost = billed / 1_000_000 * price_per_1m if price_per_1m is not None else None
        return DatasetStats(
            n_examples=n,
            format=format,
            model=model,
            encoding=encoding,
            counting=counting,
            approximate=self.approximate,
            messages_per_example=Distribution.of(self.n_messages),
            tokens_per_example=Distribution.of(self.totals),
            assistant_tokens_per_example=Distribution.of(self.assistant),
            tokens_by_role=dict(zip(ROLE_BUCKETS, self.role_tokens, strict=True)),
            total_tokens=total_tokens,
            max_example_tokens=cap,
            n_over_limit=self.n_over_limit,
            over_limit_lines=sorted(self.over_limit_lines),
            n_missing_system=self.n_missing_system,
            n_missing_user=self.n_missing_user,
            n_epochs=epochs,
            epochs_source="given" if n_epochs is not None else "default heuristic",
            billed_tokens_per_epoch=per_epoch,
            billed_tokens=billed,
            price_per_1m=price_per_1m,
            price_unit=price_unit,
            price_as_of=price_as_of,
            cost_usd=cost,
            n_images=self.n_images,
            n_assistant_replies=self.n_replies,
            n_refusals=self.n_refusals,
            refusal_share=self.n_refusals / self.n_replies if self.n_replies else 0.0,
            n_exact_duplicates=n_exact_duplicates,
            n_near_duplicates=self.near_duplicates(),
            n_leaked=n_leaked,
            notes=list(notes),
        )
