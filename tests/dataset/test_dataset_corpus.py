"""Every defect of the malformed-file corpus is found, located to its line and JSON path, and nothing else is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dataset_helpers import DATA, manifest, options_of

from finetune_embed.dataset import Dataset, IssueCode

MANIFEST = manifest()


def _found(report: Any, ignore: set[str]) -> set[tuple[str, int | None, str]]:
    return {(i.code.value, i.line, i.path) for i in report.issues if i.code.value not in ignore}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_corpus_file_reports_exactly_its_defects(name: str) -> None:
    spec = MANIFEST[name]
    opts, ignore = options_of(spec)
    report = Dataset.validate_file(DATA / name, **opts)
    expected = {(code, line, path) for code, line, path in spec["expected"]}
    assert _found(report, ignore) == expected
    assert report.ok == (not any(IssueCode(c) in _errors() for c, _, _ in expected) and not report.errors)
    for issue in report.issues:
        assert len(issue.message) > 20
        assert issue.message == issue.message.strip()
        if issue.line is not None and issue.code.value not in ("crlf_line_endings",):
            # the message names the coordinates the service would quote
            assert f"Example {issue.line}" in issue.message or f"Line {issue.line}" in issue.message, issue


def _errors() -> set[IssueCode]:
    from finetune_embed.dataset import CODE_INFO

    return {code for code, info in CODE_INFO.items() if info.severity == "error"}


@pytest.mark.parametrize(
    "name",
    sorted(
        n
        for n in MANIFEST
        if n
        not in {
            "bom.jsonl",
            "crlf.jsonl",
            "invalid_utf8.jsonl",
            "utf16.jsonl",
            "nul_raw.jsonl",
            "bad_json.jsonl",
            "not_object.jsonl",
            "duplicate_key.jsonl",
            "blank_lines.jsonl",
            "empty.jsonl",
            "whitespace_only.jsonl",
            "lone_surrogate.jsonl",
        }
    ),
)
def test_loaded_dataset_reports_the_same_issues(name: str) -> None:
    """Dataset.validate (in memory) finds what the streaming validator finds, at the same lines."""
    spec = MANIFEST[name]
    opts, ignore = options_of(spec)
    ds = Dataset.from_json(DATA / name)
    report = ds.validate(**{k: v for k, v in opts.items() if k in ("model", "method", "on", "max_example_tokens")})
    expected = {(code, line, path) for code, line, path in spec["expected"]}
    assert _found(report, ignore) == expected


def test_byte_level_files_cannot_be_loaded_but_are_located() -> None:
    from finetune_embed import DatasetFormatError

    with pytest.raises(DatasetFormatError) as info:
        Dataset.from_json(DATA / "bad_json.jsonl")
    assert info.value.line == 3
    assert str(DATA / "bad_json.jsonl") in str(info.value)
    with pytest.raises(DatasetFormatError) as info:
        Dataset.from_json(DATA / "invalid_utf8.jsonl")
    assert info.value.line == 4


def test_every_code_is_exercised_by_the_corpus_or_a_named_test() -> None:
    in_corpus = {code for spec in MANIFEST.values() for code, _, _ in spec["expected"]}
    tested_elsewhere = {"file_unreadable", "file_too_large", "large_file", "image_too_large", "line_too_long"}
    assert {c.value for c in IssueCode} == in_corpus | tested_elsewhere


def test_missing_file_and_directory(tmp_path: Path) -> None:
    report = Dataset.validate_file(tmp_path / "nope.jsonl")
    assert [i.code for i in report.issues] == [IssueCode.FILE_UNREADABLE]
    assert "nope.jsonl" in report.issues[0].message
    assert not report.ok
    report = Dataset.validate_file(tmp_path)
    assert [i.code for i in report.issues] == [IssueCode.FILE_UNREADABLE]


def test_file_size_limits(monkeypatch: pytest.MonkeyPatch, good_file: Path) -> None:
    from finetune_embed.dataset import _stream

    monkeypatch.setattr(_stream, "FILES_API_MAX_BYTES", 100)
    report = Dataset.validate_file(good_file)
    assert [(i.code, i.severity) for i in report.issues] == [(IssueCode.LARGE_FILE, "warning")]
    monkeypatch.setattr(_stream, "UPLOADS_API_MAX_BYTES", 200)
    report = Dataset.validate_file(good_file)
    assert [(i.code, i.severity) for i in report.issues] == [(IssueCode.FILE_TOO_LARGE, "error")]


def test_image_too_large(tmp_path: Path) -> None:
    import base64
    import json

    from dataset_helpers import good_rows, write_jsonl

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 10_500_000
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    big = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]},
            {"role": "assistant", "content": "A big picture."},
        ]
    }
    path = write_jsonl(tmp_path / "big.jsonl", [*good_rows(9), big])
    report = Dataset.validate_file(path)
    assert [(i.code, i.line, i.path) for i in report.issues] == [
        (IssueCode.IMAGE_TOO_LARGE, 10, "messages[0].content[0].image_url.url")
    ]
    assert "10.5 MB" in report.issues[0].message
    json.loads(report.to_json())  # serialisable
