"""Datasets to and from Apache Parquet (pyarrow, the ``parquet`` extra).

Each top-level key of the examples is one column. A column is stored natively (``messages`` as a list of
structs, ``prompt`` as text, ...) when Arrow gives back exactly the values it was given; otherwise (text in some
rows and a list of content parts in others, ints and floats mixed, empty objects, JSON schemas whose keys differ)
it is stored as JSON text, and the file's schema metadata names those columns so that :func:`read_parquet`
decodes them. Writing and reading back therefore gives the same examples.

Arrow stores a list of objects as structs with the union of their keys, so an object that lacks a key reads
back with that key set to null. Reading drops such null fields again (a message's ``content`` excepted: a null
``content`` is meaningful next to ``tool_calls``); that is also what files written by pandas, DuckDB or Hugging
Face ``datasets`` need.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

from .._arrow import import_pyarrow, read_parquet_file, write_parquet_atomic
from .._exceptions import DatasetFormatError, InvalidArgumentError

__all__ = ["JSON_COLUMNS_KEY", "drop_absent", "read_parquet", "rows_from_arrow", "write_parquet"]

JSON_COLUMNS_KEY = b"finetune_embed.json_columns"
_KEEP_NULL = frozenset({"content"})  # a null here means something (an assistant turn that only calls tools)
_BATCH_ROWS = 4096


def drop_absent(value: Any) -> Any:
    """``value`` with every null field of every object removed (``content`` excepted), recursively."""
    if isinstance(value, dict):
        return {k: drop_absent(v) for k, v in value.items() if v is not None or k in _KEEP_NULL}
    if isinstance(value, list):
        return [drop_absent(v) for v in value]
    return value


def _canonical(value: Any) -> str:
    """A text that differs whenever two JSON values differ (``1`` and ``1.0`` and ``True`` included)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=True, default=repr)


def _has_empty_struct(pa: Any, typ: Any) -> bool:
    """Parquet cannot store a struct without fields (an empty object in every row)."""
    if pa.types.is_struct(typ):
        return typ.num_fields == 0 or any(_has_empty_struct(pa, typ.field(i).type) for i in range(typ.num_fields))
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return bool(_has_empty_struct(pa, typ.value_type))
    return False


def _native_column(pa: Any, values: list[Any]) -> Any | None:
    """The Arrow array of ``values`` (``None`` = absent) if it reads back exactly, else ``None``."""
    try:
        array = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError, RecursionError):
        return None
    if _has_empty_struct(pa, array.type):
        return None
    back = array.to_pylist()
    for given, got in zip(values, back, strict=True):
        if given is None:
            if got is not None:  # pragma: no cover - Arrow keeps nulls
                return None
            continue
        if got is None or _canonical(drop_absent(got)) != _canonical(given):
            return None
    return array


def write_parquet(
    rows: Sequence[dict[str, Any]], lines: Sequence[int | None], path: str | os.PathLike[str], source: str | None
) -> int:
    """Write ``rows`` to ``path`` as Parquet, atomically; see :meth:`Dataset.to_parquet`."""
    pa, pq = import_pyarrow("Dataset.to_parquet")
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    arrays: list[Any] = []
    json_columns: list[str] = []
    for key in keys:
        values = [row.get(key) for row in rows]
        explicit_null = any(key in row and row[key] is None for row in rows)  # Arrow would read it as absent
        native = None if explicit_null else _native_column(pa, values)
        if native is None:
            native = pa.array([_json_cell(row, key, i, lines, source) for i, row in enumerate(rows)], type=pa.string())
            json_columns.append(key)
        arrays.append(native)
    schema_meta = {JSON_COLUMNS_KEY: json.dumps(json_columns).encode()}
    if keys:
        table = pa.Table.from_arrays(arrays, names=list(keys))
    else:  # no example has any key: an empty table still records how many rows there were
        table = pa.table({"_": pa.nulls(len(rows))}) if rows else pa.table({})
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **schema_meta})
    write_parquet_atomic(pq, table, path)
    return len(rows)


def _json_cell(
    row: dict[str, Any], key: str, index: int, lines: Sequence[int | None], source: str | None
) -> str | None:
    if key not in row:
        return None
    try:
        return json.dumps(row[key], ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        line = lines[index] if index < len(lines) else None
        where = f"example {index}" + (f" (line {line})" if line is not None else "")
        raise DatasetFormatError(
            f"{where}: the value of {key!r} cannot be stored ({exc}); convert it to a string, number, list or dict "
            "(NaN and Infinity to null or a number)",
            path=source,
        ) from None


def rows_from_arrow(
    batch: Any, json_columns: frozenset[str], *, path: str | None = None, first_row: int = 1
) -> Iterator[dict[str, Any]]:
    """The examples of one Arrow table or record batch: nulls are absent keys, JSON columns decoded, absent
    struct fields dropped (see the module's doc)."""
    names: list[str] = list(batch.schema.names)
    columns = [_pylist(batch.column(i)) for i in range(len(names))]
    for offset in range(batch.num_rows):
        row: dict[str, Any] = {}
        for name, column in zip(names, columns, strict=True):
            value = column[offset]
            if value is None:
                continue
            if name in json_columns:
                try:
                    row[name] = json.loads(value)
                except (TypeError, ValueError, RecursionError) as exc:
                    raise DatasetFormatError(
                        f"row {first_row + offset}: column {name!r} should hold JSON text ({exc})", path=path
                    ) from None
            else:
                row[name] = drop_absent(value)
        yield row


def _pylist(column: Any) -> list[Any]:
    """The Python values of one Arrow column, with Arrow's JSON extension type (``arrow.json``, which Hugging Face
    ``datasets`` uses for objects whose keys vary) decoded."""
    values: list[Any] = column.to_pylist(maps_as_pydicts="strict")
    if not _has_json(column.type):
        return values
    return [_decode_json(v, column.type) for v in values]


def _has_json(typ: Any) -> bool:
    if getattr(typ, "extension_name", None) == "arrow.json":
        return True
    if typ.num_fields and hasattr(typ, "field"):
        return any(_has_json(typ.field(i).type) for i in range(typ.num_fields))
    value_type = getattr(typ, "value_type", None)
    return value_type is not None and _has_json(value_type)


def _decode_json(value: Any, typ: Any) -> Any:
    if value is None:
        return None
    if getattr(typ, "extension_name", None) == "arrow.json":
        return json.loads(value) if isinstance(value, str | bytes) else value
    if isinstance(value, list) and getattr(typ, "value_type", None) is not None:
        return [_decode_json(v, typ.value_type) for v in value]
    if isinstance(value, dict) and typ.num_fields and hasattr(typ, "field"):
        types = {typ.field(i).name: typ.field(i).type for i in range(typ.num_fields)}
        return {k: _decode_json(v, types[k]) if k in types else v for k, v in value.items()}
    return value


def read_parquet(
    path: str | os.PathLike[str], columns: Sequence[str] | None
) -> tuple[list[dict[str, Any]], list[int | None]]:
    """The examples of a Parquet file and their 1-based row numbers; see :meth:`Dataset.from_parquet`."""
    _, pq = import_pyarrow("Dataset.from_parquet")
    name = os.fspath(path)
    file = read_parquet_file(pq, name, "Dataset.from_parquet")
    schema = file.schema_arrow
    if columns is not None:
        if isinstance(columns, str):
            raise InvalidArgumentError("columns must be a list of column names, not one string", argument="columns")
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise DatasetFormatError(
                f"no column {', '.join(map(repr, missing))} (columns: {', '.join(schema.names)}); check columns=",
                path=name,
            )
    meta = schema.metadata or {}
    json_columns = _json_columns(meta.get(JSON_COLUMNS_KEY), name)
    rows: list[dict[str, Any]] = []
    try:
        for batch in file.iter_batches(batch_size=_BATCH_ROWS, columns=list(columns) if columns is not None else None):
            rows.extend(rows_from_arrow(batch, json_columns, path=name, first_row=len(rows) + 1))
    except OSError as exc:
        from .._atomic import file_access_error

        raise file_access_error(exc, name, "read") from exc
    return rows, list(range(1, len(rows) + 1))


def _json_columns(raw: bytes | None, name: str) -> frozenset[str]:
    if raw is None:
        return frozenset()
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DatasetFormatError(
            f"the file's schema metadata {JSON_COLUMNS_KEY.decode()} is not a list of column names; the file was "
            "changed after Dataset.to_parquet wrote it",
            path=name,
        )
    return frozenset(value)
