"""Optional Apache Arrow / Parquet support: the lazy import of pyarrow and the atomic Parquet write.

pyarrow is imported only when a Parquet method is called; without it that call raises
:class:`~finetune_embed.MissingDependencyError` naming the ``parquet`` extra.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from . import _atomic
from ._exceptions import DatasetFormatError, FileAccessError, MissingDependencyError

__all__ = ["PARQUET_EXTRA", "atomic_parquet_writer", "import_pyarrow", "read_parquet_file", "write_parquet_atomic"]

PARQUET_EXTRA = "parquet"


def import_pyarrow(feature: str) -> tuple[ModuleType, ModuleType]:
    """``(pyarrow, pyarrow.parquet)``, or :class:`MissingDependencyError` saying that ``feature`` needs them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs pyarrow, which is not installed: pip install 'finetune-embed[{PARQUET_EXTRA}]'",
            package="pyarrow",
            extra=PARQUET_EXTRA,
        ) from exc
    return pa, pq


def read_parquet_file(pq: ModuleType, path: str | os.PathLike[str], feature: str) -> Any:
    """``pyarrow.parquet.ParquetFile`` of ``path``; a missing or unreadable file raises :class:`FileAccessError`
    and a file that is not Parquet a :class:`~finetune_embed.DatasetFormatError`."""
    from ._atomic import file_access_error

    name = os.fspath(path)
    if os.path.isdir(name):
        raise FileAccessError(
            f"Cannot read {name}: it is a folder; {feature} reads one Parquet file (pass the file's path).",
            path=name,
        )
    try:
        return pq.ParquetFile(name)
    except OSError as exc:
        if exc.errno is None:  # pyarrow's own I/O errors about the content carry no errno
            raise _not_parquet(name, feature, exc) from None
        raise file_access_error(exc, name, "read") from exc
    except Exception as exc:  # pyarrow's ArrowInvalid (a ValueError) for a file that is not Parquet
        raise _not_parquet(name, feature, exc) from None


def _not_parquet(name: str, feature: str, exc: BaseException) -> DatasetFormatError:
    return DatasetFormatError(
        f"not a Parquet file ({exc}); {feature} reads Parquet files such as pyarrow, pandas, DuckDB or Hugging Face "
        "datasets write",
        path=name,
    )


def write_parquet_atomic(pq: ModuleType, table: Any, path: str | os.PathLike[str], **options: Any) -> None:
    """Write ``table`` to ``path`` as Parquet, atomically: a temporary file beside it, fsynced, then renamed
    over it (a reader sees the old file or the complete new one)."""
    with _atomic.atomic_path(path, suffix=".parquet.tmp") as tmp:
        try:
            pq.write_table(table, os.fspath(tmp), **options)
        except OSError as exc:
            if exc.errno is None:
                raise
            raise _atomic.file_access_error(exc, path, "write") from exc


@contextlib.contextmanager
def atomic_parquet_writer(pq: ModuleType, path: str | os.PathLike[str], schema: Any, **options: Any) -> Iterator[Any]:
    """A ``pyarrow.parquet.ParquetWriter`` on a temporary file beside ``path``, renamed over it when the ``with``
    block ends cleanly (removed on any exception): batches written one by one, the file appears complete."""
    with _atomic.atomic_path(path, suffix=".parquet.tmp") as tmp:
        try:
            with pq.ParquetWriter(os.fspath(tmp), schema, **options) as writer:
                yield writer
        except OSError as exc:
            if exc.errno is None:
                raise
            raise _atomic.file_access_error(exc, path, "write") from exc
