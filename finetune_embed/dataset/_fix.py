"""Mechanical fixes: a cleaned copy of a file plus every line that could not be fixed, with its reasons.

Fixed: a byte-order mark, CRLF line endings, empty lines, duplicate keys (the last value is kept, as JSON
parsers do), unknown top-level and message keys (dropped), double-encoded tool-call arguments (decoded once),
exact duplicate examples (the first copy kept). Anything else that is an error sends the line to the rejected
file, with its original text and the reasons; nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._atomic import atomic_write
from .._lines import MAX_LINE_BYTES, LongLine, iter_lines, open_input
from ._checks import (
    _ROLE_KEYS,
    CHAT_KEYS,
    COMPLETION_KEYS,
    PREFERENCE_INPUT_KEYS,
    PREFERENCE_KEYS,
    RowChecker,
    detect_format,
    may_nest_too_deeply,
    nesting_exceeds,
    too_deep_message,
)
from ._profile import format_issues, resolve
from ._report import IssueCollector, ValidationReport

__all__ = ["FixResult", "fix_file", "fixed_paths"]

_BOM = b"\xef\xbb\xbf"
_TOP_KEYS = {"chat": CHAT_KEYS, "preference": PREFERENCE_KEYS, "completion": COMPLETION_KEYS}


@dataclass
class FixResult:
    """What :func:`fix_file` did. ``changes`` counts each kind of fix (``bom``, ``crlf``, ``blank_line``,
    ``duplicate_key``, ``unknown_key``, ``unknown_message_key``, ``double_encoded_arguments``,
    ``duplicate_example``); ``report`` is the validation of the fixed file (when asked for)."""

    fixed_path: Path
    rejected_path: Path
    n_lines: int = 0
    n_kept: int = 0
    n_changed: int = 0
    n_rejected: int = 0
    changes: dict[str, int] = field(default_factory=dict)
    report: ValidationReport | None = None

    def summary(self) -> str:
        """One paragraph for people."""
        what = ", ".join(f"{k} x{v}" for k, v in sorted(self.changes.items())) or "nothing to fix"
        return (
            f"{self.n_kept} example(s) written to {self.fixed_path} ({self.n_changed} changed: {what}); "
            f"{self.n_rejected} line(s) rejected to {self.rejected_path}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "fixed_path": str(self.fixed_path),
            "rejected_path": str(self.rejected_path),
            "n_lines": self.n_lines,
            "n_kept": self.n_kept,
            "n_changed": self.n_changed,
            "n_rejected": self.n_rejected,
            "changes": dict(sorted(self.changes.items())),
            "report": self.report.to_dict() if self.report is not None else None,
        }


def fixed_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``data.jsonl`` → ``data.fixed.jsonl``, ``data.rejected.jsonl``."""
    p = Path(path)
    stem = p.name[: -len(".jsonl")] if p.name.endswith(".jsonl") else p.stem
    return p.with_name(f"{stem}.fixed.jsonl"), p.with_name(f"{stem}.rejected.jsonl")


def _decode_twice(args: str) -> str | None:
    """The once-decoded arguments when ``args`` is double-encoded JSON of an object, else None."""
    try:
        inner = json.loads(args)
    except (ValueError, RecursionError):
        return None
    if not isinstance(inner, str):
        return None
    try:
        value = json.loads(inner)
    except (ValueError, RecursionError):
        return None
    return inner if isinstance(value, dict) else None


def _fix_messages(messages: Any, changes: list[str]) -> None:
    if not isinstance(messages, list):
        return
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        allowed = _ROLE_KEYS.get(role) if isinstance(role, str) else None
        if allowed is not None:
            for key in [k for k in m if k not in allowed]:
                del m[key]
                changes.append("unknown_message_key")
        calls = m.get("tool_calls")
        fns = [c.get("function") for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
        if isinstance(m.get("function_call"), dict):
            fns.append(m["function_call"])
        for fn in fns:
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                once = _decode_twice(fn["arguments"])
                if once is not None:
                    fn["arguments"] = once
                    changes.append("double_encoded_arguments")


def _fix_row(row: dict[str, Any], fmt: str, method: str | None, changes: list[str]) -> None:
    if method != "reinforcement":
        allowed = _TOP_KEYS[fmt]
        for key in [k for k in row if k not in allowed]:
            del row[key]
            changes.append("unknown_key")
    if fmt == "chat":
        _fix_messages(row.get("messages"), changes)
    elif fmt == "preference":
        inp = row.get("input")
        if isinstance(inp, dict):
            for key in [k for k in inp if k not in PREFERENCE_INPUT_KEYS]:
                del inp[key]
                changes.append("unknown_key")
            _fix_messages(inp.get("messages"), changes)
        for side in ("preferred_output", "non_preferred_output"):
            _fix_messages(row.get(side), changes)


def _dup_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        d["\x00dup"] = True  # marker removed below
    return d


def _strip_dup_markers(obj: Any) -> bool:
    found = False
    if isinstance(obj, dict):
        if obj.pop("\x00dup", None):
            found = True
        for v in obj.values():
            found = _strip_dup_markers(v) or found
    elif isinstance(obj, list):
        for v in obj:
            found = _strip_dup_markers(v) or found
    return found


def fix_file(
    path: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    rejected: str | os.PathLike[str] | None = None,
    model: str | None = None,
    method: str | None = None,
    dedupe: bool = True,
    validate: bool = True,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> FixResult:
    """Write the fixable lines of ``path`` to ``output`` (default ``<name>.fixed.jsonl``) and the others to
    ``rejected`` (default ``<name>.rejected.jsonl``; one JSON object per line: ``{"line", "reasons":
    [{"code", "path", "message"}], "text"}``). Both are written atomically. Streams: memory stays constant
    apart from 8 bytes per example for duplicate detection.

    A line over ``max_line_bytes`` (default 512 MB, the Files API's limit on a whole file) is never read whole:
    it is rejected with the code ``line_too_long``, its first 200 bytes as ``text`` and ``"truncated": true``.
    A device or a FIFO (``/dev/urandom``) is refused with :class:`~finetune_embed.FileAccessError` before any
    output is created; an interrupted run (an exception, Ctrl-C) leaves no temporary file."""
    from ._memory import canonical_digest
    from ._profile import check_int
    from ._stream import _detect_file_format, line_too_long_issue

    check_int("max_line_bytes", max_line_bytes, minimum=1)

    src = os.fspath(path)
    default_fixed, default_rejected = fixed_paths(src)
    fixed_path = Path(output) if output is not None else default_fixed
    rejected_path = Path(rejected) if rejected is not None else default_rejected
    resolved = resolve(model, method)
    fmt = _detect_file_format(src, max_line_bytes=max_line_bytes)  # refuses devices and FIFOs before any output
    if fmt is not None:
        format_issues(fmt, resolved)
    collector = IssueCollector(1 << 30)
    checker = RowChecker(resolved.profile, collector, fmt)
    decoder = json.JSONDecoder(object_pairs_hook=_dup_hook)
    result = FixResult(fixed_path, rejected_path)
    counts: dict[str, int] = {}
    seen: dict[int, int] = {}

    def reject(out: Any, line: int, raw: bytes, reasons: list[dict[str, Any]]) -> None:
        text = raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
        out.write(json.dumps({"line": line, "reasons": reasons, "text": text}, ensure_ascii=False) + "\n")
        result.n_rejected += 1

    with (
        open_input(src) as f,
        atomic_write(fixed_path) as good,
        atomic_write(rejected_path) as bad,
    ):
        for line, raw in enumerate(iter_lines(f, max_line_bytes=max_line_bytes), 1):
            result.n_lines += 1
            if isinstance(raw, LongLine):
                issue = line_too_long_issue(line, raw.length, max_line_bytes, raw.head)
                reason = {"code": issue.code.value, "path": "", "message": issue.message}
                text = raw.head.decode("utf-8", "backslashreplace")
                record = {"line": line, "reasons": [reason], "text": text, "truncated": True}
                bad.write(json.dumps(record, ensure_ascii=False) + "\n")
                result.n_rejected += 1
                continue
            changes: list[str] = []
            body = raw
            if body.startswith(_BOM):
                body = body[3:]
                changes.append("bom")
            if body.endswith(b"\r\n"):
                changes.append("crlf")
            body = body.strip()
            if not body:
                counts["blank_line"] = counts.get("blank_line", 0) + 1
                continue
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                reject(
                    bad,
                    line,
                    raw,
                    [{"code": "invalid_utf8", "path": "", "message": f"not UTF-8 at byte {exc.start + 1}"}],
                )
                continue
            try:
                row = decoder.decode(text)
            except (ValueError, RecursionError) as exc:
                reject(bad, line, raw, [{"code": "invalid_json", "path": "", "message": f"not valid JSON: {exc}"}])
                continue
            if may_nest_too_deeply(body) and nesting_exceeds(row):
                reason = {"code": "invalid_json", "path": "", "message": too_deep_message(f"Line {line}")}
                reject(bad, line, raw, [reason])
                continue
            if _strip_dup_markers(row):
                changes.append("duplicate_key")
            if isinstance(row, dict):
                row_fmt = detect_format(row)
                if row_fmt is not None and (fmt is None or row_fmt == fmt):
                    _fix_row(row, row_fmt, resolved.profile.method, changes)
            collector.issues.clear()
            checker._line = line
            checker.scan_strings(row)
            checker.check(row, line, None)
            errors = [i for i in collector.issues if i.severity == "error"]
            if errors:
                reject(bad, line, raw, [{"code": i.code.value, "path": i.path, "message": i.message} for i in errors])
                continue
            if dedupe:
                key = canonical_digest(row)
                first = seen.get(key)
                if first is not None:
                    reject(
                        bad,
                        line,
                        raw,
                        [{"code": "duplicate_example", "path": "", "message": f"an exact copy of line {first}"}],
                    )
                    counts["duplicate_example"] = counts.get("duplicate_example", 0) + 1
                    continue
                seen[key] = line
            good.write(json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) + "\n")
            result.n_kept += 1
            if changes:
                result.n_changed += 1
                for c in changes:
                    counts[c] = counts.get(c, 0) + 1
    result.changes = counts
    if validate:
        from ._stream import validate_path

        result.report = validate_path(fixed_path, model=model, method=method)
    return result
