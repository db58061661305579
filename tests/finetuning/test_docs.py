"""Every Python example in docs/fine-tuning.md runs as written, in order, against FakeOpenAI.

A block followed directly by ``<!-- doctest: skip ... -->`` is not run (it needs a real key, an optional
dependency, or an endpoint the fake does not serve); the comment says why.
"""

from __future__ import annotations

import re
import shutil
import warnings
from datetime import date
from pathlib import Path

import pytest

from finetune_embed.finetuning import ModelRetirementWarning

DOC = Path(__file__).resolve().parents[2] / "docs" / "fine-tuning.md"
BLOCK = re.compile(r"^```python\n(.*?)^```\n(<!-- doctest: skip[^>]*-->)?", re.MULTILINE | re.DOTALL)


class _Today(date):
    """The docs' day: 2026-11-25, 42 days before OpenAI's last day for new fine-tuning jobs."""

    @classmethod
    def today(cls) -> _Today:
        return cls(2026, 11, 25)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The runnable blocks with their line numbers."""
    return [
        (text[: m.start()].count("\n") + 2, m.group(1))
        for m in BLOCK.finditer(text)
        if m.group(2) is None
    ]


def test_the_doc_has_runnable_and_skipped_blocks() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert len(python_blocks(text)) >= 12
    assert len(BLOCK.findall(text)) - len(python_blocks(text)) == 2


def test_every_example_runs(tmp_path: Path, cookbook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune_embed.finetuning import _async_jobs, _files, _jobs

    for module in (_jobs, _async_jobs, _files):
        monkeypatch.setattr(module, "date", _Today)  # pin "today" for the catalog checks (the date the docs show)
    shutil.copy(cookbook / "AG_news_samples.csv", tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_fine_tuning"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for line, code in python_blocks(DOC.read_text(encoding="utf-8")):
            exec(compile(code, f"{DOC}:{line}", "exec"), namespace)
    retirement = [w for w in caught if issubclass(w.category, ModelRetirementWarning)]
    assert retirement, "the docs say jobs.create warns near OpenAI's cut-off"
    assert "no new fine-tuning jobs after 2027-01-06" in str(retirement[0].message)
    other = [w for w in caught if not issubclass(w.category, ModelRetirementWarning)]
    assert other == [], [str(w.message) for w in other]
