"""The async twins of the results half (#15): checkpoints, metrics, delete_model, estimate, content and
download give what their sync twins give, on the same fake."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import numpy as np
import pytest

from finetune_embed import ConfigError, FileAccessError, ResultsUnavailableError
from finetune_embed.finetuning import AsyncJobManager, JobManager
from finetune_embed.retry import RetryPolicy
from finetune_embed.testing import FakeOpenAI

from .conftest import fake_day


def test_results_match_the_sync_twin(fake: FakeOpenAI, jobs: JobManager, train_path: Path, tmp_path: Path) -> None:
    job = jobs.create("gpt-4o-mini", train_path, suffix="twins", hyperparameters={"n_epochs": 2})
    done = jobs.wait(job.id, progress=False)
    assert done.fine_tuned_model is not None
    sync_metrics = jobs.metrics(job.id)
    sync_checkpoints = jobs.checkpoints(job.id)
    sync_estimate = jobs.estimate(done.training_file, model="gpt-4o-mini", n_epochs=2)
    result_file = done.result_files[0]

    async def run() -> None:
        client = fake.async_client(retry=RetryPolicy(sleep=fake.sleep))
        ajobs = AsyncJobManager(client, today=lambda: fake_day(fake))
        checkpoints = await ajobs.checkpoints(job.id)
        assert [c.id for c in checkpoints] == [c.id for c in sync_checkpoints]
        assert [c.step_number for c in checkpoints] == sorted(c.step_number for c in checkpoints)
        metrics = await ajobs.metrics(job.id)
        assert metrics.column_names == sync_metrics.column_names
        np.testing.assert_array_equal(metrics.train_loss, sync_metrics.train_loss)
        assert metrics.file_id == result_file
        estimate = await ajobs.estimate(done.training_file, model="gpt-4o-mini", n_epochs=2)
        assert estimate == sync_estimate
        assert (await ajobs.estimate(train_path, model="gpt-4o-mini", n_epochs=2)).billed_tokens == (
            sync_estimate.billed_tokens
        )
        content = await ajobs.files.content(result_file)
        assert content == jobs.files.content(result_file)
        out = tmp_path / "results" / "result.csv"
        assert await ajobs.files.download(result_file, out) == out
        assert out.read_bytes() == content
        with pytest.raises(FileAccessError) as exists:
            await ajobs.files.download(result_file, out)
        assert exists.value.errno == errno.EEXIST
        assert sorted(p.name for p in out.parent.iterdir()) == ["result.csv"]
        deleted = await ajobs.delete_model(done.fine_tuned_model)  # type: ignore[arg-type]
        assert deleted.deleted
        await client.aclose()

    asyncio.run(run())
    deletes = [r for r in fake.ledger.requests if r.method == "DELETE"]
    assert [r.path for r in deletes] == [f"/v1/models/{done.fine_tuned_model}"]


def test_metrics_of_an_unfinished_job(fake: FakeOpenAI, jobs: JobManager, train_path: Path) -> None:
    job = jobs.create("gpt-4o-mini", train_path)

    async def run() -> None:
        client = fake.async_client(retry=RetryPolicy(sleep=fake.sleep))
        with pytest.raises(ResultsUnavailableError, match="no result file yet"):
            await AsyncJobManager(client).metrics(job.id)
        await client.aclose()

    asyncio.run(run())


def test_estimate_checks_its_arguments_before_downloading(fake: FakeOpenAI) -> None:
    async def run() -> None:
        client = fake.async_client()
        with pytest.raises(ConfigError, match="method must be one of"):
            await AsyncJobManager(client).estimate("file-abc123", model="gpt-4o-mini", method="nope")
        await client.aclose()

    asyncio.run(run())
    assert fake.ledger.requests == []
