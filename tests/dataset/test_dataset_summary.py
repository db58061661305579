"""One renderer: DatasetStats.summary() is exactly the stats block that `dataset validate` and `stats` print."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from dataset_helpers import good_rows, write_jsonl

from finetune_embed.cli import main
from finetune_embed.dataset import Dataset


def _files(tmp_path: Path) -> tuple[Path, Path]:
    rows = good_rows(30)
    rows[4]["messages"][-1]["content"] = "I'm sorry, but I can't help with that."  # a refusal-like reply
    rows.append(json.loads(json.dumps(rows[0])))  # an exact duplicate
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    valid = write_jsonl(tmp_path / "valid.jsonl", [rows[2], *good_rows(5, start=100)])  # one leaked example
    return train, valid


def test_stats_command_prints_the_summary(tmp_path: Path) -> None:
    train, valid = _files(tmp_path)
    stats = Dataset.stats_file(train, model="gpt-4o-mini", validation=valid)
    summary = stats.summary()
    assert "Balance: 3.2% refusal-like replies; 1 exact / 1 near duplicates; 1 validation example(s) also in the " in (
        summary
    )
    result = CliRunner().invoke(
        main, ["dataset", "stats", str(train), "--model", "gpt-4o-mini", "--validation", str(valid)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.endswith(summary + "\n")


def test_validate_command_prints_the_summary(tmp_path: Path) -> None:
    train, _ = _files(tmp_path)
    report = Dataset.validate_file(train, stats=True)
    assert report.stats is not None
    summary = report.stats.summary()
    assert "Note: no model given" in summary  # notes are part of the one rendering
    result = CliRunner().invoke(main, ["dataset", "validate", str(train)])
    assert summary + "\n" in result.output


def test_in_memory_stats_render_the_same_lines(tmp_path: Path) -> None:
    train, valid = _files(tmp_path)
    from_file = Dataset.stats_file(train, model="gpt-4o-mini", validation=valid).summary()
    in_memory = Dataset.from_json(train).stats(model="gpt-4o-mini", validation=Dataset.from_json(valid)).summary()
    assert in_memory == from_file
    assert in_memory.splitlines()[0].startswith("Tokens: ")
    assert " in 31 examples with o200k_base" in in_memory


def test_clean_data_shows_a_zero_refusal_share_and_no_leak_line_without_validation(tmp_path: Path) -> None:
    stats = Dataset.from_list(good_rows(12)).stats(model="gpt-4o-mini")
    lines = stats.summary().splitlines()
    assert "Balance: 0.0% refusal-like replies" in lines
    assert not any("validation" in line for line in lines)
    with_validation = Dataset.from_list(good_rows(12)).stats(validation=Dataset.from_list(good_rows(3, start=50)))
    assert "0 validation example(s) also in the training data" in with_validation.summary()
