"""Uploading Datasets, local validation before upload, and estimates that reuse the Dataset's own counting."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from finetune_embed import ConfigError, DatasetValidationError, UnsupportedModelError
from finetune_embed.dataset import Dataset
from finetune_embed.finetuning import JobEstimate, JobManager, ModelRetirementWarning
from finetune_embed.testing import FakeOpenAI

from .conftest import fake_day, news_examples, write_jsonl


def test_upload_a_dataset(jobs: JobManager, fake: FakeOpenAI, cookbook: Path) -> None:
    ds = Dataset.from_list(news_examples(cookbook, 0, 15))
    file = jobs.files.upload(ds, model="gpt-4o-mini")
    assert file.filename.startswith("dataset.")
    assert file.filename.endswith(".jsonl")
    assert jobs.files.upload(ds).id == file.id  # same content, same file
    job = jobs.create("gpt-4o-mini", ds, validation_file=Dataset.from_list(news_examples(cookbook, 50, 2)))
    assert job.training_file == file.id
    assert jobs.wait(job.id).status == "succeeded"


def test_invalid_data_is_refused_before_upload(jobs: JobManager, fake: FakeOpenAI, tmp_path: Path,
                                               cookbook: Path) -> None:
    examples = news_examples(cookbook, 0, 12)
    examples[2]["messages"][2]["content"] = "Sports <|fim_suffix|>"  # type: ignore[index]
    bad = write_jsonl(tmp_path / "bad.jsonl", examples)
    with pytest.raises(DatasetValidationError, match="fim_suffix") as info:
        jobs.create("gpt-4o-mini", bad)
    assert info.value.report.error_count >= 1
    assert fake.ledger.requests == []  # nothing was sent
    with pytest.raises(DatasetValidationError, match="at least 10 examples"):
        jobs.files.upload(write_jsonl(tmp_path / "few.jsonl", examples[:4]))
    file = jobs.files.upload(bad, validate=False)  # the caller overrides: uploaded as it is
    assert file.bytes == bad.stat().st_size


def test_every_argument_is_checked_before_anything_is_uploaded(
    jobs: JobManager, fake: FakeOpenAI, train_path: Path
) -> None:
    with pytest.raises(ConfigError, match="suffix must be 1-64"):
        jobs.create("gpt-4o-mini", train_path, suffix="")
    with pytest.raises(ConfigError, match="n_epochs must be an integer 1-50"):
        jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 0})
    with pytest.raises(ConfigError, match="at most 16 key-value pairs"):
        jobs.create("gpt-4o-mini", train_path, metadata={str(i): "v" for i in range(17)})
    with pytest.raises(UnsupportedModelError, match="cannot be fine-tuned with method='dpo'"):
        jobs.create("gpt-4o-mini", train_path, method="dpo")
    with pytest.raises(ConfigError, match="no such file"):
        jobs.create("gpt-4o-mini", "missing/train.jsonl")
    with pytest.raises(ConfigError, match="validation_file must be a file id"):
        jobs.create("gpt-4o-mini", train_path, validation_file="")
    assert fake.ledger.requests == []


def test_model_checks_use_the_managers_date(client: object, fake: FakeOpenAI, train_path: Path) -> None:
    near = JobManager(client, today=lambda: date(2026, 11, 25))  # type: ignore[arg-type]
    with pytest.warns(ModelRetirementWarning, match="no new fine-tuning jobs after 2027-01-06 \\(42 days\\)"):
        job = near.create("gpt-4o-mini", train_path)
    assert job.status == "validating_files"
    late = JobManager(client, today=lambda: date(2026, 12, 1))  # type: ignore[arg-type]
    with pytest.raises(UnsupportedModelError, match=r"gpt-4\.1-nano-2025-04-14 was shut down by OpenAI on 2026-10-23"):
        late.create("gpt-4.1-nano", train_path)


def test_estimate_reproduces_the_cookbook_figures(jobs: JobManager, cookbook: Path) -> None:
    toy = cookbook / "toy_chat_fine_tuning.jsonl"
    estimate = jobs.estimate(toy, model="gpt-3.5-turbo-0613")  # 4,096-token examples, cl100k_base
    assert isinstance(estimate, JobEstimate)
    assert (estimate.n_examples, estimate.dataset_tokens, estimate.n_epochs) == (5, 8242, 20)
    assert estimate.epochs_auto
    assert estimate.billed_tokens_per_epoch == 4306
    assert estimate.billed_tokens == 86_120
    assert estimate.price_per_1m == 8.0
    assert estimate.cost_usd == pytest.approx(86_120 / 1e6 * 8.0)
    assert "86,120 billed tokens" in str(estimate)
    explicit = jobs.estimate(Dataset.from_json(toy), model="gpt-3.5-turbo-0613", n_epochs=3)
    assert (explicit.n_epochs, explicit.billed_tokens, explicit.epochs_auto) == (3, 3 * 4306, False)


def test_estimate_from_an_uploaded_file_with_validation(jobs: JobManager, train_path: Path,
                                                        valid_path: Path) -> None:
    file = jobs.files.upload(train_path)
    by_id = jobs.estimate(file.id, model="gpt-4o-mini", validation_file=valid_path)
    local = jobs.estimate(train_path, model="gpt-4o-mini")
    assert by_id.billed_tokens == local.billed_tokens
    assert by_id.n_examples == 20
    assert by_id.n_epochs == 5
    assert by_id.validation_examples == 5
    assert by_id.validation_tokens is not None
    assert by_id.validation_tokens > 0
    assert by_id.to_dict()["model"] == "gpt-4o-mini"


def test_estimate_for_reinforcement_has_no_token_price(jobs: JobManager, cookbook: Path) -> None:
    estimate = jobs.estimate(cookbook / "toy_chat_fine_tuning.jsonl", model="o4-mini", method="reinforcement")
    assert estimate.cost_usd is None
    assert any("per training hour" in note for note in estimate.notes)
    with pytest.raises(ConfigError, match="n_epochs must be an integer 1-50"):
        jobs.estimate(cookbook / "toy_chat_fine_tuning.jsonl", model="gpt-4o-mini", n_epochs=99)


def test_validation_file_needs_one_example_not_ten(jobs: JobManager, fake: FakeOpenAI, train_path: Path,
                                                   tmp_path: Path, cookbook: Path) -> None:
    one = write_jsonl(tmp_path / "one.jsonl", news_examples(cookbook, 200, 1))
    job = jobs.create("gpt-4o-mini", train_path, validation_file=one, hyperparameters={"n_epochs": 1})
    assert jobs.wait(job.id).status == "succeeded"
    assert fake_day(fake) == date(2026, 1, 1)
