"""Validation results: :class:`DatasetIssue` (one problem, located) and :class:`ValidationReport` (all of them)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._codes import CODE_INFO, IssueCode, Severity

if TYPE_CHECKING:
    from ._stats import DatasetStats

__all__ = ["REPORT_SCHEMA_VERSION", "DatasetIssue", "ValidationReport", "format_path", "path_to_pointer"]

REPORT_SCHEMA_VERSION = 1
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PATH_TOKEN = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def format_path(segments: Sequence[str | int]) -> str:
    """``("messages", 2, "content")`` → ``messages[2].content``; odd keys are quoted: ``["a.b"]``."""
    out: list[str] = []
    for seg in segments:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif _IDENT.match(seg):
            out.append(f".{seg}" if out else seg)
        else:
            out.append(f"[{json.dumps(seg, ensure_ascii=False)}]")
    return "".join(out)


def path_to_pointer(path: str) -> str:
    """A :func:`format_path` string as an RFC 6901 JSON Pointer (``/messages/2/content``)."""
    parts: list[str] = []
    pos = 0
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if m is None or m.end() == pos:
            return ""  # not a path we wrote
        name, index, quoted = m.groups()
        key = name if name is not None else (index if index is not None else json.loads(quoted))
        parts.append(key.replace("~", "~0").replace("/", "~1"))
        pos = m.end()
    return "".join("/" + p for p in parts)


@dataclass(frozen=True, slots=True)
class DatasetIssue:
    """One problem in a dataset.

    ``line`` is the 1-based line of the file (``None`` for a problem with the whole file); ``path`` the place
    inside the JSON object (``messages[2].tool_calls[0].function.arguments``, empty for the whole line);
    ``code`` a stable :class:`IssueCode`; ``severity`` ``"error"`` (the service would refuse the file) or
    ``"warning"``; ``message`` says what is wrong and how to fix it; ``hint`` adds context when there is some.
    ``example`` is the 1-based example number the service would quote ("Example N").
    """

    line: int | None
    path: str
    code: IssueCode
    severity: Severity
    message: str
    hint: str | None = None
    example: int | None = None

    @property
    def server_code(self) -> str | None:
        """The OpenAI service's error code for this class of problem, if it has one."""
        return CODE_INFO[self.code].server_code

    @property
    def pointer(self) -> str:
        """``path`` as a JSON Pointer (``/messages/2/content``)."""
        return path_to_pointer(self.path)

    @property
    def docs(self) -> str:
        """A ``file://`` link to the section of errors.md that explains the code (in the installed docs)."""
        from .._docs import docs_link

        return docs_link("errors.md", self.code.value)

    def location(self, file: str | None = None) -> str:
        """``file.jsonl:3 messages[2].content`` (what precedes the message in the human output)."""
        where = file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        if self.path:
            where = f"{where} {self.path}" if where else self.path
        return where

    def format(self, file: str | None = None) -> str:
        """One line: ``file.jsonl:LINE path: message [code]``."""
        where = self.location(file)
        return f"{where}: {self.message} [{self.code.value}]" if where else f"{self.message} [{self.code.value}]"

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, Any]:
        """The issue as JSON-ready data (the report schema's ``issues[]`` item)."""
        return {
            "line": self.line,
            "example": self.example,
            "path": self.path,
            "pointer": self.pointer,
            "code": self.code.value,
            "server_code": self.server_code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


def _sort_key(issue: DatasetIssue) -> tuple[int, int, str]:
    return (issue.line if issue.line is not None else 1 << 62, 0 if issue.severity == "error" else 1, issue.path)


@dataclass
class ValidationReport:
    """Every issue a validation found (up to ``max_issues``), with counts of all of them.

    ``ok`` is true when there is no error (warnings allowed). ``counts`` counts every issue by code, including
    those past the cap (``truncated`` says whether any were left out). ``stats`` holds a :class:`DatasetStats`
    when the validation was asked for them.
    """

    issues: list[DatasetIssue] = field(default_factory=list)
    file: str | None = None
    format: str | None = None
    method: str | None = None
    model: str | None = None
    n_examples: int = 0
    n_lines: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    error_count: int = 0
    warning_count: int = 0
    truncated: bool = False
    stats: DatasetStats | None = None

    @property
    def ok(self) -> bool:
        """True when the dataset has no error (it may have warnings)."""
        return self.error_count == 0

    @property
    def errors(self) -> list[DatasetIssue]:
        """The issues of severity ``error`` (those kept under the cap)."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[DatasetIssue]:
        """The issues of severity ``warning`` (those kept under the cap)."""
        return [i for i in self.issues if i.severity == "warning"]

    def __iter__(self) -> Iterator[DatasetIssue]:
        return iter(self.issues)

    def __len__(self) -> int:
        return len(self.issues)

    def by_code(self, code: IssueCode | str) -> list[DatasetIssue]:
        """The kept issues of one code."""
        return [i for i in self.issues if i.code == code]

    def lines_with(self, code: IssueCode | str) -> list[int]:
        """The sorted distinct lines that have an issue of ``code``."""
        return sorted({i.line for i in self.issues if i.code == code and i.line is not None})

    def raise_for_issues(self, *, warnings: bool = False) -> None:
        """Raise :class:`~finetune_embed.DatasetValidationError` (with ``.report``) if there are errors (or, with
        ``warnings=True``, any issue at all)."""
        if self.error_count or (warnings and self.warning_count):
            from .._exceptions import DatasetValidationError

            raise DatasetValidationError(self._summary_text(limit=5), report=self)

    # --- rendering ----------------------------------------------------------------------------------------------

    def _name(self) -> str:
        return self.file or "dataset"

    def headline(self) -> str:
        """``2 errors, 1 warning in train.jsonl (12 examples, chat)``."""

        def plural(n: int, word: str) -> str:
            return f"{n} {word}{'' if n == 1 else 's'}"

        what = f"{self.n_examples} example{'' if self.n_examples == 1 else 's'}"
        if self.format:
            what += f", {self.format}"
        if self.method:
            what += f", {self.method}"
        if self.model:
            what += f", {self.model}"
        return (
            f"{plural(self.error_count, 'error')}, {plural(self.warning_count, 'warning')} in {self._name()} ({what})"
        )

    def _summary_text(self, *, limit: int | None = None) -> str:
        lines = [self.headline()]
        shown = self.errors + self.warnings
        if limit is not None:
            shown = shown[:limit]
        for group, items in (
            ("errors", [i for i in shown if i.severity == "error"]),
            ("warnings", [i for i in shown if i.severity == "warning"]),
        ):
            if items:
                lines.append(f"{group}:")
                lines.extend("  " + i.format(self.file) for i in items)
        left = (self.error_count + self.warning_count) - len(shown)
        if left > 0:
            lines.append(f"  ... and {left} more (see report.issues, or report.counts by code)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._summary_text()

    def __repr__(self) -> str:
        return (
            f"ValidationReport(file={self.file!r}, ok={self.ok}, errors={self.error_count}, "
            f"warnings={self.warning_count}, n_examples={self.n_examples})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, in a stable schema (``schema_version`` 1):

        ``{"schema_version", "file", "format", "method", "model", "ok", "n_examples", "n_lines", "error_count",
        "warning_count", "counts": {code: n}, "truncated", "issues": [issue...], "stats": {...} | null}``.
        """
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "file": self.file,
            "format": self.format,
            "method": self.method,
            "model": self.model,
            "ok": self.ok,
            "n_examples": self.n_examples,
            "n_lines": self.n_lines,
            "error_count": self.error_count,
            "warning_count": self.warning_count,
            "counts": dict(sorted(self.counts.items())),
            "truncated": self.truncated,
            "issues": [i.to_dict() for i in self.issues],
            "stats": self.stats.to_dict() if self.stats is not None else None,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


class IssueCollector:
    """Collects issues up to a cap while counting all of them (internal)."""

    __slots__ = ("counts", "errors", "issues", "max_issues", "truncated", "warnings")

    def __init__(self, max_issues: int) -> None:
        self.max_issues = max_issues
        self.issues: list[DatasetIssue] = []
        self.counts: dict[str, int] = {}
        self.errors = 0
        self.warnings = 0
        self.truncated = False

    def add(self, issue: DatasetIssue) -> None:
        code = issue.code.value
        self.counts[code] = self.counts.get(code, 0) + 1
        if issue.severity == "error":
            self.errors += 1
        else:
            self.warnings += 1
        if len(self.issues) < self.max_issues:
            self.issues.append(issue)
        else:
            self.truncated = True

    def merge(self, other: IssueCollector) -> None:
        """Add ``other``'s issues and counts (used to combine the parts of a file validated in parallel)."""
        for code, n in other.counts.items():
            self.counts[code] = self.counts.get(code, 0) + n
        self.errors += other.errors
        self.warnings += other.warnings
        self.truncated = self.truncated or other.truncated
        room = self.max_issues - len(self.issues)
        if len(other.issues) > room:
            self.truncated = True
        self.issues.extend(other.issues[: max(room, 0)])

    def report(self, **fields: Any) -> ValidationReport:
        issues = sorted(self.issues, key=_sort_key)
        return ValidationReport(
            issues=issues,
            counts=dict(self.counts),
            error_count=self.errors,
            warning_count=self.warnings,
            truncated=self.truncated,
            **fields,
        )
