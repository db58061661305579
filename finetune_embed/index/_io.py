"""Reading embeddings from the seed's CSV format (stringified lists) and from pandas, streaming and safely;
writing an index's items to pandas.

The cookbook stores each embedding as the text of a list, ``"[0.0023, -0.0091, ...]"``, and reloads it with
``eval``. Here each cell is parsed as JSON (never evaluated), row by row, with errors naming the line.

Cells may be large (a 3072-dimension embedding is ~70 kB of text, a review text column more): Python's
``csv.field_size_limit`` is process-wide, so :func:`index_from_csv` raises it only for the duration of the call
(an eager loop, never a generator left suspended) and restores the caller's value when it returns or fails
(``finetune_embed._lines.csv_field_limit``). Lines stay bounded, and devices and FIFOs are refused.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._atomic import file_access_error
from .._exceptions import ConfigError, DatasetFormatError, DuplicateIdError, FileAccessError, InvalidVectorError
from .._lines import MAX_LINE_BYTES, bounded_text_lines, csv_field_limit, open_input

if TYPE_CHECKING:
    import pandas as pd

    from ._index import EmbeddingIndex

__all__ = ["convert_cell", "index_from_csv", "index_from_pandas", "items_frame", "parse_vector"]

_CHUNK = 4096


def parse_vector(text: str, *, path: str | None = None, line: int | None = None, column: str = "") -> list[float]:
    """Parse one stringified list of numbers (``"[0.1, -0.2]"``) without evaluating it.

    Raises:
        DatasetFormatError: not a JSON list of numbers (the message names the file, line and column).
    """
    where = f" in column {column!r}" if column else ""
    stripped = text.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        shown = stripped[:40] + ("..." if len(stripped) > 40 else "")
        raise DatasetFormatError(
            f"expected a list of numbers like [0.1, -0.2]{where}, got {shown!r}.", path=path, line=line
        )
    try:
        values = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(
            f"the vector{where} is not a valid list of numbers ({exc.msg} at character {exc.pos}).",
            path=path,
            line=line,
        ) from None
    except RecursionError:
        raise DatasetFormatError(
            f"the vector{where} nests lists too deeply; give a flat list of numbers like [0.1, -0.2].",
            path=path,
            line=line,
        ) from None
    if not isinstance(values, list) or not values:
        raise DatasetFormatError(f"the vector{where} is empty.", path=path, line=line)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float):
            shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
            raise DatasetFormatError(
                f"item {i} of the vector{where} is {shown}, not a number.", path=path, line=line
            )
        if isinstance(v, int):
            try:
                float(v)
            except OverflowError:
                raise DatasetFormatError(
                    f"item {i} of the vector{where} is an integer of {len(str(abs(v)))} digits, too large for a "
                    "float.",
                    path=path,
                    line=line,
                ) from None
        elif not math.isfinite(v):
            raise DatasetFormatError(f"item {i} of the vector{where} is {v}.", path=path, line=line)
    return values


def convert_cell(text: str) -> Any:
    """A CSV cell as a JSON value: ``""`` → None; text that round-trips as an int or a finite float becomes
    that number ("007" and "1e3" stay text); anything else stays text."""
    if text == "":
        return None
    stripped = text.strip()
    if stripped != text:
        return text
    try:
        number = int(text)
    except ValueError:
        pass
    else:
        return number if str(number) == text else text
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value) or repr(value) != text:
        return text
    return value


def _rows(path: Path, encoding: str) -> Generator[tuple[int, list[str]], None, None]:
    """(line number, fields) for the header and then each record; a quoted cell may span lines."""
    # a device or a FIFO is refused and lines are bounded (finetune_embed._lines)
    with open_input(path) as raw:
        try:
            f = io.TextIOWrapper(raw, encoding=encoding, newline="")
        except LookupError:
            raise ConfigError(f"unknown encoding {encoding!r}; pass a codec Python knows, such as 'utf-8'.") from None
        reader = csv.reader(bounded_text_lines(f, path=str(path)))
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                raise DatasetFormatError("the file is empty (no header row).", path=str(path), line=1)
            yield reader.line_num, header
            start = reader.line_num + 1
            for row in reader:
                yield start, row
                start = reader.line_num + 1
        except csv.Error as exc:
            raise _csv_error(exc, str(path), start) from None


def _csv_error(exc: csv.Error, name: str, line: int) -> DatasetFormatError:
    return DatasetFormatError(f"not a valid CSV file ({exc}).", path=name, line=line)


def index_from_csv(
    path: str | os.PathLike[str],
    *,
    embedding_column: str = "embedding",
    id_column: str | None = None,
    metadata_columns: Sequence[str] | None = None,
    infer_types: bool = True,
    encoding: str = "utf-8",
    **index_options: Any,
) -> EmbeddingIndex:
    """Build an index from a CSV file with one embedding per row; see :meth:`EmbeddingIndex.from_csv`."""
    with csv_field_limit(MAX_LINE_BYTES):  # process-wide: raised for this call only, then restored
        return _index_from_csv(path, embedding_column, id_column, metadata_columns, infer_types, encoding,
                               index_options)


def _index_from_csv(
    path: str | os.PathLike[str],
    embedding_column: str,
    id_column: str | None,
    metadata_columns: Sequence[str] | None,
    infer_types: bool,
    encoding: str,
    index_options: dict[str, Any],
) -> EmbeddingIndex:
    from ._index import EmbeddingIndex

    file = Path(path)
    name = str(file)
    index = EmbeddingIndex(**index_options)
    rows = _rows(file, encoding)
    try:
        _, header = next(rows)
        columns = {c: i for i, c in enumerate(header)}
        if embedding_column not in columns:
            raise DatasetFormatError(
                f"no column {embedding_column!r}; the columns are {header}. Pass embedding_column=.",
                path=name,
                line=1,
            )
        if id_column is not None and id_column not in columns:
            raise DatasetFormatError(f"no id column {id_column!r}; the columns are {header}.", path=name, line=1)
        if metadata_columns is None:
            meta_cols = [c for c in header if c not in (embedding_column, id_column) and c != ""]
        else:
            missing = [c for c in metadata_columns if c not in columns]
            if missing:
                raise DatasetFormatError(
                    f"no metadata columns {missing}; the columns are {header}.", path=name, line=1
                )
            meta_cols = list(metadata_columns)
        emb_at = columns[embedding_column]
        id_at = None if id_column is None else columns[id_column]
        meta_at = [(c, columns[c]) for c in meta_cols]
        convert: Callable[[str], Any] = convert_cell if infer_types else (lambda s: s)
        seen: dict[str, int] = {}
        ids: list[str] = []
        vectors: list[list[float]] = []
        metas: list[dict[str, Any]] = []
        lines: list[int] = []
        number = 0
        for line, row in rows:
            if not row:
                continue
            if len(row) != len(header):
                raise DatasetFormatError(
                    f"the row has {len(row)} fields but the header has {len(header)}.", path=name, line=line
                )
            item_id = str(number) if id_at is None else row[id_at]
            number += 1
            if not item_id:
                raise DatasetFormatError(f"empty id in column {id_column!r}.", path=name, line=line)
            if item_id in seen:
                raise DuplicateIdError(
                    f"{name}:{line}: id {item_id!r} already appeared on line {seen[item_id]}.", ids=[item_id]
                )
            seen[item_id] = line
            vec = parse_vector(row[emb_at], path=name, line=line, column=embedding_column)
            if (vectors and len(vec) != len(vectors[0])) or (index.dim is not None and len(vec) != index.dim):
                expected = index.dim or len(vectors[0])
                raise DatasetFormatError(
                    f"the vector in column {embedding_column!r} has {len(vec)} numbers; earlier rows have "
                    f"{expected}.",
                    path=name,
                    line=line,
                )
            ids.append(item_id)
            vectors.append(vec)
            metas.append({c: convert(row[i]) for c, i in meta_at})
            lines.append(line)
            if len(ids) >= _CHUNK:
                _flush(index, ids, vectors, metas, lines, name)
        _flush(index, ids, vectors, metas, lines, name)
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(f"the file is not {encoding} ({exc}); pass encoding=.", path=name) from None
    except FileAccessError:
        raise
    except OSError as exc:
        raise file_access_error(exc, name, "read") from None
    finally:
        rows.close()
    return index


def _flush(
    index: EmbeddingIndex,
    ids: list[str],
    vectors: list[list[float]],
    metas: list[dict[str, Any]],
    lines: list[int],
    name: str,
) -> None:
    if not ids:
        return
    try:
        index.add(ids, np.asarray(vectors, dtype=np.float64), metas)
    except InvalidVectorError as exc:
        where = dict(zip(ids, lines, strict=True))
        first = exc.ids[0] if exc.ids else None
        line = where.get(first) if first is not None else None
        raise InvalidVectorError(
            f"{name}:{line}: {exc.message}" if line else f"{name}: {exc.message}", ids=exc.ids
        ) from None
    ids.clear()
    vectors.clear()
    metas.clear()
    lines.clear()


def _json_value(value: Any) -> Any:
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None  # pandas marks missing values with NaN, NaT or NA
    if isinstance(value, np.generic):
        value = value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def index_from_pandas(
    frame: pd.DataFrame,
    *,
    embedding_column: str = "embedding",
    id_column: str | None = None,
    metadata_columns: Sequence[str] | None = None,
    **index_options: Any,
) -> EmbeddingIndex:
    """Build an index from a DataFrame; see :meth:`EmbeddingIndex.from_pandas`."""
    from ._index import EmbeddingIndex

    if embedding_column not in frame.columns:
        raise ConfigError(f"no column {embedding_column!r}; the columns are {list(frame.columns)}.")
    if id_column is not None and id_column not in frame.columns:
        raise ConfigError(f"no id column {id_column!r}; the columns are {list(frame.columns)}.")
    if metadata_columns is None:
        meta_cols = [c for c in frame.columns if c not in (embedding_column, id_column)]
    else:
        missing = [c for c in metadata_columns if c not in frame.columns]
        if missing:
            raise ConfigError(f"no metadata columns {missing}; the columns are {list(frame.columns)}.")
        meta_cols = list(metadata_columns)
    ids = [str(i) for i in (frame.index if id_column is None else frame[id_column])]
    cells = frame[embedding_column].tolist()
    vectors: list[Any] = []
    for pos, cell in enumerate(cells):
        if isinstance(cell, str):
            cell = parse_vector(cell, line=None, column=f"{embedding_column}, row {pos} (id {ids[pos]!r})")
        vectors.append(cell)
    matrix: npt.NDArray[Any] | list[Any]
    try:
        matrix = np.asarray(vectors, dtype=np.float64) if vectors else np.zeros((0, 0))
    except (ValueError, TypeError):
        matrix = vectors  # ragged: let add() name the rows of the wrong length
    records = frame[meta_cols].to_dict(orient="records") if meta_cols else [{} for _ in ids]
    metas: list[Mapping[str, Any]] = [
        {str(k): _json_value(v) for k, v in rec.items()} for rec in records
    ]
    index = EmbeddingIndex(**index_options)
    if ids:
        index.add(ids, matrix, metas)
    return index


def items_frame(
    ids: list[str], vectors: list[npt.NDArray[np.float32]], metadata: list[dict[str, Any]], vector_column: str
) -> pd.DataFrame:
    """The ``to_pandas`` frame of both index backends: an ``id`` column, a ``vector_column`` of arrays and one
    column per top-level metadata key (a key named like those columns becomes ``metadata.<key>``)."""
    import pandas as pd

    frame = pd.DataFrame({"id": ids, vector_column: vectors})
    meta = pd.DataFrame(metadata, index=frame.index)
    for col in meta.columns:
        name = col if col not in ("id", vector_column) else f"metadata.{col}"
        frame[name] = meta[col].to_numpy()
    return frame
