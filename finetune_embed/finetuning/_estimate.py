"""What a job will cost before it is created: examples, tokens, epochs, billed tokens and USD.

The counting is the Dataset's own (:meth:`finetune_embed.dataset.Dataset.stats`): per-example tokens with the
model's encoding, capped at the model's per-example limit, times the epochs (explicit, or the server's
``"auto"`` default as the cookbook documents it), times the catalog's dated training price.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import ConfigError

__all__ = ["JobEstimate", "estimate_job"]


@dataclass(frozen=True)
class JobEstimate:
    """The expected size and cost of a fine-tuning job.

    ``billed_tokens = n_epochs x billed_tokens_per_epoch``; ``cost_usd`` is ``None`` when the catalog has no
    per-token price for the model (e.g. reinforcement fine-tuning, billed per training hour). ``notes`` say what
    the figures leave out.
    """

    model: str
    method: str
    n_examples: int
    n_epochs: int
    epochs_auto: bool
    dataset_tokens: int
    billed_tokens_per_epoch: int
    billed_tokens: int
    price_per_1m: float | None
    cost_usd: float | None
    validation_examples: int | None = None
    validation_tokens: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for JSON)."""
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data

    def __str__(self) -> str:
        cost = f"${self.cost_usd:,.2f}" if self.cost_usd is not None else "unknown cost"
        epochs = f"{self.n_epochs} epoch{'s' if self.n_epochs != 1 else ''}" + (" (auto)" if self.epochs_auto else "")
        return (
            f"{self.model} ({self.method}): {self.n_examples} examples, {self.dataset_tokens:,} tokens, {epochs}, "
            f"~{self.billed_tokens:,} billed tokens, {cost}"
        )


def _local_source(source: Any, download: Callable[..., Path] | None, tmp: Path, role: str) -> Any:
    """``source`` itself when it is local data (a path or a Dataset), else the file id's content downloaded."""
    from ._jobs import file_id_of, is_local_file

    if is_local_file(source, role=role):
        return source
    if download is None:
        raise ConfigError(f"{role} {source!r} is a file id; estimate it through a client: client.jobs.estimate(...).")
    return download(file_id_of(source), tmp / f"{role}.jsonl")


def check_estimate(method: str, n_epochs: int | str) -> int | None:
    """The checked ``method`` / ``n_epochs`` of an estimate: the number of epochs, ``None`` for ``"auto"``."""
    from ._validate import check_hyperparameters

    if method not in ("supervised", "dpo", "reinforcement"):
        raise ConfigError(f"method must be one of supervised, dpo, reinforcement, got {method!r}.")
    check_hyperparameters(method, {"n_epochs": n_epochs})
    return None if n_epochs == "auto" else int(n_epochs)


def _stats(source: Any, *, model: str, method: str, n_epochs: int | None) -> Any:
    """The Dataset's own statistics of a Dataset, or of a file (streamed, constant memory)."""
    from ..dataset import Dataset
    from ._files import is_dataset

    if is_dataset(source):
        return source.stats(model=model, method=method, n_epochs=n_epochs)
    return Dataset.stats_file(Path(source), model=model, method=method, n_epochs=n_epochs)


def estimate_job(
    training_file: Any,
    *,
    model: str,
    validation_file: Any = None,
    method: str = "supervised",
    n_epochs: int | str = "auto",
    download: Callable[..., Path] | None = None,
) -> JobEstimate:
    """Estimate a job on ``training_file`` (a path, a Dataset, or a file id fetched with ``download``)."""
    epochs = check_estimate(method, n_epochs)
    with tempfile.TemporaryDirectory(prefix="finetune_embed-estimate-") as tmp:
        train = _local_source(training_file, download, Path(tmp), "training_file")
        stats = _stats(train, model=model, method=method, n_epochs=epochs)
        vstats = None
        if validation_file is not None:
            valid = _local_source(validation_file, download, Path(tmp), "validation_file")
            vstats = _stats(valid, model=model, method=method, n_epochs=epochs)
    notes = list(getattr(stats, "notes", ()) or ())
    if method == "reinforcement":
        notes.append("reinforcement fine-tuning is billed per training hour plus grader tokens, not per token")
    cost = stats.cost_usd if method != "reinforcement" else None
    return JobEstimate(
        model=model,
        method=method,
        n_examples=stats.n_examples,
        n_epochs=stats.n_epochs,
        epochs_auto=n_epochs == "auto",
        dataset_tokens=stats.total_tokens,
        billed_tokens_per_epoch=stats.billed_tokens_per_epoch,
        billed_tokens=stats.billed_tokens,
        price_per_1m=stats.price_per_1m,
        cost_usd=cost,
        validation_examples=vstats.n_examples if vstats is not None else None,
        validation_tokens=vstats.total_tokens if vstats is not None else None,
        notes=tuple(notes),
    )
