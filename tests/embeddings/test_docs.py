"""docs/embeddings.md: every ```python block runs, in order, in one namespace (against the fake)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "embeddings.md"
SHARED = ROOT.parent / "shared"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_doc_has_runnable_examples() -> None:
    assert len(python_blocks(DOC.read_text(encoding="utf-8"))) >= 8


def test_docs_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    if not (SHARED / "data" / "cookbook" / "fine_food_reviews_1k.csv").exists():
        pytest.skip("../shared/data is not available")
    # the doc's paths are relative to the repository root: recreate ../shared next to a scratch "repository"
    repo = tmp_path / "repo"
    repo.mkdir()
    os.symlink(SHARED, tmp_path / "shared")
    monkeypatch.chdir(repo)
    namespace: dict[str, object] = {"__name__": "docs_embeddings"}
    for i, block in enumerate(python_blocks(DOC.read_text(encoding="utf-8"))):
        code = compile(block, f"{DOC}:block{i + 1}", "exec")
        exec(code, namespace)
    out = capsys.readouterr().out
    assert "distinct texts" in out  # the printed estimate
    assert (repo / "embeddings-demo" / "reviews-index" / "manifest.json").exists()
