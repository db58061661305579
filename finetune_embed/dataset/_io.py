"""Reading and writing JSONL: strict line reader and atomic writer."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from .. import _atomic
from .._exceptions import DatasetFormatError
from .._lines import MAX_LINE_BYTES, read_lines
from ._checks import may_nest_too_deeply, nesting_exceeds, too_deep_message

__all__ = ["atomic_write_lines", "dump_line", "read_jsonl"]

_BOM = b"\xef\xbb\xbf"


def dump_line(row: Any) -> str:
    """One example as one JSON line (UTF-8 text, no ASCII escaping, no newline); NaN and Infinity, which are not
    JSON, raise ``ValueError``."""
    return json.dumps(row, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)


def read_jsonl(
    path: str | os.PathLike[str], *, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, object)`` for each non-empty line; raises :class:`DatasetFormatError` at the first bad line
    (:class:`LineTooLongError` for a line over ``max_line_bytes``, never read whole) and
    :class:`~finetune_embed.FileAccessError` for a file that cannot be read, or is a device or a FIFO."""
    name = os.fspath(path)
    for line, raw in read_lines(name, max_line_bytes=max_line_bytes):
        body = raw.strip()
        if line == 1 and body.startswith(_BOM):
            body = body[3:].strip()
        if not body:
            continue
        try:
            obj = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError as exc:
            raise DatasetFormatError(
                f"not valid UTF-8 at byte {exc.start + 1}; re-save the file as UTF-8 (or run "
                "`finetune-embed dataset validate` to list every problem)",
                path=name,
                line=line,
            ) from exc
        except (ValueError, RecursionError) as exc:
            raise DatasetFormatError(
                f"not valid JSON ({_json_reason(exc)}); each line must hold one JSON object (run `finetune-embed "
                "dataset validate` to list every problem, `finetune-embed dataset fix` to set the bad lines aside)",
                path=name,
                line=line,
            ) from exc
        if may_nest_too_deeply(body) and nesting_exceeds(obj):
            raise DatasetFormatError(too_deep_message("the line"), path=name, line=line)
        if not isinstance(obj, dict):
            raise DatasetFormatError(
                f"the line is a JSON {type(obj).__name__}, not an object; each line must be one example "
                'such as {"messages": [...]}',
                path=name,
                line=line,
            )
        yield line, obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (use null or a number)")  # never escapes: read_jsonl catches it


def _json_reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def atomic_write_lines(path: str | os.PathLike[str], lines: Iterable[str]) -> int:
    """Write ``lines`` (each without its newline) to ``path`` atomically (see :mod:`finetune_embed._atomic`):
    UTF-8, LF, the permissions ``open()`` would give. Returns the number of lines written."""
    return _atomic.atomic_write_lines(path, lines)
