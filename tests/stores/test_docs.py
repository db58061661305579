"""docs/vector-stores.md: every Python block runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "vector-stores.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_docs_vector_stores_examples_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    """The page's examples run as written and print what the page says (the Redis one against the suite's
    server, named by REDIS_URL as the example reads it)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    blocks = _blocks()
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "docs_vector_stores"}
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{DOC}:block{number}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "['en']" in out
    assert "Or(filters=(" in out
    assert "['b', 'c']" in out
    assert "['b']\n" in out  # the Milvus Lite example


def test_doctests_of_the_protocol_and_filters() -> None:
    """The examples in the docstrings of the protocol, the filters and the matches run."""
    import doctest

    from finetune_embed.index import _filters, _matches, _protocol

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for module in (_protocol, _filters, _matches):
        for name in module.__all__:
            # module=False: public names report finetune_embed as their home, so testmod would skip them
            for test in finder.find(getattr(module, name), name, module=False, globs=dict(vars(module))):
                runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
    assert result.attempted >= 5
