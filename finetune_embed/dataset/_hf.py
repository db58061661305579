"""Examples from Hugging Face ``datasets`` (the ``hf`` extra), imported only when :meth:`Dataset.from_hf` is
called: an in-memory ``datasets.Dataset`` / ``DatasetDict`` / ``IterableDataset``, a folder written by
``save_to_disk``, or a name (or local folder of data files) for ``datasets.load_dataset``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from .._exceptions import DatasetFormatError, InvalidArgumentError, MissingDependencyError
from ._parquet import drop_absent

__all__ = ["HF_EXTRA", "rows_from_hf"]

HF_EXTRA = "hf"
_BATCH_ROWS = 4096
_SAVED_MARKERS = ("state.json", "dataset_dict.json")  # what save_to_disk writes in its folder


def _import_datasets() -> ModuleType:
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependencyError(
            f"Dataset.from_hf needs Hugging Face datasets, which is not installed: "
            f"pip install 'finetune-embed[{HF_EXTRA}]'",
            package="datasets",
            extra=HF_EXTRA,
        ) from exc
    module: ModuleType = datasets
    return module


def rows_from_hf(
    source: Any, *, split: str | None, revision: str | None, columns: Sequence[str] | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The examples of ``source`` and a name for it; see :meth:`Dataset.from_hf`."""
    if isinstance(columns, str):
        raise InvalidArgumentError("columns must be a list of column names, not one string", argument="columns")
    hf = _import_datasets()
    name: str | None = None
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        source = _load(hf, name, split=split, revision=revision)
    elif not isinstance(source, hf.Dataset | hf.DatasetDict | hf.IterableDataset | hf.IterableDatasetDict):
        raise InvalidArgumentError(
            "source must be a datasets.Dataset, DatasetDict or IterableDataset, a folder written by save_to_disk, "
            f"or a dataset name for datasets.load_dataset, not {type(source).__name__}",
            argument="source",
        )
    if isinstance(source, hf.DatasetDict | hf.IterableDatasetDict):
        source = _pick_split(source, split, name)
    if columns is not None:
        missing = [c for c in columns if c not in (source.column_names or [])]
        if missing:
            raise DatasetFormatError(
                f"no column {', '.join(map(repr, missing))} (columns: {', '.join(source.column_names or [])}); "
                "check columns=",
                path=name,
            )
        source = source.select_columns(list(columns))
    if isinstance(source, hf.IterableDataset):
        return [_row(row) for row in source], name
    rows: list[dict[str, Any]] = []
    for batch in source.with_format(None).iter(batch_size=_BATCH_ROWS):  # datasets decodes its own feature types
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys), strict=True):
            rows.append(_row(dict(zip(keys, values, strict=True))))
    return rows, name


def _row(row: dict[str, Any]) -> dict[str, Any]:
    """One example: a null column is an absent key; null fields that Arrow added to objects are dropped."""
    return {str(k): drop_absent(v) for k, v in row.items() if v is not None}


def _load(hf: ModuleType, name: str, *, split: str | None, revision: str | None) -> Any:
    if os.path.isdir(name) and any(os.path.exists(os.path.join(name, m)) for m in _SAVED_MARKERS):
        try:
            return hf.load_from_disk(name)
        except Exception as exc:  # datasets raises many kinds here; the message says what went wrong
            raise DatasetFormatError(
                f"cannot load the folder written by save_to_disk ({type(exc).__name__}: {exc})", path=name
            ) from exc
    try:
        return hf.load_dataset(name, split=split, revision=revision)
    except Exception as exc:  # not found, offline, a bad split name: all come as different exception types
        raise DatasetFormatError(
            f"datasets.load_dataset({name!r}) failed ({type(exc).__name__}: {exc}); check the name, the split and "
            "the network (offline, set HF_DATASETS_OFFLINE=1 to use the local cache, or pass a folder written by "
            "save_to_disk, or a datasets.Dataset)",
            path=name,
        ) from exc


def _pick_split(source: Any, split: str | None, name: str | None) -> Any:
    splits = list(source.keys())
    if split is None:
        if len(splits) == 1:
            return source[splits[0]]
        raise InvalidArgumentError(
            f"the dataset{f' {name!r}' if name else ''} has the splits {', '.join(splits)}; pick one with split=",
            argument="split",
        )
    if split not in source:
        raise InvalidArgumentError(
            f"the dataset{f' {name!r}' if name else ''} has no split {split!r} (splits: {', '.join(splits)})",
            argument="split",
        )
    return source[split]
