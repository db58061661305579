"""``finetune-embed eval`` against the fake over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from finetune_embed import Dataset
from finetune_embed.cli import main
from finetune_embed.testing import FakeOpenAI


@pytest.fixture
def served(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with fake.serve(realtime=False) as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-eval")
        yield fake


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_eval_compares_base_and_fine_tuned(
    fake: FakeOpenAI, news: Dataset, fine_tune: Callable[..., str], tmp_path: Path, served: FakeOpenAI
) -> None:
    train, test = news.train_test_split(test_size=12, seed=0)
    tuned = fine_tune(train)
    test.to_json(tmp_path / "test.jsonl")
    rows = tmp_path / "rows.jsonl"
    args = ["eval", str(tmp_path / "test.jsonl"), "-m", "base=gpt-4o-mini", "-m", f"tuned={tuned}"]
    code, out, err = run(*args, "-s", "exact", "-s", "embedding", "--rows", str(rows), "--temperature", "0")
    assert code == 0, err
    assert "base" in out
    assert "tuned vs base" in out
    assert "win/tie/loss" in out
    assert "Worst on exact (tuned):" in out
    table = [json.loads(line) for line in rows.read_text().splitlines()]
    assert len(table) == 24
    assert {r["candidate"] for r in table} == {"base", "tuned"}
    requests = served.ledger.chat_requests
    assert requests == 24

    code, out, err = run(*args, "-s", "exact", "-s", "embedding", "--temperature", "0", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert served.ledger.chat_requests == requests  # the rerun came from the cache
    assert report["usage"]["tuned"]["cached"] == 12
    assert [c["name"] for c in report["candidates"]] == ["base", "tuned"]
    exact = next(s for s in report["summary"] if s["candidate"] == "tuned" and s["scorer"] == "exact")
    assert exact["mean"] > 0
    base = next(s for s in report["summary"] if s["candidate"] == "base" and s["scorer"] == "exact")
    assert base["mean"] == 0
    assert report["comparisons"][0]["b"] == "tuned"

    code, out, err = run("eval", str(tmp_path / "test.jsonl"), "-m", "gpt-4.1", "--estimate", "--no-cache")
    assert code == 0, err
    assert "gpt-4.1: 12 request(s) to send (0 cached)" in out
    assert served.ledger.chat_requests == requests


def test_eval_errors_are_one_line(tmp_path: Path, served: FakeOpenAI) -> None:
    data = tmp_path / "d.jsonl"
    Dataset.from_pairs(["q"], ["a"]).to_json(data)
    code, _, err = run("eval", str(data), "-m", "gpt-4o-mini", "-s", "bleu")
    assert code == 1
    assert err.startswith("Error: unknown scorer 'bleu'")
    assert "Traceback" not in err
    code, _, err = run("eval", str(data), "-m", "no-such-model", "--no-cache")
    assert code == 1
    assert "does not exist" in err
    assert "Traceback" not in err


def test_dataset_analyze_reports_lines(tmp_path: Path, served: FakeOpenAI) -> None:
    from .test_analysis import planted_file

    path = planted_file(tmp_path / "support.jsonl")
    code, out, err = run("dataset", "analyze", str(path), "--dimensions", "512", "--clusters", "3")
    assert code == 0, err
    assert "Conflicting examples (near-identical prompts, different answers): 3" in out
    assert "lines 2, 13: near-identical prompts" in out
    assert served.ledger.embedding_requests >= 1
    requests = served.ledger.embedding_requests
    code, out, err = run("dataset", "analyze", str(path), "--dimensions", "512", "--clusters", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [c["lines"] for c in data["conflicts"]] == [[2, 13], [5, 14], [7, 18]]
    assert served.ledger.embedding_requests == requests  # the embeddings came from the cache
    code, _, err = run("dataset", "analyze", str(path), "--similarity", "2")
    assert code == 2
