"""Validation and stats of examples held in memory (``Dataset.validate`` / ``Dataset.stats``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any, NamedTuple

from .._exceptions import DatasetFormatError
from ._checks import (
    Profile,
    RowChecker,
    detect_format,
    digest,
    may_nest_too_deeply,
    near_key,
    nesting_exceeds,
    too_deep_message,
)
from ._codes import IssueCode as C
from ._profile import check_options, format_issues, resolve
from ._report import IssueCollector, ValidationReport
from ._stream import MIN_EXAMPLES, _file_issue, add_count_issue, add_duplicate_issues, finish_stats

__all__ = ["ExampleTokens", "canonical_digest", "near_digest", "near_text", "token_counts", "validate_rows"]


def _canonical_bytes(row: Any) -> bytes:
    """An example's canonical JSON (sorted keys) as UTF-8; raises :class:`DatasetFormatError` when it nests too
    deeply for the encoder."""
    try:
        try:
            text = json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)
        except (TypeError, ValueError):
            text = repr(row)
    except RecursionError:
        raise DatasetFormatError(too_deep_message("an example")) from None
    return text.encode("utf-8", "replace")


def canonical_digest(row: Any) -> int:
    """Digest of an example's canonical JSON (sorted keys): equal for equal examples."""
    return digest(_canonical_bytes(row))


def _message_texts(messages: Any, out: list[str]) -> None:
    if not isinstance(messages, list):
        return
    for m in messages:
        if isinstance(m, dict) and m.get("role") not in ("system", "developer"):
            content = m.get("content")
            if isinstance(content, str):
                out.append(content)


def near_text(row: Any) -> str:
    """The text near-duplicate detection compares: the conversation without system prompts (or the prompt and
    completion); :func:`near_digest` folds case and drops whitespace."""
    parts: list[str] = []
    if isinstance(row, dict):
        if "messages" in row:
            _message_texts(row.get("messages"), parts)
        elif "input" in row or "preferred_output" in row:
            inp = row.get("input")
            if isinstance(inp, dict):
                _message_texts(inp.get("messages"), parts)
            for side in ("preferred_output", "non_preferred_output"):
                _message_texts(row.get(side), parts)
        else:
            parts.extend(row[k] for k in ("prompt", "completion") if isinstance(row.get(k), str))
    return "\x1f".join(parts)


def near_digest(row: Any) -> int:
    """Digest of :func:`near_text`."""
    return near_key(near_text(row))


def validate_rows(
    rows: Sequence[Any],
    lines: Sequence[int | None] | None = None,
    *,
    name: str | None = None,
    model: str | None = None,
    method: str | None = None,
    max_issues: int = 1000,
    stats: bool = False,
    counting: str = "model",
    n_epochs: int | None = None,
    on: date | None = None,
    provider: str = "openai",
    max_example_tokens: int | None = None,
    min_examples: int = MIN_EXAMPLES,
    validation_rows: Sequence[Any] | None = None,
) -> ValidationReport:
    """Validate examples in memory; line numbers are the rows' source lines (or their 1-based positions)."""
    check_options(max_issues=max_issues, n_epochs=n_epochs, min_examples=min_examples)
    resolved = resolve(
        model,
        method,
        counting=counting,
        want_stats=stats,
        on=on,
        provider=provider,
        max_example_tokens=max_example_tokens,
    )
    collector = IssueCollector(max_issues)
    for issue in resolved.issues:
        _file_issue(collector, issue)
    fmt = next((f for f in (detect_format(r) for r in rows if isinstance(r, dict)) if f is not None), None)
    if fmt is not None:
        for issue in format_issues(fmt, resolved):
            _file_issue(collector, issue)
    checker = RowChecker(resolved.profile, collector, fmt)
    for pos, row in enumerate(rows):
        line = (lines[pos] if lines is not None else None) or pos + 1
        checker._line = line
        try:
            canonical = _canonical_bytes(row)
        except DatasetFormatError:
            canonical = None
        if canonical is None or (may_nest_too_deeply(canonical) and nesting_exceeds(row)):
            checker.emit(C.INVALID_JSON, (), too_deep_message(f"Example {line}"))
            continue
        checker.scan_strings(row)
        checker.check(row, line, digest(canonical))
    duplicate_lines = checker.dups.duplicates()
    add_duplicate_issues(RowChecker(Profile(), collector, fmt).emit, duplicate_lines)
    add_count_issue(collector, len(rows), min_examples)
    leaked = None
    if validation_rows is not None:
        keys = {canonical_digest(r) for r in rows} | {near_digest(r) for r in rows}
        leaked = sum(1 for r in validation_rows if canonical_digest(r) in keys or near_digest(r) in keys)
    return collector.report(
        file=name,
        format=fmt,
        method=resolved.profile.method,
        model=resolved.profile.model,
        n_examples=len(rows),
        n_lines=len(rows),
        stats=finish_stats(
            checker.stats,
            resolved,
            fmt=fmt,
            n_epochs=n_epochs,
            n_exact_duplicates=len(duplicate_lines),
            n_leaked=leaked,
        ),
    )


class ExampleTokens(NamedTuple):
    """Tokens of one example: all of it, and its assistant replies."""

    total: int
    assistant: int


def token_counts(
    rows: Sequence[Any], *, model: str | None = None, counting: str = "model", method: str | None = None
) -> list[ExampleTokens]:
    """Per-example token counts (examples that cannot be counted, e.g. of another format, are left out)."""
    resolved = resolve(model, method, counting=counting, want_stats=True)
    collector = IssueCollector(0)
    fmt = next((f for f in (detect_format(r) for r in rows if isinstance(r, dict)) if f is not None), None)
    if fmt is not None:
        format_issues(fmt, resolved)
    checker = RowChecker(resolved.profile, collector, fmt)
    for pos, row in enumerate(rows):
        if nesting_exceeds(row):
            raise DatasetFormatError(too_deep_message(f"example {pos}"))
        checker.check(row, pos + 1, None)
    assert checker.stats is not None
    return [ExampleTokens(t, a) for t, a in zip(checker.stats.totals, checker.stats.assistant, strict=True)]
