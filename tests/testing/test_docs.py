"""Every Python block of docs/testing.md runs (each in a fresh namespace; `test_*` functions it defines are
called with a fresh fake)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from finetune_embed.testing import FakeOpenAI

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_block_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_testing_block_{index}"}
    exec(compile(BLOCKS[index], f"{DOC}:block{index}", "exec"), namespace)
    for name, func in list(namespace.items()):
        if name.startswith("test_") and callable(func):
            params = inspect.signature(func).parameters
            func(**{p: FakeOpenAI() for p in params if p == "fake_openai"})
