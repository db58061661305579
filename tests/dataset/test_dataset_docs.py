"""The docs are true: docs/datasets.md's Python examples run, docs/_dataset_codes.md matches the code."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from dataset_docgen import TARGET, render

from finetune_embed.dataset import IssueCode

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "datasets.md"


ERRORS = ROOT / "docs" / "errors.md"


def _codes_text() -> str:
    """docs/_dataset_codes.md, or (once merged) docs/errors.md, which then holds the generated section."""
    return (TARGET if TARGET.exists() else ERRORS).read_text(encoding="utf-8")


def test_codes_doc_is_generated_from_the_code() -> None:
    rendered = render()
    if TARGET.exists():
        assert TARGET.read_text(encoding="utf-8") == rendered, "run: python tests/dataset/dataset_docgen.py"
    else:  # merged into errors.md: the generated section must be there verbatim
        body = rendered.split("## Dataset issue codes", 1)[1]
        assert body in ERRORS.read_text(encoding="utf-8"), "regenerate the dataset section of docs/errors.md"


def test_one_anchor_per_code() -> None:
    headings = set(re.findall(r"^### (\S+)$", _codes_text(), flags=re.M))
    assert {c.value for c in IssueCode} <= headings


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_datasets_doc_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 5
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)


def test_cli_reference_in_doc_matches_the_commands() -> None:
    from click.testing import CliRunner

    from finetune_embed.cli import main

    text = DOC.read_text(encoding="utf-8")
    for command in ("validate", "stats", "split", "convert", "fix"):
        help_text = CliRunner().invoke(main, ["dataset", command, "--help"]).output
        line = next(x for x in text.splitlines() if x.startswith(f"finetune-embed dataset {command} "))
        block = line + text.split(line, 1)[1].split("\nfinetune-embed", 1)[0].split("```", 1)[0]
        for option in re.findall(r"--[a-z-]+", block):
            assert option in help_text, (command, option)


def test_quick_start_output_is_what_the_cli_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from finetune_embed.cli import main

    command = "$ finetune-embed dataset validate examples/support_chat.jsonl --model gpt-4o-mini\n"
    shown = DOC.read_text(encoding="utf-8").split(command, 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        main, ["dataset", "validate", "examples/support_chat.jsonl", "--model", "gpt-4o-mini", "--on", "2026-11-25"]
    )
    assert result.exit_code == 0
    assert result.output == shown
