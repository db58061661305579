"""The README's quickstart runs as written, and its setup commands are the ones CI runs."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_quickstart_blocks_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every python block of the README runs, in order, in one namespace, from the repository root."""
    monkeypatch.chdir(ROOT)
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    namespace: dict[str, object] = {"__name__": "readme"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the model's shutdown-date warning, which the README mentions
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    hits = namespace["hits"]
    assert hits.ids[0] in {"a", "b"}  # type: ignore[attr-defined]
    job = namespace["job"]
    assert job.status == "succeeded"  # type: ignore[attr-defined]
    # the sample output the README shows in a comment is what the fake prints
    shown = re.search(r"print\(job\.fine_tuned_model\)\s+# (\S+?)\.\.\.", README.read_text(encoding="utf-8"))
    assert shown is not None
    assert job.fine_tuned_model.startswith(shown.group(1))  # type: ignore[attr-defined]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run ends with exactly the test command the README shows."""
    readme = README.read_text(encoding="utf-8")
    command = re.search(r"The one test command:\n\n```sh\n(.*?)\n```", readme, flags=re.S)
    assert command is not None
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command.group(1).strip() in ci.splitlines()
    second = re.search(r"the Milvus server tier.*?\n\n```sh\n(.*?)\n```", readme, flags=re.S)
    assert second is not None
    assert second.group(1).strip() in ci.splitlines()


def test_main_command_works_offline() -> None:
    """The README's main job runs without a key or network and exits 0."""
    from click.testing import CliRunner

    from finetune_embed.cli import main

    readme = README.read_text(encoding="utf-8")
    line = next(x for x in readme.splitlines() if x.startswith("finetune-embed ") and "the main job" in x)
    args = line.split("#")[0].split()[1:]
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        result = runner.invoke(main, [*args, "--on", "2026-11-25"])
    assert result.exit_code == 0, result.output
    assert "support_chat.jsonl" in result.output
