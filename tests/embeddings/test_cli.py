"""``finetune-embed embed``: txt / jsonl / csv in, .npy or an index directory out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from finetune_embed.cli import main
from finetune_embed.testing import FakeOpenAI


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    with fake.serve() as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-test")
        yield fake


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_txt_lines_to_npy(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("first line\nsecond line\nfirst line\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    code, stdout, stderr = run("embed", str(src), "-o", str(out))
    assert code == 0, stderr
    assert "Wrote 3 x 1536 vectors" in stdout
    vectors = np.load(out)
    np.testing.assert_array_equal(vectors, served.embeddings(["first line", "second line", "first line"]))
    assert served.ledger.embedding_requests == 1


def test_csv_column_to_an_index(served: FakeOpenAI, tmp_path: Path) -> None:
    from finetune_embed.index import EmbeddingIndex

    src = tmp_path / "reviews.csv"
    src.write_text('id,Score,Text\nr1,5,"Great coffee, fresh"\nr2,1,Stale and bitter\n', encoding="utf-8")
    out = tmp_path / "index"
    code, stdout, stderr = run(
        "embed", str(src), "--column", "Text", "--id-column", "id", "--meta", "Score", "--store-text",
        "-m", "text-embedding-3-small", "--dimensions", "256", "-o", str(out), "--json",
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["format"] == "index"
    assert summary["rows"] == 2
    index = EmbeddingIndex.load(out)
    assert index.ids == ["r1", "r2"]
    assert index.metadata[0] == {"Score": "5", "text": "Great coffee, fresh"}
    np.testing.assert_allclose(
        index.vectors, served.embeddings(["Great coffee, fresh", "Stale and bitter"], dimensions=256), rtol=1e-6
    )


def test_jsonl_field_with_nested_keys(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_text('{"doc": {"body": "alpha"}}\n\n{"doc": {"body": "beta"}}\n', encoding="utf-8")
    out = tmp_path / "v.npy"
    code, _, stderr = run("embed", str(src), "--field", "doc.body", "-o", str(out))
    assert code == 0, stderr
    np.testing.assert_array_equal(np.load(out), served.embeddings(["alpha", "beta"]))


def test_estimate_needs_no_key_and_sends_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("one two three\nfour\n", encoding="utf-8")
    code, stdout, stderr = run("embed", str(src), "--estimate", "--json")
    assert code == 0, stderr
    est = json.loads(stdout)
    assert (est["inputs"], est["tokens"], est["requests"]) == (2, 4, 1)
    assert est["cost_batch"] == pytest.approx(4 * 0.01 / 1e6)
    code, stdout, _ = run("embed", str(src), "--estimate")
    assert "cost_standard" in stdout


def test_resumes_from_the_cache(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("a\nb\n", encoding="utf-8")
    cache = tmp_path / "c.sqlite"
    for _ in range(2):
        code, _, stderr = run("embed", str(src), "-o", str(tmp_path / "v.npy"), "--cache", str(cache))
        assert code == 0, stderr
    assert served.ledger.embedding_requests == 1
    code, _, _ = run("embed", str(src), "-o", str(tmp_path / "w.npy"), "--no-cache")
    assert served.ledger.embedding_requests == 2


def test_empty_lines_are_reported_or_skipped(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("a\n\nb\n", encoding="utf-8")
    code, _, stderr = run("embed", str(src), "-o", str(tmp_path / "v.npy"))
    assert code == 1
    assert stderr.startswith("Error: ")
    assert "index 1" in stderr
    assert "Traceback" not in stderr
    code, stdout, stderr = run("embed", str(src), "-o", str(tmp_path / "v.npy"), "--empty-inputs", "skip", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["skipped_empty"] == ["1"]
    assert np.load(tmp_path / "v.npy").shape == (2, 1536)


@pytest.mark.parametrize(
    ("content", "suffix", "args", "code", "message"),
    [
        ("id,Text\n1,x\n", ".csv", ["--column", "Body"], 1, "no column 'Body'; the columns are 'id', 'Text'"),
        ('{"a": "x"}\n{"b": "y"}\n', ".jsonl", ["--field", "a"], 1, ":2: no field 'a'"),
        ('{"a": 3}\n', ".jsonl", ["--field", "a"], 1, ":1: the text is int"),
        ("x\n", ".jsonl", ["--field", "a"], 1, ":1: not valid JSON"),
        ("x\n", ".csv", [], 2, "needs --column"),
        ("x\n", ".txt", ["--field", "a"], 2, "--field is for .jsonl"),
    ],
)
def test_bad_inputs(tmp_path: Path, content: str, suffix: str, args: list[str], code: int, message: str) -> None:
    src = tmp_path / f"in{suffix}"
    src.write_text(content, encoding="utf-8")
    got, _, stderr = run("embed", str(src), "-o", str(tmp_path / "v.npy"), *args)
    assert got == code
    assert message in stderr


def test_output_is_required(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("x\n", encoding="utf-8")
    code, _, stderr = run("embed", str(src))
    assert code == 2
    assert "-o OUT" in stderr


def test_dimensions_refused_for_ada(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("x\n", encoding="utf-8")
    out = str(tmp_path / "v.npy")
    code, _, stderr = run("embed", str(src), "-m", "text-embedding-ada-002", "--dimensions", "64", "-o", out)
    assert code == 1
    assert "does not accept `dimensions`" in stderr
