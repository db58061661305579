"""Reading and writing JSONL: strict line reader and atomic writer."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from .. import _atomic
from .._exceptions import DatasetFormatError

__all__ = ["atomic_write_lines", "dump_line", "read_jsonl"]

_BOM = b"\xef\xbb\xbf"


def dump_line(row: Any) -> str:
    """One example as one JSON line (UTF-8 text, no ASCII escaping, no newline)."""
    return json.dumps(row, ensure_ascii=False, separators=(", ", ": "))


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, object)`` for each non-empty line; raises :class:`DatasetFormatError` at the first bad line."""
    name = os.fspath(path)
    try:
        f = open(name, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise DatasetFormatError(f"cannot read the file: {exc.strerror or exc}", path=name) from exc
    with f:
        for line, raw in enumerate(f, 1):
            body = raw.strip()
            if line == 1 and body.startswith(_BOM):
                body = body[3:].strip()
            if not body:
                continue
            try:
                obj = json.loads(body.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise DatasetFormatError(
                    f"not valid UTF-8 at byte {exc.start + 1}; re-save the file as UTF-8 (or run "
                    "`finetune-embed dataset validate` to list every problem)",
                    path=name,
                    line=line,
                ) from exc
            except (ValueError, RecursionError) as exc:
                raise DatasetFormatError(
                    f"not valid JSON ({exc}); each line must hold one JSON object (run `finetune-embed dataset "
                    "validate` to list every problem, `finetune-embed dataset fix` to set the bad lines aside)",
                    path=name,
                    line=line,
                ) from exc
            if not isinstance(obj, dict):
                raise DatasetFormatError(
                    f"the line is a JSON {type(obj).__name__}, not an object; each line must be one example "
                    'such as {"messages": [...]}',
                    path=name,
                    line=line,
                )
            yield line, obj


def atomic_write_lines(path: str | os.PathLike[str], lines: Iterable[str]) -> int:
    """Write ``lines`` (each without its newline) to ``path`` atomically (see :mod:`finetune_embed._atomic`):
    UTF-8, LF, the permissions ``open()`` would give. Returns the number of lines written."""
    return _atomic.atomic_write_lines(path, lines)
