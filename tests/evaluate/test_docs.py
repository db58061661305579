"""Every Python example in docs/evaluation.md runs as written, in order, against FakeOpenAI."""

from __future__ import annotations

import re
import shutil
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "evaluation.md"
BLOCK = re.compile(r"^```python\n(.*?)^```\n", re.MULTILINE | re.DOTALL)


class _Today(date):
    """The docs' day (the catalog checks of jobs.create)."""

    @classmethod
    def today(cls) -> _Today:
        return cls(2026, 11, 25)


def test_the_page_has_examples() -> None:
    assert len(BLOCK.findall(DOC.read_text(encoding="utf-8"))) >= 9


def test_every_example_runs(tmp_path: Path, cookbook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune_embed.finetuning import _async_jobs, _files, _jobs

    for module in (_jobs, _async_jobs, _files):
        monkeypatch.setattr(module, "date", _Today)
    shutil.copy(cookbook / "AG_news_samples.csv", tmp_path)
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text(encoding="utf-8")
    namespace: dict[str, object] = {"__name__": "docs_evaluation"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the model-retirement warning the fine-tuning docs explain
        for match in BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 2
            exec(compile(match.group(1), f"{DOC}:{line}", "exec"), namespace)
    # the figures the page shows
    report: Any = namespace["report"]
    assert report.mean("tuned", "exact") == 0.45
    assert report.mean("base", "exact") == 0.0
    assert report.mean("base", "embedding") == pytest.approx(0.014, abs=5e-4)
    assert report.mean("tuned", "embedding") == pytest.approx(0.456, abs=5e-4)
    (exact,) = report.compare("base", "tuned", scorer="exact")
    assert (exact.wins, exact.ties, exact.losses) == (18, 22, 0)
    assert (exact.low, exact.high) == pytest.approx((0.3, 0.6), abs=0.05)
    assert report.usage["base"].prompt_tokens == report.usage["tuned"].prompt_tokens == 1706
    assert report.usage["base"].completion_tokens == 1257
    assert report.usage["tuned"].completion_tokens == 52
    assert report.worst("exact", "tuned")[0].line == 155
    prompts: Any = namespace["prompts"]
    assert (prompts.usage["full prompt"].prompt_tokens, prompts.usage["short prompt"].prompt_tokens) == (1706, 906)
    conflict: Any = namespace["conflict"]
    assert conflict.answers == {"Sci/Tech": [1], "World": [361]}
    # 1 create (the second was cached), 3 in create_many, 2 x 40 in the evaluation (the rerun: none), 40 for the
    # short prompt (the full prompt's answers were cached)
    assert namespace["fake"].ledger.chat_requests == 1 + 3 + 80 + 40  # type: ignore[attr-defined]
