"""docs/integrations.md: every Python block runs, in order, in one namespace, and prints what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import require

require("langchain_core", "langchain")
require("llama_index.core", "llamaindex")

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def test_docs_integrations_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    namespace: dict[str, object] = {"__name__": "docs_integrations"}
    expected: list[str] = []
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{DOC}:block{number}", "exec"), namespace)
        expected += [m.strip() for m in re.findall(r"print\(.*\)\s+# (.*)", code)]
    printed = capsys.readouterr().out.splitlines()
    assert printed == expected


def test_doctests_of_the_adapters() -> None:
    import doctest

    from finetune_embed.integrations import llamaindex
    from finetune_embed.integrations.langchain import _embeddings, _vectorstore

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for module in (_embeddings, _vectorstore, llamaindex):
        for name in module.__all__:
            for test in finder.find(getattr(module, name), name, module=False, globs=dict(vars(module))):
                runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
    assert result.attempted >= 6
