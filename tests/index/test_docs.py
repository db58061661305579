"""docs/search.md: every Python block runs, in order, in one namespace (the page's examples are tested)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "search.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_examples() -> None:
    assert len(_blocks()) >= 10


@pytest.mark.slow
def test_docs_search_examples_run(
    monkeypatch: pytest.MonkeyPatch, cookbook: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)  # the page reads ../shared/data/cookbook/... relative to the repository
    namespace: dict[str, object] = {"__name__": "docs_search"}
    for number, code in enumerate(_blocks(), 1):
        try:
            exec(compile(code, f"{DOC}:block{number}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message says which block failed
            raise AssertionError(f"docs/search.md python block {number} failed: {exc!r}\n{code}") from exc
    out = capsys.readouterr().out
    assert "EmbeddingIndex(count=1000, dim=1536, metric='cosine', dtype='float32'" in out
    assert "['ids.json', 'manifest.json', 'metadata.jsonl', 'vectors.npy']" in out
    assert "3.99" in out


README_SNIPPET = '''
import tempfile
from finetune_embed.embeddings import Embedder
from finetune_embed.index import EmbeddingIndex
from finetune_embed.testing import FakeOpenAI

embedder = Embedder(FakeOpenAI().client(), model="text-embedding-3-small", cache=False)  # Embedder() for the real API
index = EmbeddingIndex.build(["great coffee", "bitter tea", "dog treats"], embedder)
hits = index.search_text("coffee beans", embedder, k=2, where={"text": {"$ne": "dog treats"}})
print(hits.ids, hits.scores)                     # exact top-k, cosine similarity, best first
path = index.save(tempfile.mkdtemp() + "/my-index")  # atomic; .npy + JSON, no pickle
assert EmbeddingIndex.load(path).search_text("coffee beans", embedder, k=2).ids == hits.ids
'''


def test_readme_snippet_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The quickstart snippet proposed for README.md."""
    exec(compile(README_SNIPPET, "README snippet", "exec"), {"__name__": "readme"})
    assert "['0'" in capsys.readouterr().out
