"""An index's items to and from Apache Parquet (pyarrow, the ``parquet`` extra).

The file has an ``id`` text column, the vectors as an Arrow fixed-size list of float32 (one list per row) and,
when any item has metadata, a ``metadata`` column of JSON text (exact for any JSON value; DuckDB's ``json``
functions and ``json.loads`` read it). The schema metadata records the metric, storage dtype, model and dimension,
which :func:`index_from_parquet` restores.

Reading also takes files written elsewhere (pandas, DuckDB, Hugging Face ``datasets``): the vectors may be
fixed-size or plain lists of any float or integer type, ids come from an ``id`` column or the row numbers, and
the other columns become metadata. Float32 vectors without nulls go from Arrow's buffers into numpy without a
copy; the file is read one row group batch at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._arrow import atomic_parquet_writer, import_pyarrow, read_parquet_file
from .._exceptions import ConfigError, DatasetFormatError, InvalidArgumentError

if TYPE_CHECKING:
    from ._index import DTypeLike, EmbeddingIndex, Metric

__all__ = ["INDEX_KEY", "index_from_parquet", "index_to_parquet", "vectors_from_arrow"]

INDEX_KEY = b"finetune_embed.index"
_FORMAT = 1
_BATCH_ROWS = 65536
_META_COLUMN = "metadata"


def vectors_from_arrow(pa: Any, column: Any, *, name: str, path: str, first_row: int) -> npt.NDArray[np.float32]:
    """An ``(n, dim)`` float32 array of one Arrow list column (a chunk or a chunked array); a view of Arrow's
    buffer when the values are float32 and the column has no nulls, else a copy."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    typ = column.type
    if not (pa.types.is_fixed_size_list(typ) or pa.types.is_list(typ) or pa.types.is_large_list(typ)):
        raise DatasetFormatError(
            f"column {name!r} holds {typ}, not lists of numbers; pass embedding_column= naming the vector column",
            path=path,
        )
    value_type = typ.value_type
    if not (pa.types.is_floating(value_type) or pa.types.is_integer(value_type)):
        raise DatasetFormatError(f"column {name!r} holds lists of {value_type}, not of numbers", path=path)
    n = len(column)
    if column.null_count:
        row = first_row + int(np.flatnonzero(np.asarray(column.is_null()))[0])
        raise DatasetFormatError(f"row {row}: the vector in column {name!r} is null", path=path)
    if pa.types.is_fixed_size_list(typ):
        dim = typ.list_size
    else:
        lengths = np.asarray(column.value_lengths())
        if n and (lengths != lengths[0]).any():
            bad = int(np.flatnonzero(lengths != lengths[0])[0])
            raise DatasetFormatError(
                f"row {first_row + bad}: the vector in column {name!r} has {int(lengths[bad])} numbers; row "
                f"{first_row} has {int(lengths[0])}",
                path=path,
            )
        dim = int(lengths[0]) if n else 0
    values = column.flatten()  # the values of this slice only (offsets applied), no copy
    if values.null_count:
        at = int(np.flatnonzero(np.asarray(values.is_null()))[0])
        raise DatasetFormatError(
            f"row {first_row + at // max(dim, 1)}: the vector in column {name!r} holds a null number", path=path
        )
    flat = values.to_numpy(zero_copy_only=False)
    if flat.dtype != np.float32:
        flat = flat.astype(np.float32)
    if dim == 0:
        raise DatasetFormatError(f"the vectors in column {name!r} are empty", path=path)
    matrix: npt.NDArray[np.float32] = flat.reshape(n, dim)
    return matrix


def index_to_parquet(
    index: EmbeddingIndex, path: str | os.PathLike[str], *, vector_column: str, batch_size: int = _BATCH_ROWS
) -> int:
    """Write ``index``'s items to ``path``; see :meth:`EmbeddingIndex.to_parquet`."""
    pa, pq = import_pyarrow("EmbeddingIndex.to_parquet")
    if not isinstance(vector_column, str) or vector_column in ("id", _META_COLUMN) or not vector_column:
        raise InvalidArgumentError(
            f"vector_column must be a column name other than 'id' and 'metadata', not {vector_column!r}",
            argument="vector_column",
        )
    dim = index.dim or 0
    info = {"format": _FORMAT, "metric": index.metric, "dtype": index.dtype, "model": index.model, "dim": index.dim}
    has_meta = any(index.metadata)
    fields = [pa.field("id", pa.string(), nullable=False), pa.field(vector_column, pa.list_(pa.float32(), dim))]
    if has_meta:
        fields.append(pa.field(_META_COLUMN, pa.string()))
    schema = pa.schema(fields, metadata={INDEX_KEY: json.dumps(info).encode()})
    written = 0
    with atomic_parquet_writer(pq, path, schema) as writer:
        for ids, vectors, metas in index.iter_items(batch_size):
            flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))  # no copy
            columns = [pa.array(ids, type=pa.string()), pa.FixedSizeListArray.from_arrays(flat, dim)]
            if has_meta:
                columns.append(pa.array([json.dumps(m, ensure_ascii=False) if m else None for m in metas], pa.string()))
            writer.write_batch(pa.record_batch(columns, schema=schema))
            written += len(ids)
    return written


def index_from_parquet(
    path: str | os.PathLike[str],
    *,
    embedding_column: str,
    id_column: str | None,
    metadata_columns: Sequence[str] | None,
    metric: Metric | None,
    dtype: DTypeLike | None,
    model: str | None,
    spill_dir: str | os.PathLike[str] | None,
) -> EmbeddingIndex:
    """Build an index from a Parquet file; see :meth:`EmbeddingIndex.from_parquet`."""
    from ._index import EmbeddingIndex

    pa, pq = import_pyarrow("EmbeddingIndex.from_parquet")

    name = os.fspath(path)
    file = read_parquet_file(pq, name, "EmbeddingIndex.from_parquet")
    schema = file.schema_arrow
    columns = list(schema.names)
    info = _info(schema.metadata or {}, name)
    if embedding_column not in columns:
        raise DatasetFormatError(
            f"no column {embedding_column!r} (columns: {', '.join(columns)}); pass embedding_column=", path=name
        )
    if id_column is not None and id_column not in columns:
        raise DatasetFormatError(f"no id column {id_column!r} (columns: {', '.join(columns)})", path=name)
    ids_from = id_column if id_column is not None else ("id" if "id" in columns else None)
    json_meta = info is not None and metadata_columns is None and _META_COLUMN in columns
    if metadata_columns is None:
        meta_cols = [] if info is not None else [c for c in columns if c not in (embedding_column, ids_from)]
        if json_meta:
            meta_cols = [_META_COLUMN]
    else:
        if isinstance(metadata_columns, str):
            raise InvalidArgumentError(
                "metadata_columns must be a list of column names, not one string", argument="metadata_columns"
            )
        missing = [c for c in metadata_columns if c not in columns]
        if missing:
            raise DatasetFormatError(f"no metadata columns {missing} (columns: {', '.join(columns)})", path=name)
        meta_cols = list(metadata_columns)
    stored = info or {}
    index = EmbeddingIndex(
        stored.get("dim"),
        metric=metric if metric is not None else stored.get("metric", "cosine"),
        dtype=dtype if dtype is not None else stored.get("dtype", np.float32),
        model=model if model is not None else stored.get("model"),
        spill_dir=spill_dir,
    )
    wanted = [embedding_column, *([ids_from] if ids_from else []), *meta_cols]
    row = 1
    try:
        for batch in file.iter_batches(batch_size=_BATCH_ROWS, columns=list(dict.fromkeys(wanted))):
            vectors = vectors_from_arrow(
                pa, batch.column(embedding_column), name=embedding_column, path=name, first_row=row
            )
            n = len(vectors)
            if ids_from is None:
                ids = [str(i) for i in range(row - 1, row - 1 + n)]
            else:
                ids = _ids(batch.column(ids_from), ids_from, name, row)
            if json_meta:
                metas = _json_metadata(batch.column(_META_COLUMN).to_pylist(), name, row)
            else:
                cells = {c: batch.column(c).to_pylist(maps_as_pydicts="strict") for c in meta_cols}
                metas = [{c: _json_value(cells[c][i]) for c in meta_cols} for i in range(n)]
            index.add(ids, vectors, metas)
            row += n
    except OSError as exc:
        from .._atomic import file_access_error

        raise file_access_error(exc, name, "read") from exc
    return index


def _info(meta: dict[bytes, bytes], name: str) -> dict[str, Any] | None:
    raw = meta.get(INDEX_KEY)
    if raw is None:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        info = None
    if not isinstance(info, dict) or info.get("format") != _FORMAT:
        raise DatasetFormatError(
            f"the file's {INDEX_KEY.decode()} schema metadata is not one this version wrote (format {_FORMAT}); "
            "write it again with EmbeddingIndex.to_parquet, or upgrade finetune-embed",
            path=name,
        )
    return info


def _ids(column: Any, column_name: str, name: str, first_row: int) -> list[str]:
    values = column.to_pylist()
    out: list[str] = []
    for i, v in enumerate(values):
        if v is None or v == "":
            raise DatasetFormatError(f"row {first_row + i}: empty id in column {column_name!r}", path=name)
        out.append(v if isinstance(v, str) else str(v))
    return out


def _json_metadata(values: list[str | None], name: str, first_row: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, text in enumerate(values):
        if text is None:
            out.append({})
            continue
        try:
            value = json.loads(text)
        except (TypeError, ValueError, RecursionError) as exc:
            raise DatasetFormatError(f"row {first_row + i}: the metadata is not JSON ({exc})", path=name) from None
        if not isinstance(value, dict):
            raise DatasetFormatError(f"row {first_row + i}: the metadata is not a JSON object", path=name)
        out.append(value)
    return out


def _json_value(value: Any) -> Any:
    """A metadata value as JSON: dates and times as ISO text, bytes refused (with the column named by the index)."""
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        raise ConfigError("a metadata column holds binary data, which JSON metadata cannot hold; pass "
                          "metadata_columns= without it.")
    return value
