"""Streaming validation of a JSONL file in constant memory, optionally over byte ranges in parallel processes.

Each line is read as bytes, checked for encoding problems, decoded strictly as UTF-8 and parsed with a
duplicate-key detecting hook; raw-byte prefilters decide whether a line needs the (rarer) string walks for NUL
characters, lone surrogates and reserved tokens. Memory per example is a few 8-byte integers (token counts and
digests for the distributions and duplicate detection); everything else is released line by line.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from .._exceptions import ConfigError, FileAccessError, InvalidArgumentError
from .._lines import MAX_LINE_BYTES, LongLine, iter_lines, open_input
from .._logging import get_logger
from ._checks import (
    DuplicateTracker,
    Profile,
    RowChecker,
    detect_format,
    digest,
    may_nest_too_deeply,
    nesting_exceeds,
    too_deep_message,
)
from ._codes import CODE_INFO, IssueCode
from ._fastjson import EXACT, parse_fast
from ._profile import FileIssue, Resolved, check_int, check_options, format_issues, resolve
from ._report import DatasetIssue, IssueCollector, ValidationReport, format_path
from ._stats import DatasetStats, StatsBuilder

__all__ = [
    "FILES_API_MAX_BYTES",
    "MAX_LINE_BYTES",
    "MIN_EXAMPLES",
    "UPLOADS_API_MAX_BYTES",
    "auto_workers",
    "validate_path",
    "worker_context",
]

MIN_EXAMPLES = 10
FILES_API_MAX_BYTES = 512 * 1024 * 1024
UPLOADS_API_MAX_BYTES = 8 * 1024**3
PARALLEL_MIN_BYTES = 48 * 1024 * 1024
_READ_BUFFER = 1 << 20  # line iteration over a 1 MiB buffer reads a large file in about half the time of 8 KiB
_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")
C = IssueCode
logger = get_logger("dataset")


class _DupKeysDict(dict[str, Any]):
    """A dict built from an object that repeated keys; ``dup_keys`` names them (internal)."""

    dup_keys: list[str]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (use null or a number)")


class _Parser:
    """``json`` decoding with duplicate-key detection."""

    def __init__(self) -> None:
        self.saw_duplicates = False
        self.decode = json.JSONDecoder(object_pairs_hook=self._hook, parse_constant=_reject_constant).decode

    def _hook(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d = dict(pairs)
        if len(d) != len(pairs):
            self.saw_duplicates = True
            dd = _DupKeysDict(d)
            dd.dup_keys = [k for k, n in Counter(k for k, _ in pairs).items() if n > 1]
            return dd
        return d


def _find_dup_dicts(obj: Any, segs: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], list[str]]]:
    if isinstance(obj, dict):
        if isinstance(obj, _DupKeysDict):
            yield segs, obj.dup_keys
        for k, v in obj.items():
            yield from _find_dup_dicts(v, (*segs, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _find_dup_dicts(v, (*segs, i))


def _parse_exact(body: bytes, line: int, parser: _Parser, checker: RowChecker) -> Any:
    """Parse ``body`` the exact way (``json`` with the duplicate-key hook) and report what is wrong with it: not
    UTF-8, not JSON, nested too deeply (the example then counts and :data:`_FAILED` is returned) or keys given
    twice (the value is returned)."""
    emit = checker.emit
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        checker.n_examples += 1
        bad = body[exc.start : exc.start + 4]
        emit(
            C.INVALID_UTF8,
            (),
            f"Line {line} is not valid UTF-8: byte {exc.start + 1} ({bad.hex(' ')}) cannot be decoded; "
            "re-save the file as UTF-8",
        )
        return _FAILED
    parser.saw_duplicates = False
    try:
        obj = parser.decode(text)
    except RecursionError:
        checker.n_examples += 1
        emit(C.INVALID_JSON, (), f"Line {line} is nested too deeply to be a fine-tuning example")
        return _FAILED
    except ValueError as exc:
        checker.n_examples += 1
        if "\x00" in text:
            col = text.index("\x00") + 1
            emit(
                C.NUL_CHARACTER,
                (),
                f"Line {line} holds a raw NUL byte at character {col}; the file may be UTF-16 or "
                "binary: re-save it as UTF-8 and remove the NUL bytes",
            )
        else:
            emit(C.INVALID_JSON, (), _json_error_message(line, exc, text), hint=_json_hint(line, text))
        return _FAILED
    if may_nest_too_deeply(body) and nesting_exceeds(obj):
        checker.n_examples += 1
        emit(C.INVALID_JSON, (), too_deep_message(f"Line {line}"))
        return _FAILED
    if parser.saw_duplicates:
        for segs, keys in _find_dup_dicts(obj):
            where = format_path(segs) or "the top-level object"
            emit(
                C.DUPLICATE_KEY,
                segs,
                f"Example {line}: {where} has the key(s) {', '.join(repr(k) for k in keys)} more than "
                "once; JSON keeps only the last value: keep one",
            )
    return obj


@dataclass
class RangeResult:
    """What one byte range of the file produced (picklable, merged by the caller)."""

    collector: IssueCollector
    stats: StatsBuilder | None
    dups: DuplicateTracker
    n_examples: int = 0
    n_lines: int = 0
    crlf: int = 0
    first_crlf: int | None = None
    blank_lines: list[int] = field(default_factory=list)
    n_blank: int = 0
    last_nonblank: int = 0
    cache_misses: int = 0


def _process_range(
    path: str,
    start: int,
    end: int,
    first_line: int,
    profile: Profile,
    file_format: str | None,
    max_issues: int,
    progress: Any = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> RangeResult:
    """Validate the lines in ``[start, end)`` (``start`` at a line start, line numbers from ``first_line``); a
    line over ``max_line_bytes`` is reported (``line_too_long``) and skipped without being held in memory."""
    collector = IssueCollector(max_issues)
    checker = RowChecker(profile, collector, file_format)
    parser = _Parser()
    result = RangeResult(collector, checker.stats, checker.dups)
    blank_lines = result.blank_lines
    check = checker.check
    emit = checker.emit
    line = first_line - 1
    pos = start
    crlf = 0
    n_blank = 0
    last_nonblank = 0
    since_progress = 0
    with open_input(path, buffering=_READ_BUFFER) as f:
        f.seek(start)
        for raw in iter_lines(f, max_line_bytes=max_line_bytes):
            line += 1
            if isinstance(raw, LongLine):
                pos += raw.length
                checker.n_examples += 1
                last_nonblank = line
                collector.add(line_too_long_issue(line, raw.length, max_line_bytes, raw.head))
                if pos >= end:
                    break
                continue
            size = len(raw)
            pos += size
            if raw.endswith(b"\r\n"):
                crlf += 1
                if result.first_crlf is None:
                    result.first_crlf = line
            body = raw.strip()
            if not body:
                n_blank += 1
                if len(blank_lines) < max_issues:
                    blank_lines.append(line)
                if pos >= end:
                    break
                continue
            last_nonblank = line
            checker._line = line
            if body.startswith(_BOM):
                emit(
                    C.BOM,
                    (),
                    f"Line {line} starts with a UTF-8 byte-order mark (EF BB BF); remove it (`finetune-embed dataset "
                    "fix` does)",
                )
                body = body[3:].lstrip()
            obj = parse_fast(body)
            if obj is EXACT:
                obj = _parse_exact(body, line, parser, checker)
            if obj is not _FAILED:
                if b"\\u" in body:
                    nul = b"\\u0000" in body
                    sur = b"\\ud" in body or b"\\uD" in body
                    res = (
                        b"<|" in body
                        or b"\\u003c" in body
                        or b"\\u003C" in body
                        or b"\\u007c" in body
                        or b"\\u007C" in body
                    )
                    if nul or sur or res:
                        checker.scan_strings(obj, nul=nul, surrogates=sur, reserved=res)
                elif b"<|" in body:
                    checker.scan_strings(obj, nul=False, surrogates=False, reserved=True)
                check(obj, line, digest(body))
            if progress is not None:
                since_progress += size
                if since_progress >= 1 << 22:
                    progress.update(since_progress)
                    since_progress = 0
            if pos >= end:
                break
    if progress is not None and since_progress:
        progress.update(since_progress)
    result.n_examples = checker.n_examples
    result.n_lines = line - first_line + 1
    result.crlf = crlf
    result.n_blank = n_blank
    result.last_nonblank = last_nonblank
    if checker.counter is not None:
        result.cache_misses = checker.counter.misses
    return result


_FAILED: Any = object()


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 2**20 else f"{n / 2**20:,.0f} MB"


def line_too_long_issue(line: int, length: int, limit: int, head: bytes) -> DatasetIssue:
    """The ``line_too_long`` issue of a line of ``length`` bytes (over ``limit``) that starts with ``head``."""
    shown = head[:24].decode("utf-8", "backslashreplace")
    return DatasetIssue(
        line,
        "",
        C.LINE_TOO_LONG,
        CODE_INFO[C.LINE_TOO_LONG].severity,
        f"Line {line} is {_size(length)} long (it starts {shown!r}), more than the {_size(limit)} a line may have "
        "(the Files API takes at most 512 MB per file): it was skipped unread; write one example per line "
        "(`finetune-embed dataset fix` sets the line aside)",
        None,
        line,
    )


def _json_error_message(line: int, exc: ValueError, text: str) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"Line {line} is not valid JSON: {exc.msg} at character {exc.pos + 1}"
    return f"Line {line} is not valid JSON: {exc}"


def _json_hint(line: int, text: str) -> str | None:
    head = text.lstrip()[:1]
    if line == 1 and head == "[":
        return "the file looks like one JSON array; JSONL needs one object per line"
    if (head in ("{", "") and text.rstrip().endswith(("{", "[", ","))) or text.strip() in ("{", "}", "[", "]"):
        return "this looks like pretty-printed JSON spread over several lines; write each example on one line"
    return f"the line starts with {text[:40]!r}"


def _split_ranges(path: str, size: int, parts: int) -> list[tuple[int, int, int]]:
    """``parts`` byte ranges at line boundaries, each with the number of its first line."""
    cuts = [0]
    with open_input(path) as f:
        for k in range(1, parts):
            f.seek(size * k // parts)
            while (chunk := f.readline(1 << 20)) and not chunk.endswith(b"\n"):  # never a whole long line
                pass
            pos = f.tell()
            if pos > cuts[-1] and pos < size:
                cuts.append(pos)
        cuts.append(size)
        firsts = [1]
        f.seek(0)
        pos = 0
        newlines = 0
        for cut in cuts[1:-1]:
            while pos < cut:
                chunk = f.read(min(1 << 24, cut - pos))
                if not chunk:
                    break
                newlines += chunk.count(b"\n")
                pos += len(chunk)
            firsts.append(newlines + 1)
    return [(cuts[i], cuts[i + 1], firsts[i]) for i in range(len(cuts) - 1)]


def _detect_file_format(path: str, limit: int = 200, max_line_bytes: int = MAX_LINE_BYTES) -> str | None:
    """The format of the first parseable example among the first ``limit`` lines."""
    with open_input(path) as f:
        for n, raw in enumerate(iter_lines(f, max_line_bytes=max_line_bytes)):
            if n >= limit:
                break
            if isinstance(raw, LongLine):
                continue
            body = raw.strip()
            if body.startswith(_BOM):
                body = body[3:]
            if not body:
                continue
            try:
                obj = json.loads(body.decode("utf-8"))
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict):
                fmt = detect_format(obj)
                if fmt is not None:
                    return fmt
    return None


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS says; else all of them)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def auto_workers(size: int) -> int:
    """``workers="auto"``: one process per usable CPU, at most 8 and at most one per 24 MB, for a file of 48 MB or
    more; one below. Decided by the file's size and the CPUs only: never by the load average or by threads."""
    if size < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(usable_cpus(), 8, size // (PARALLEL_MIN_BYTES // 2)))


def resolve_workers(workers: int | str | None, size: int) -> int:
    """The number of processes for ``workers`` (``None``: 1; ``"auto"``: :func:`auto_workers`; else N >= 1)."""
    if workers is None:
        return 1
    if workers == "auto":
        return auto_workers(size)
    check_int("workers", workers, minimum=1)
    return int(workers)


def worker_context(start_method: str | None) -> Any:
    """The :mod:`multiprocessing` context that starts validation workers.

    By default ``forkserver`` where the platform has it (Linux, macOS), else ``spawn``: both start clean processes,
    safe whatever threads this process runs, and both import the ``__main__`` module in the workers, so a script
    needs ``if __name__ == "__main__":`` around its top-level code (as with any :mod:`multiprocessing` use).
    ``fork`` is used only when asked: the workers then inherit the loaded tokenizer and start at once, but forking
    a process in which other threads run can deadlock.
    """
    import multiprocessing as mp

    available = mp.get_all_start_methods()
    method = start_method or ("forkserver" if "forkserver" in available else "spawn")
    if method not in available:
        raise InvalidArgumentError(
            f"start_method must be one of {', '.join(available)} on this platform, not {start_method!r}",
            argument="start_method",
        )
    return mp.get_context(method)


def _leaked(validation: str | os.PathLike[str], dups: DuplicateTracker, stats: StatsBuilder | None) -> int:
    """Examples of the ``validation`` file that are exact (same line) or near duplicates of training examples."""
    import numpy as np

    from ._checks import near_key
    from ._memory import near_text

    exact = np.frombuffer(dups.hashes, dtype=np.int64) if len(dups.hashes) else np.zeros(0, dtype=np.int64)
    near = np.frombuffer(stats.near, dtype=np.int64) if stats is not None and len(stats.near) else exact[:0]
    leaked = 0
    with open_input(validation) as f:
        for raw in iter_lines(f):
            if isinstance(raw, LongLine):
                continue
            body = raw.strip()
            if body.startswith(_BOM):
                body = body[3:].lstrip()
            if not body:
                continue
            keys = [digest(body)]
            try:
                obj = json.loads(body.decode("utf-8"))
            except (ValueError, RecursionError):
                obj = None
            hit = bool(np.isin(keys, exact).any())
            if not hit and isinstance(obj, dict):
                hit = bool(np.isin([near_key(near_text(obj))], near).any())
            leaked += hit
    return leaked


def size_issue_of(name: str, size: int) -> FileIssue | None:
    """The file-size issue of a ``size``-byte file, if any."""
    if size > UPLOADS_API_MAX_BYTES:
        return FileIssue(
            C.FILE_TOO_LARGE,
            f"{name} is {size / 2**30:.1f} GB; the service accepts at most {UPLOADS_API_MAX_BYTES / 2**30:.0f} GB "
            "(through the Uploads API): split it",
        )
    if size > FILES_API_MAX_BYTES:
        return FileIssue(
            C.LARGE_FILE,
            f"{name} is {size / 2**20:,.0f} MB, over the Files API's {FILES_API_MAX_BYTES / 2**20:,.0f} MB: it must "
            "be sent through the Uploads API (finetune_embed's uploader does this by itself)",
        )
    return None


def _file_issue(collector: IssueCollector, issue: FileIssue, line: int | None = None) -> None:
    code = issue.code
    severity = issue.severity or CODE_INFO[code].severity
    collector.add(DatasetIssue(line, "", code, severity, issue.message, None, line))  # type: ignore[arg-type]


def finish_stats(
    stats: StatsBuilder | None,
    resolved: Resolved,
    *,
    fmt: str | None,
    n_epochs: int | None,
    n_exact_duplicates: int,
    n_leaked: int | None = None,
) -> DatasetStats | None:
    """Turn accumulated numbers into :class:`DatasetStats` (shared with the in-memory path)."""
    if stats is None:
        return None
    p = resolved.profile
    notes = []
    if p.counting == "cookbook":
        notes.append(
            "cookbook counting: cl100k_base, 3 tokens per message, +1 per name, +3 per example; tools and images "
            "not counted (compare with published cookbook figures, not with the model's real count)"
        )
        stats.role_tokens = [0] * len(stats.role_tokens)
    if resolved.info is None and p.model is None:
        notes.append(f"no model given: counted with {p.encoding}, no token limit and no price")
    return stats.finish(
        format=fmt,
        model=p.model,
        encoding=p.encoding or "",
        counting=p.counting,
        max_example_tokens=p.max_example_tokens,
        n_epochs=n_epochs,
        price_per_1m=resolved.price_per_1m,
        price_unit=resolved.price_unit,
        price_as_of=resolved.price_as_of,
        n_exact_duplicates=n_exact_duplicates,
        n_leaked=n_leaked,
        notes=notes,
    )


def add_duplicate_issues(checker_emit: Any, dups: list[tuple[int, int]]) -> None:
    for line, first in dups:
        checker_emit(
            C.DUPLICATE_EXAMPLE,
            (),
            f"Example {line} is an exact copy of line {first}; drop the copy (`finetune-embed dataset fix` or "
            "Dataset.dedupe() do)",
            line=line,
        )


def add_count_issue(collector: IssueCollector, n_examples: int, min_examples: int) -> None:
    if 0 < n_examples < min_examples:
        collector.add(
            DatasetIssue(
                None,
                "",
                C.TOO_FEW_EXAMPLES,
                "error",
                f"Training file has {n_examples} example(s), but must have at least {min_examples} examples; add "
                "examples (50 to 100 good ones is the usual start)",
            )
        )


def validate_path(
    path: str | os.PathLike[str],
    *,
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
    workers: int | Literal["auto"] | None = None,
    progress: bool | None = None,
    validation: str | os.PathLike[str] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    start_method: Literal["forkserver", "spawn", "fork"] | None = None,
) -> ValidationReport:
    """See :meth:`Dataset.validate_file`; ``validation`` (a JSONL path) counts its examples found in this file."""
    check_options(max_issues=max_issues, n_epochs=n_epochs, min_examples=min_examples)
    if workers != "auto":
        check_int("workers", workers, minimum=1, optional=True)
    check_int("max_line_bytes", max_line_bytes, minimum=1)
    name = os.fspath(path)
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

    def done(**fields: Any) -> ValidationReport:
        return collector.report(file=name, method=resolved.profile.method, model=resolved.profile.model, **fields)

    p = Path(name)
    try:
        with open_input(name) as f:  # a device or a FIFO is refused: it might never end
            size = os.fstat(f.fileno()).st_size
            head = f.read(4)
            empty = (size == 0 or not head.strip()) and not (head + f.read((1 << 20) - len(head))).strip()
    except FileAccessError as exc:
        _file_issue(collector, FileIssue(C.FILE_UNREADABLE, str(exc)))
        return done()
    if empty:
        _file_issue(collector, FileIssue(C.EMPTY_FILE, f"{name} is empty; write one JSON example per line"))
        return done()
    if head.startswith(_UTF32_BOMS) or head.startswith(_UTF16_BOMS):
        kind = "UTF-32" if head.startswith(_UTF32_BOMS) else "UTF-16"
        _file_issue(
            collector,
            FileIssue(
                C.INVALID_UTF8,
                f"Line 1 starts with a {kind} byte-order mark: the file is {kind}, and the service needs UTF-8; "
                "re-save it as UTF-8 (in PowerShell, Out-File -Encoding utf8)",
            ),
            line=1,
        )
        return done()
    size_issue = size_issue_of(name, size)
    if size_issue is not None:
        _file_issue(collector, size_issue)
    fmt = _detect_file_format(name, max_line_bytes=max_line_bytes)
    if fmt is not None:
        for issue in format_issues(fmt, resolved):
            _file_issue(collector, issue)
    profile = resolved.profile
    n_workers = resolve_workers(workers, size)
    if fmt is None:  # no recognisable example near the start: let one pass decide the format, as it goes
        n_workers = 1
    context: Any = worker_context(start_method) if n_workers > 1 else None
    ranges = _split_ranges(name, size, n_workers) if context is not None else [(0, size, 1)]
    if context is not None:
        logger.debug("validating %s in %d processes (start method %s)", name, len(ranges), context.get_start_method())
    from .._progress import progress_bar  # our bars start no thread, so they leave fork possible

    with progress_bar(total=size, desc=f"validating {p.name}", unit="B", progress=progress, unit_scale=True) as bar:
        if len(ranges) == 1:
            results = [_process_range(name, 0, size, 1, profile, fmt, max_issues, bar, max_line_bytes)]
        else:
            from concurrent.futures import ProcessPoolExecutor
            from concurrent.futures.process import BrokenProcessPool

            if profile.encoding is not None and context.get_start_method() == "fork":
                from ..tokenizer import get_encoding

                get_encoding(profile.encoding)  # load it once here: forked workers inherit it
            try:
                with ProcessPoolExecutor(max_workers=len(ranges) - 1, mp_context=context) as pool:
                    futures = [
                        pool.submit(_process_range, name, s, e, first, profile, fmt, max_issues, None, max_line_bytes)
                        for s, e, first in ranges[1:]
                    ]
                    first_result = _process_range(name, *ranges[0], profile, fmt, max_issues, bar, max_line_bytes)
                    results = [first_result]
                    for fut, (s, e, _first) in zip(futures, ranges[1:], strict=True):
                        results.append(fut.result())
                        bar.update(e - s)
            except BrokenProcessPool as exc:
                raise ConfigError(
                    f"A validation worker process ({context.get_start_method()}) died before it finished {name}. "
                    "In a script, put the top-level code under `if __name__ == \"__main__\":` (workers started by "
                    "spawn or forkserver import the script again), or pass workers=1 to stay in this process."
                ) from exc
    # merge
    stats_builder: StatsBuilder | None = None
    dups = DuplicateTracker()
    n_examples = n_lines = crlf = 0
    first_crlf: int | None = None
    blank: list[int] = []
    last_nonblank = 0
    for r in results:
        collector.merge(r.collector)
        if r.stats is not None:
            if stats_builder is None:
                stats_builder = r.stats
            else:
                stats_builder.merge(r.stats)
        dups.merge(r.dups)
        n_examples += r.n_examples
        n_lines += r.n_lines
        crlf += r.crlf
        if first_crlf is None:
            first_crlf = r.first_crlf
        blank.extend(r.blank_lines)
        last_nonblank = max(last_nonblank, r.last_nonblank)
    line_checker = RowChecker(Profile(), collector, fmt)
    if crlf:
        line_checker.emit(
            C.CRLF_LINE_ENDINGS,
            (),
            f"{crlf} line(s) end with CRLF (Windows line endings), the first at line {first_crlf}; convert them to LF "
            "(`finetune-embed dataset fix` does)",
            line=first_crlf,
        )
    for ln in blank:
        if ln < last_nonblank:
            line_checker.emit(C.BLANK_LINE, (), f"Line {ln} is empty; remove empty lines between examples", line=ln)
    duplicate_lines = dups.duplicates()
    add_duplicate_issues(line_checker.emit, duplicate_lines)
    if n_examples == 0:
        _file_issue(collector, FileIssue(C.EMPTY_FILE, f"{name} holds no examples, only empty lines"))
    add_count_issue(collector, n_examples, min_examples)
    if fmt is None and n_examples:
        pass  # every line was reported (invalid JSON, unknown format)
    report = done(
        format=fmt,
        n_examples=n_examples,
        n_lines=n_lines,
        stats=finish_stats(
            stats_builder,
            resolved,
            fmt=fmt,
            n_epochs=n_epochs,
            n_exact_duplicates=len(duplicate_lines),
            n_leaked=_leaked(validation, dups, stats_builder) if validation is not None and stats else None,
        ),
    )
    logger.debug(
        "validated %s: %d examples in %d range(s); %d texts tokenized (the rest from the cache)",
        name,
        n_examples,
        len(ranges),
        sum(r.cache_misses for r in results),
    )
    return report
