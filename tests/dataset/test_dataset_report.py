"""ValidationReport and DatasetIssue: rendering, the stable JSON schema, caps."""

from __future__ import annotations

import json
from pathlib import Path

from dataset_helpers import DATA, good_rows, write_jsonl

from finetune_embed.dataset import CODE_INFO, Dataset, DatasetIssue, IssueCode, ValidationReport
from finetune_embed.dataset._report import format_path, path_to_pointer


def test_issue_rendering_and_pointer() -> None:
    issue = DatasetIssue(
        3,
        "messages[2].tool_calls[0].function.arguments",
        IssueCode.DOUBLE_ENCODED_ARGUMENTS,
        "error",
        "Example 3, message 3: arguments is JSON-encoded twice",
        example=3,
    )
    assert issue.format("t.jsonl") == (
        "t.jsonl:3 messages[2].tool_calls[0].function.arguments: Example 3, message 3: "
        "arguments is JSON-encoded twice [double_encoded_arguments]"
    )
    assert issue.pointer == "/messages/2/tool_calls/0/function/arguments"
    assert issue.server_code == "invalid_training_file"
    assert issue.docs.startswith("file://")
    assert issue.docs.endswith("/errors.md#double_encoded_arguments")
    assert (
        DatasetIssue(None, "", IssueCode.TOO_FEW_EXAMPLES, "error", "m").format("t.jsonl")
        == "t.jsonl: m [too_few_examples]"
    )
    assert format_path(("messages", 0, "a.b", "x y")) == 'messages[0]["a.b"]["x y"]'
    assert path_to_pointer('messages[0]["a/b"].c') == "/messages/0/a~1b/c"


def test_report_text_is_grouped_like_pydantic() -> None:
    report = Dataset.validate_file(DATA / "weights.jsonl")
    text = str(report)
    first, *rest = text.splitlines()
    assert first == f"3 errors, 1 warning in {DATA / 'weights.jsonl'} (10 examples, chat, supervised)"
    assert rest[0] == "errors:"
    assert rest[4] == "warnings:"
    assert rest[1].startswith(f"  {DATA / 'weights.jsonl'}:2 messages[2].weight: Example 2, message 3: weight must")
    assert rest[1].endswith("[invalid_weight]")
    assert "ValidationReport(" in repr(report)


def test_json_schema_is_stable() -> None:
    report = Dataset.validate_file(DATA / "tool_ids.jsonl", stats=True)
    data = json.loads(report.to_json())
    assert list(data) == [
        "schema_version",
        "file",
        "format",
        "method",
        "model",
        "ok",
        "n_examples",
        "n_lines",
        "error_count",
        "warning_count",
        "counts",
        "truncated",
        "issues",
        "stats",
    ]
    assert data["schema_version"] == 1
    assert list(data["issues"][0]) == [
        "line",
        "example",
        "path",
        "pointer",
        "code",
        "server_code",
        "severity",
        "message",
        "hint",
    ]
    stats = data["stats"]
    for key in ("n_examples", "tokens_per_example", "n_epochs", "billed_tokens", "cost_usd", "tokens_by_role"):
        assert key in stats
    assert list(stats["tokens_per_example"]) == ["n", "min", "max", "mean", "p5", "p10", "p50", "p90", "p95"]


def test_max_issues_caps_but_counts_everything(tmp_path: Path) -> None:
    rows = [{**r, "extra": 1} for r in good_rows(30)]
    path = write_jsonl(tmp_path / "x.jsonl", rows)
    report = Dataset.validate_file(path, max_issues=5)
    assert len(report.issues) == 5
    assert report.truncated
    assert report.error_count == 30
    assert report.counts == {"unknown_key": 30}
    assert [i.line for i in report.issues] == [1, 2, 3, 4, 5]
    assert "... and 25 more" in str(report)


def test_every_code_has_documentation_facts() -> None:
    assert set(CODE_INFO) == set(IssueCode)
    for code, info in CODE_INFO.items():
        assert info.severity in ("error", "warning"), code
        assert info.title, code
        assert info.fix, code


def test_report_defaults() -> None:
    report = ValidationReport()
    assert report.ok
    assert not report.errors
    assert len(report) == 0
    report.raise_for_issues()
