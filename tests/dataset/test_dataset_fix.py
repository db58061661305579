"""fix_file: mechanical fixes written to <name>.fixed.jsonl, everything else to <name>.rejected.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

from dataset_helpers import good_rows

from finetune_embed.dataset import Dataset, IssueCode, fix_file


def test_fix_repairs_and_rejects_with_reasons(tmp_path: Path) -> None:
    rows = good_rows(12)
    rows[2] = {**rows[2], "weight": 1}  # unknown top-level key: dropped
    rows[3]["messages"][1]["metadata"] = {"id": 3}  # unknown message key: dropped
    rows[4] = {
        "messages": [
            {"role": "user", "content": "w?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "w", "arguments": json.dumps('{"city": "Oslo"}')},
                    }
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
    }
    lines = [json.dumps(r) for r in rows]
    lines[6] = '{"messages": [{"role": "user"'  # invalid JSON: rejected
    lines[7] = json.dumps({"messages": [{"role": "user", "content": "only a question"}]})  # no assistant: rejected
    lines.append(lines[0])  # exact duplicate: rejected as such
    lines.insert(5, "")  # empty line: dropped and counted
    src = tmp_path / "train.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")

    result = Dataset.fix(src)
    assert result.fixed_path == tmp_path / "train.fixed.jsonl"
    assert result.rejected_path == tmp_path / "train.rejected.jsonl"
    assert result.n_kept == 10
    assert result.n_rejected == 3
    assert result.changes["unknown_key"] == 1
    assert result.changes["unknown_message_key"] == 1
    assert result.changes["double_encoded_arguments"] == 1
    assert result.changes["bom"] == 1
    assert result.changes["crlf"] == 10
    assert result.changes["blank_line"] == 1
    assert result.changes["duplicate_example"] == 1
    fixed = result.fixed_path.read_bytes()
    assert not fixed.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in fixed
    assert result.report is not None
    assert result.report.ok, result.report
    rejected = [json.loads(x) for x in result.rejected_path.read_text().splitlines()]
    assert [r["line"] for r in rejected] == [8, 9, 14]
    assert rejected[0]["reasons"][0]["code"] == "invalid_json"
    assert rejected[1]["reasons"][0]["code"] == "missing_assistant"
    assert rejected[2]["reasons"] == [{"code": "duplicate_example", "path": "", "message": "an exact copy of line 1"}]
    assert rejected[1]["text"] == lines[8]  # the original text (lines shifted by the inserted empty line)
    assert "10 example(s) written" in result.summary()
    assert json.loads(json.dumps(result.to_dict()))["n_rejected"] == 3


def test_fix_custom_paths_and_no_dedupe(tmp_path: Path) -> None:
    src = tmp_path / "data.jsonl"
    rows = good_rows(10)
    src.write_text("".join(json.dumps(r) + "\n" for r in [*rows, rows[0]]))
    result = fix_file(src, output=tmp_path / "out" / "a.jsonl", rejected=tmp_path / "out" / "b.jsonl", dedupe=False)
    assert result.n_kept == 11
    assert result.n_rejected == 0
    assert (tmp_path / "out" / "b.jsonl").read_text() == ""
    assert result.report is not None
    assert result.report.by_code(IssueCode.DUPLICATE_EXAMPLE)
