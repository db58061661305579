"""The per-step training metrics of a finished job, parsed from its result file into numpy columns.

OpenAI serves a job's result file (``job.result_files[0]``) as base64 of a CSV such as::

    step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy
    1,1.8173,0.4285,,
    2,1.5202,0.5000,1.6011,0.4717

Empty cells (validation runs only every few steps) become NaN. Plain-text CSV is accepted too.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._exceptions import (
    APIResponseValidationError,
    InvalidArgumentError,
    MissingDependencyError,
    ResultsUnavailableError,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TrainingMetrics", "decode_result_file"]

INT_COLUMNS = frozenset({"step"})
LOSS_COLUMNS = ("train_loss", "valid_loss", "full_valid_loss")
ACCURACY_COLUMNS = (
    "train_accuracy",
    "train_mean_token_accuracy",
    "valid_mean_token_accuracy",
    "full_valid_mean_token_accuracy",
)


def decode_result_file(content: bytes | str, *, file_id: str | None = None) -> str:
    """The CSV text of a result file: base64-decoded when it is base64, else the text as it is."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    stripped = raw.strip()
    where = f" {file_id}" if file_id else ""
    if not stripped:
        raise APIResponseValidationError(f"The result file{where} is empty; the job wrote no metrics.")
    first_line = stripped.split(b"\n", 1)[0]
    text = raw
    if b"," not in first_line:
        try:
            text = base64.b64decode(b"".join(stripped.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise APIResponseValidationError(
                f"The result file{where} is neither CSV nor base64-encoded CSV (first bytes {raw[:40]!r})."
            ) from exc
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise APIResponseValidationError(f"The result file{where} is not UTF-8 text: {exc}") from exc


def _parse_float(text: str) -> float:
    text = text.strip()
    if not text:
        return math.nan
    return float(text)


@dataclass(frozen=True)
class TrainingMetrics:
    """A table of training metrics, one row per step, one numpy array per column.

    ``step`` is ``int64``; every numeric column is ``float64`` with NaN where the file has no value; a column
    that is not numeric is kept as an object array of strings. Known columns have properties
    (``train_loss``, ``valid_loss``, ...); one the file does not have reads as all-NaN (check with ``in``).

    >>> m = TrainingMetrics.from_csv("step,train_loss,valid_loss\\n1,2.0,\\n2,1.5,1.7\\n")
    >>> len(m), m.train_loss.tolist(), m.last("valid_loss")
    (2, [2.0, 1.5], 1.7)
    """

    columns: Mapping[str, npt.NDArray[Any]]
    job_id: str | None = None
    file_id: str | None = None
    _length: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lengths = {name: len(col) for name, col in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidArgumentError(f"TrainingMetrics columns differ in length: {lengths}", argument="columns")
        object.__setattr__(self, "_length", next(iter(lengths.values()), 0))

    # --- construction ---------------------------------------------------------------------------------------

    @classmethod
    def from_csv(
        cls, content: bytes | str, *, job_id: str | None = None, file_id: str | None = None
    ) -> TrainingMetrics:
        """Parse a result file (CSV, or base64 of a CSV, as OpenAI serves it)."""
        text = decode_result_file(content, file_id=file_id)
        where = f"result file {file_id}" if file_id else "result file"
        rows = list(csv.reader(io.StringIO(text)))
        rows = [row for row in rows if any(cell.strip() for cell in row)]
        if not rows:
            raise APIResponseValidationError(f"The {where} has no header row.")
        header = [name.strip() for name in rows[0]]
        if len(set(header)) != len(header) or any(not name for name in header):
            raise APIResponseValidationError(f"The {where} has an empty or repeated column name: {header}.")
        cells: list[list[str]] = [[] for _ in header]
        for line, row in enumerate(rows[1:], start=2):
            if len(row) != len(header):
                raise APIResponseValidationError(
                    f"The {where}, line {line}: {len(row)} fields where the header has {len(header)} ({row!r})."
                )
            for i, cell in enumerate(row):
                cells[i].append(cell)
        columns: dict[str, npt.NDArray[Any]] = {}
        for name, values in zip(header, cells, strict=True):
            columns[name] = _column(name, values, where)
        return cls(columns=columns, job_id=job_id, file_id=file_id)

    # --- access ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._length

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Rows as dicts (``None`` for NaN)."""
        for i in range(self._length):
            yield {name: _cell(col[i]) for name, col in self.columns.items()}

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        try:
            return self.columns[name]
        except KeyError:
            raise ResultsUnavailableError(
                f"no column {name!r}; the result file has {', '.join(self.columns)}",
                job_id=self.job_id or "?",
            ) from None

    @property
    def column_names(self) -> list[str]:
        """The columns, in the file's order."""
        return list(self.columns)

    def _float(self, name: str) -> npt.NDArray[np.float64]:
        col = self.columns.get(name)
        if col is None:
            return np.full(self._length, np.nan)
        return col.astype(np.float64)

    @property
    def step(self) -> npt.NDArray[np.int64]:
        """The training step of each row (``0..n-1`` when the file has no ``step`` column)."""
        col = self.columns.get("step")
        return np.arange(self._length, dtype=np.int64) if col is None else col.astype(np.int64)

    @property
    def train_loss(self) -> npt.NDArray[np.float64]:
        """Training loss per step."""
        return self._float("train_loss")

    @property
    def train_accuracy(self) -> npt.NDArray[np.float64]:
        """Training token accuracy per step (``train_accuracy``, or ``train_mean_token_accuracy``)."""
        if "train_accuracy" in self.columns or "train_mean_token_accuracy" not in self.columns:
            return self._float("train_accuracy")
        return self._float("train_mean_token_accuracy")

    @property
    def valid_loss(self) -> npt.NDArray[np.float64]:
        """Validation loss per step (NaN on steps without a validation run)."""
        return self._float("valid_loss")

    @property
    def valid_mean_token_accuracy(self) -> npt.NDArray[np.float64]:
        """Validation token accuracy per step (NaN on steps without a validation run)."""
        return self._float("valid_mean_token_accuracy")

    @property
    def full_valid_loss(self) -> npt.NDArray[np.float64]:
        """Loss on the whole validation file (usually only at the end of each epoch)."""
        return self._float("full_valid_loss")

    @property
    def full_valid_mean_token_accuracy(self) -> npt.NDArray[np.float64]:
        """Token accuracy on the whole validation file."""
        return self._float("full_valid_mean_token_accuracy")

    def last(self, name: str) -> float | None:
        """The last non-NaN value of a numeric column, or ``None``."""
        col = self[name]
        if col.dtype == object:
            raise InvalidArgumentError(f"column {name!r} is not numeric; last() reads numeric columns", argument="name")
        finite = col[~np.isnan(col.astype(np.float64))]
        return float(finite[-1]) if finite.size else None

    def summary(self) -> dict[str, float | None]:
        """The last value of every numeric column (``step``: the last step)."""
        return {name: self.last(name) for name, col in self.columns.items() if col.dtype != object}

    # --- export ---------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, list[Any]]:
        """Columns as plain lists (``None`` for NaN), ready for JSON."""
        return {name: [_cell(v) for v in col] for name, col in self.columns.items()}

    def to_pandas(self) -> pd.DataFrame:
        """A ``pandas.DataFrame`` with the same columns (needs pandas: ``pip install 'finetune-embed[pandas]'``)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is in the test environment
            raise MissingDependencyError(
                "to_pandas() needs pandas: pip install 'finetune-embed[pandas]'", package="pandas", extra="pandas"
            ) from exc
        return pd.DataFrame(dict(self.columns))

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as CSV, atomically (a temporary file, then ``os.replace``), with the permissions
        ``open()`` would give."""
        from .._atomic import atomic_write

        target = Path(path)
        with atomic_write(target, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(self.column_names)
            for row in self:
                writer.writerow(["" if v is None else v for v in row.values()])
        return target

    def plot(self, columns: Sequence[str] | None = None, *, ax: Any = None) -> Any:
        """Plot ``columns`` (default: the loss columns present) against ``step``; returns the matplotlib Axes.

        Needs matplotlib (``pip install matplotlib``). NaN gaps (steps without validation) are bridged so that
        sparse validation curves show as lines.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise MissingDependencyError(
                "TrainingMetrics.plot() needs matplotlib: pip install 'finetune-embed[plot]'",
                package="matplotlib",
                extra="plot",
            ) from exc
        names = list(columns) if columns is not None else [c for c in LOSS_COLUMNS if c in self.columns]
        if not names:
            raise InvalidArgumentError(
                f"nothing to plot: no loss column among {', '.join(self.columns)}; pass columns=", argument="columns"
            )
        if ax is None:
            _, ax = plt.subplots()
        steps = self.step
        for name in names:
            values = self[name].astype(np.float64)
            mask = ~np.isnan(values)
            ax.plot(steps[mask], values[mask], label=name, marker="." if mask.sum() < 30 else None)
        ax.set_xlabel("step")
        ax.set_title(f"Training metrics{' of ' + self.job_id if self.job_id else ''}")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.summary().items() if v is not None and k != "step")
        return (
            f"TrainingMetrics(job_id={self.job_id!r}, steps={self._length}, columns={self.column_names}, "
            f"last: {last})"
        )


def _column(name: str, values: list[str], where: str) -> npt.NDArray[Any]:
    if name in INT_COLUMNS:
        try:
            return np.array([int(float(v)) for v in values], dtype=np.int64)
        except (ValueError, OverflowError) as exc:  # OverflowError: "inf", or beyond int64
            raise APIResponseValidationError(
                f"The {where} has a non-integer {name!r} (or one beyond int64): {exc}"
            ) from exc
    try:
        return np.array([_parse_float(v) for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=object)


def _cell(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    return value
