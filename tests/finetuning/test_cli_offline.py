"""The files / jobs / models-delete commands: help, usage errors and local checks (no API call is made)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from finetune_embed.cli import main

ENV = {"OPENAI_API_KEY": "sk-test-offline-0000", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_groups_are_listed(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "files" in result.output
    assert "jobs" in result.output


@pytest.mark.parametrize(
    ("group", "commands"),
    [
        ("files", ["upload", "list", "get", "download", "delete"]),
        ("jobs", ["create", "list", "get", "wait", "follow", "cancel", "pause", "resume", "events", "checkpoints",
                  "metrics"]),
        ("models", ["list", "info", "delete"]),
    ],
)
def test_group_help_lists_commands(runner: CliRunner, group: str, commands: list[str]) -> None:
    result = runner.invoke(main, [group, "--help"])
    assert result.exit_code == 0, result.output
    for command in commands:
        assert f"  {command}" in result.output


def test_create_rejects_bad_arguments_before_calling_the_api(runner: CliRunner) -> None:
    result = runner.invoke(main, ["jobs", "create", "gpt-4o-mini", "file-abc", "--suffix", "x" * 65], env=ENV)
    assert result.exit_code == 1
    assert "suffix must be 1-64 characters, got 65" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "three"], "'three' is not an integer or 'auto'"),
        (["--metadata", "novalue"], "expected KEY=VALUE"),
        (["--method", "lora"], "'lora' is not one of"),
    ],
)
def test_create_usage_errors_exit_2(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(main, ["jobs", "create", "gpt-4o-mini", "file-abc", *args], env=ENV)
    assert result.exit_code == 2
    assert message in result.output


def test_create_hyperparameter_range_is_checked_locally(runner: CliRunner) -> None:
    result = runner.invoke(main, ["jobs", "create", "gpt-4.1-mini", "file-abc", "--method", "dpo", "--beta", "3"],
                           env=ENV)
    assert result.exit_code == 1
    assert "beta must be a number in (0, 2]" in result.output


def test_create_with_a_missing_local_file(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["jobs", "create", "gpt-4.1-mini", str(tmp_path / "nope.jsonl")], env=ENV)
    assert result.exit_code == 1
    assert "no such file" in result.output


def test_grader_must_be_json(runner: CliRunner, tmp_path: Path) -> None:
    grader = tmp_path / "grader.json"
    grader.write_text("{not json")
    result = runner.invoke(
        main, ["jobs", "create", "o4-mini", "file-abc", "--method", "reinforcement", "--grader", str(grader)], env=ENV
    )
    assert result.exit_code == 2
    assert "is not JSON" in result.output


def test_models_delete_refuses_base_models_and_asks_first(runner: CliRunner) -> None:
    # on OpenAI (no base URL) the name is checked before any request is sent
    result = runner.invoke(main, ["models", "delete", "gpt-4o-mini", "--yes"], env={"OPENAI_API_KEY": "sk-test-0000"})
    assert result.exit_code == 1
    assert "not a fine-tuned model" in result.output
    result = runner.invoke(main, ["models", "delete", "ft:gpt-4o-mini:org::abc"], env=ENV, input="n\n")
    assert result.exit_code == 1
    assert "Aborted" in result.output


def test_catalog_warnings_are_one_line_on_stderr(cookbook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import date, timedelta

    from finetune_embed.catalog import FineTuneModelInfo, default_catalog

    yesterday = date.today() - timedelta(days=1)
    retired = FineTuneModelInfo("test-retired-base", shutdown=yesterday, training_price_per_1m=1.0)
    monkeypatch.setitem(default_catalog().fine_tune_models, retired.name, retired)  # restored after the test
    env = {"AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:9", "OPENAI_API_VERSION": "2025-04-01-preview",
           "AZURE_OPENAI_API_KEY": "azure-key-offline-0000"}
    toy = cookbook / "toy_chat_fine_tuning.jsonl"
    result = CliRunner().invoke(main, ["jobs", "create", "test-retired-base", str(toy), "--dry-run", "--azure"],
                                env=env)
    assert result.exit_code == 0, result.output
    assert f"Warning: test-retired-base was shut down on OpenAI on {yesterday}" in result.stderr
    assert "Dry run, nothing created. test-retired-base (supervised): 5 examples" in result.stdout
    assert "Traceback" not in result.output
