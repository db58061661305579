"""The streaming validator: parallel byte ranges give the same report as one pass; memory stays flat."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from dataset_helpers import good_rows

from finetune_embed.dataset import Dataset, IssueCode


def _messy_file(path: Path, n: int = 400) -> Path:
    rng = random.Random(3)
    rows: list[str] = []
    for i, row in enumerate(good_rows(n)):
        r = rng.random()
        if r < 0.03:
            rows.append('{"messages": [')
        elif r < 0.06:
            rows.append(json.dumps({**row, "weight": 1}))
        elif r < 0.08 and rows:
            rows.append(rows[-1])
        elif r < 0.1:
            rows.append("")
        else:
            rows.append(json.dumps(row))
        if i % 97 == 0:
            rows[-1] = rows[-1].replace("What", "What <|endoftext|>")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_parallel_ranges_match_a_single_pass(tmp_path: Path) -> None:
    path = _messy_file(tmp_path / "m.jsonl")
    one = Dataset.validate_file(path, model="gpt-4o-mini", stats=True, workers=1)
    three = Dataset.validate_file(path, model="gpt-4o-mini", stats=True, workers=3)
    assert [i.to_dict() for i in one.issues] == [i.to_dict() for i in three.issues]
    assert one.counts == three.counts
    assert one.n_examples == three.n_examples
    assert one.n_lines == three.n_lines
    assert one.stats is not None
    assert three.stats is not None
    assert one.stats.to_dict() == three.stats.to_dict()
    assert one.by_code(IssueCode.DUPLICATE_EXAMPLE)
    assert one.by_code(IssueCode.RESERVED_TOKEN)
    assert one.by_code(IssueCode.BLANK_LINE)


def test_stats_file_equals_in_memory_stats(tmp_path: Path) -> None:
    rows = good_rows(30)
    rows.append(
        {
            "messages": [
                {"role": "user", "content": "Do my homework."},
                {"role": "assistant", "content": "I'm sorry, but I can't help with that."},
            ]
        }
    )
    rows.append(json.loads(json.dumps(rows[3])))
    near = json.loads(json.dumps(rows[4]))
    near["messages"][1]["content"] = "WHAT IS 4 +   4?"
    rows.append(near)
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    streamed = Dataset.stats_file(path, model="gpt-4.1-mini")
    loaded = Dataset.from_json(path).stats(model="gpt-4.1-mini")
    assert streamed.to_dict() == loaded.to_dict()
    assert streamed.n_refusals == 1
    assert streamed.n_assistant_replies == 33
    assert streamed.n_exact_duplicates == 1
    assert streamed.n_near_duplicates == 2
    assert streamed.price_per_1m == 5.0
    assert streamed.cost_usd == streamed.billed_tokens / 1e6 * 5.0


def test_stats_with_images_and_tools_are_flagged_approximate() -> None:
    from dataset_helpers import DATA

    stats = Dataset.stats_file(DATA / "images.jsonl", model="gpt-4o-2024-08-06")
    assert stats.approximate
    assert stats.n_images == 20
    plain = Dataset.from_list(good_rows(10)).stats(model="gpt-4o-mini")
    assert not plain.approximate
    assert plain.n_images == 0


def test_image_token_estimate() -> None:
    from finetune_embed.dataset import image_tokens

    assert image_tokens("gpt-4o-2024-08-06", 1024, 1024, "high") == 85 + 170 * 4
    assert image_tokens("gpt-4o-2024-08-06", 4096, 2048, None) == 85 + 170 * 6  # 2048x1024 -> 1536x768
    assert image_tokens("gpt-4o-mini", 512, 512, "high") == 2833 + 5667
    assert image_tokens("gpt-4o", None, None, "low") == 85


def test_leakage_between_files(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from finetune_embed.cli import main

    rows = good_rows(40)
    train = tmp_path / "train.jsonl"
    valid = tmp_path / "valid.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows[:30]))
    near = json.loads(json.dumps(rows[5]))
    near["messages"][1]["content"] = "what IS 5 + 5 ?"
    valid.write_text("".join(json.dumps(r) + "\n" for r in [rows[2], near, *rows[30:]]))  # 1 exact + 1 near copy
    stats = Dataset.stats_file(train, model="gpt-4o-mini", validation=valid)
    assert stats.n_leaked == 2
    assert Dataset.from_json(train).stats(validation=Dataset.from_json(valid)).n_leaked == 2
    assert Dataset.stats_file(train).n_leaked is None
    result = CliRunner().invoke(main, ["dataset", "stats", str(train), "--validation", str(valid)])
    assert result.exit_code == 0
    assert "2 validation example(s) also in the training data" in result.output


def test_no_progress_bar_thread_when_workers_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting workers sees no thread of the progress bar (forking with threads running is unsafe)."""
    import multiprocessing.process
    import threading

    threads_at_start: list[list[str]] = []
    original = multiprocessing.process.BaseProcess.start

    def spy(self: multiprocessing.process.BaseProcess) -> None:
        threads_at_start.append([t.name for t in threading.enumerate()])
        original(self)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", spy)
    monkeypatch.delenv("FINETUNE_EMBED_PROGRESS", raising=False)
    path = _messy_file(tmp_path / "m.jsonl")
    report = Dataset.validate_file(path, model="gpt-4o-mini", workers=2, progress=True)
    assert report.n_examples > 0
    assert threads_at_start
    assert not any("tqdm" in name for names in threads_at_start for name in names), threads_at_start


def test_validating_a_file_loads_no_pydantic(tmp_path: Path) -> None:
    """validate_file checks plain dicts: pydantic (about 0.2 s of imports) is loaded only for the typed models."""
    import subprocess
    import sys

    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in good_rows(12)), encoding="utf-8")
    code = (
        "import sys\nfrom finetune_embed.dataset import Dataset\n"
        f"report = Dataset.validate_file({str(path)!r}, model='gpt-4o-mini', stats=True)\n"
        "assert report.n_examples == 12 and report.stats is not None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))\n"
        "from finetune_embed.dataset import ChatExample\n"
        "print(ChatExample.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["[]", "ChatExample"]
