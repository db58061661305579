"""Hostile inputs cannot make the dataset readers grow memory without bound or run forever: devices and FIFOs
are refused, a line over the limit is reported (``line_too_long``) without being read whole, ``fix`` ends at
once on ``/dev/urandom`` and leaves nothing behind, and a 20 MB line costs a bounded amount of memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from dataset_helpers import good_rows, write_jsonl

from finetune_embed import Dataset, FileAccessError, LineTooLongError
from finetune_embed.dataset import IssueCode, fix_file

DEVICES = [d for d in ("/dev/zero", "/dev/urandom") if os.path.exists(d)]


def quickly(started: float) -> None:
    assert time.monotonic() - started < 5, "took too long: the reader did not refuse at once"


@pytest.mark.parametrize("device", DEVICES)
def test_validate_file_refuses_a_device(device: str) -> None:
    started = time.monotonic()
    report = Dataset.validate_file(device, stats=True)
    quickly(started)
    assert [i.code for i in report.issues] == [IssueCode.FILE_UNREADABLE]
    assert "character device, not a regular file" in report.issues[0].message
    assert not report.ok


def test_validate_file_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "train.jsonl"
    os.mkfifo(fifo)
    started = time.monotonic()
    report = Dataset.validate_file(fifo)
    quickly(started)
    assert [i.code for i in report.issues] == [IssueCode.FILE_UNREADABLE]
    assert "FIFO" in report.issues[0].message


@pytest.mark.parametrize("device", DEVICES)
def test_from_json_and_from_csv_refuse_a_device(device: str) -> None:
    started = time.monotonic()
    with pytest.raises(FileAccessError, match="not a regular file"):
        Dataset.from_json(device)
    with pytest.raises(FileAccessError, match="not a regular file"):
        Dataset.from_csv(device)
    quickly(started)


@pytest.mark.parametrize("device", DEVICES)
def test_fix_refuses_a_device_at_once_and_writes_nothing(device: str, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(FileAccessError, match="not a regular file"):
        fix_file(device, output=tmp_path / "out.fixed.jsonl", rejected=tmp_path / "out.rejected.jsonl")
    quickly(started)
    assert list(tmp_path.iterdir()) == []


def _file_with_a_long_line(tmp_path: Path, at: int = 5, size: int = 5000) -> Path:
    rows = [json.dumps(r) for r in good_rows(12)]
    rows.insert(at - 1, '{"messages": "' + "x" * size + '"}')
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_validate_file_reports_a_long_line_and_goes_on(tmp_path: Path, workers: int) -> None:
    path = _file_with_a_long_line(tmp_path)
    report = Dataset.validate_file(path, stats=True, max_line_bytes=1000, workers=workers)
    assert [(i.code, i.line, i.severity) for i in report.issues] == [(IssueCode.LINE_TOO_LONG, 5, "error")]
    message = report.issues[0].message
    assert message.startswith(
        "Line 5 is 5,017 bytes long (it starts '{\"messages\": \"xxxxxxxxxx'), more than the 1,000 bytes"
    )
    assert "skipped unread" in message
    assert report.n_examples == 13
    assert report.n_lines == 13
    assert report.stats is not None
    assert report.stats.n_examples == 12  # the skipped line has no tokens to count


def test_validate_file_default_limit_accepts_long_lines(tmp_path: Path) -> None:
    path = _file_with_a_long_line(tmp_path)
    report = Dataset.validate_file(path)
    assert IssueCode.LINE_TOO_LONG not in report.counts


def test_from_json_stops_at_a_long_line(tmp_path: Path) -> None:
    path = _file_with_a_long_line(tmp_path, at=3)
    with pytest.raises(LineTooLongError) as info:
        Dataset.from_json(path, max_line_bytes=1000)
    assert (info.value.line, info.value.limit) == (3, 1000)
    assert info.value.length > 5000


def test_fix_sets_a_long_line_aside_with_its_head_only(tmp_path: Path) -> None:
    path = _file_with_a_long_line(tmp_path, at=2)
    result = fix_file(path, max_line_bytes=1000)
    assert (result.n_lines, result.n_kept, result.n_rejected) == (13, 12, 1)
    rejected = [json.loads(line) for line in result.rejected_path.read_text(encoding="utf-8").splitlines()]
    assert len(rejected) == 1
    record = rejected[0]
    assert record["line"] == 2
    assert record["truncated"] is True
    assert record["reasons"][0]["code"] == "line_too_long"
    assert len(record["text"]) == 200
    assert record["text"].startswith('{"messages": "xxx')
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "train.fixed.jsonl",
        "train.jsonl",
        "train.rejected.jsonl",
    ]


def test_fix_interrupted_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune_embed.dataset import _fix

    path = write_jsonl(tmp_path / "train.jsonl", good_rows(12))
    calls = {"n": 0}
    real = _fix._fix_row

    def interrupted(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_fix, "_fix_row", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fix_file(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]


_MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    from finetune_embed.dataset import Dataset
    from finetune_embed.tokenizer import get_encoding
    get_encoding("o200k_base")
    Dataset.validate_file(sys.argv[1], model="gpt-4o-mini", stats=True, workers=1)  # warm everything up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = Dataset.validate_file(sys.argv[2], model="gpt-4o-mini", stats=True, workers=1)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"grew_kb": after - before, "counts": report.counts}))
    """
)


def test_a_long_single_line_costs_bounded_memory(tmp_path: Path) -> None:
    """A 6 MB line of CJK text without a single space (one giant pre-tokenizer "word": tiktoken's cost grows
    to tens of bytes per byte of it, ~270 MB before) validates in well under 100 MB more than a small file."""
    small = write_jsonl(tmp_path / "small.jsonl", good_rows(12))
    text = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(2_000_000))
    big = write_jsonl(
        tmp_path / "big.jsonl",
        [{"messages": [{"role": "user", "content": "Summarise."}, {"role": "assistant", "content": text}]}],
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(small), str(big)], capture_output=True, text=True, env=env, check=True
    )
    result = json.loads(out.stdout)
    assert "example_too_long" in result["counts"]
    assert result["grew_kb"] < 100_000, result


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_long_texts_are_counted_exactly_in_slices(encoding: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices end only where the pre-tokenizer splits anyway: with slices of 7 characters, the sum over slices
    equals the whole text's count for random text mixing scripts, marks, digits, apostrophes and whitespace."""
    import random

    from finetune_embed.dataset import _tokens
    from finetune_embed.tokenizer import get_encoding

    monkeypatch.setattr(_tokens, "_SLICE_CHARS", 7)
    encode = get_encoding(encoding).encode_ordinary
    alphabet = [
        *"abcdeABCDE xyz   \n\n\r\t'’.,!?;:-_/()[]{}\"0123456789",
        *"éß文字。，ǅʰ𝔸😀٣Ⅻ²",
        "\u0301",
        "\u0308",
        "\u200b",
        "\u00a0",
    ]
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert _tokens.count_long(encode, text) == len(encode(text)), repr(text)
    words = " ".join(rng.choice(["alpha", "beta", "don't", "Ünïcode", "42", "x\u0301y"]) for _ in range(3000))
    monkeypatch.setattr(_tokens, "_SLICE_CHARS", 1000)
    assert _tokens.count_long(encode, words) == len(encode(words))


def test_a_long_text_is_counted_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """TokenCounter sends texts over LONG_TEXT_CHARS through count_long (and does not cache them)."""
    from finetune_embed.dataset import _tokens

    monkeypatch.setattr(_tokens, "LONG_TEXT_CHARS", 100)
    monkeypatch.setattr(_tokens, "_SLICE_CHARS", 10)
    counter = _tokens.TokenCounter("o200k_base")
    text = "the quick brown fox jumps over the lazy dog " * 20
    calls: list[int] = []
    real = counter._encode

    def spy(t: str) -> list[int]:
        calls.append(len(t))
        return real(t)

    counter._encode = spy
    assert counter.count(text) == len(real(text))
    assert max(calls) < 40
    assert text not in counter._young
