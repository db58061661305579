"""docs/vector-stores.md: every Python block runs, in order, in one namespace.

A block followed directly by ``<!-- doctest: skip ... -->`` is not run (it needs a client or a service that does
not run here: Pinecone, Weaviate); the comment says why.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "vector-stores.md"


BLOCK = re.compile(r"^```python\n(.*?)^```\n(<!-- doctest: skip[^>]*-->)?", re.MULTILINE | re.DOTALL)


def _blocks() -> list[str]:
    """The runnable blocks."""
    return [m.group(1) for m in BLOCK.finditer(DOC.read_text(encoding="utf-8")) if m.group(2) is None]


def test_the_pinecone_and_weaviate_client_blocks_are_the_skipped_ones() -> None:
    """Their clients and services do not run here; every other block of the page runs."""
    skipped = [m.group(1) for m in BLOCK.finditer(DOC.read_text(encoding="utf-8")) if m.group(2) is not None]
    assert sum("from pinecone import" in code for code in skipped) == 1
    assert sum("import weaviate" in code for code in skipped) == 1
    assert not any("pinecone" in code.split("def ")[0] or "weaviate." in code for code in _blocks())


def test_docs_vector_stores_examples_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, redis_url: str, typesense_node: Any
) -> None:
    """The page's examples run as written and print what the page says (the Redis and Typesense ones against the
    suite's servers, named by REDIS_URL, TYPESENSE_URL and TYPESENSE_API_KEY as the examples read them)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    typesense_node.ensure_running()
    monkeypatch.setenv("TYPESENSE_URL", typesense_node.url)
    monkeypatch.setenv("TYPESENSE_API_KEY", typesense_node.api_key)
    blocks = _blocks()
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "docs_vector_stores"}
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{DOC}:block{number}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "['en']" in out
    assert "Or(filters=(" in out
    assert out.count("['b', 'c']") >= 2  # Redis and Typesense
    assert "['b']\n" in out  # the Milvus Lite example
    assert "CopyResult(copied=2, skipped=1)" in out
    assert """{'lang': 'fr', 'user.id': 7, 'json': '{"lang": "fr", "user": {"id": 7}}'}""" in out
    assert '{"lang": "en", "tags": ["x", "y"]}' in out


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
