"""The same lifecycle through AsyncJobManager, through Client.azure(...), and over loopback HTTP."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from finetune_embed import Client, JobCancelledError, JobFailedError, JobTimeoutError
from finetune_embed.finetuning import AsyncJobManager, JobManager
from finetune_embed.retry import RetryPolicy
from finetune_embed.testing import FakeOpenAI

from .conftest import fake_day, news_examples, write_jsonl


def test_async_create_follow_wait(fake: FakeOpenAI, train_path: Path, valid_path: Path) -> None:
    async def run() -> None:
        client = fake.async_client(retry=RetryPolicy(sleep=fake.sleep))
        jobs = AsyncJobManager(client, today=lambda: fake_day(fake))
        job = await jobs.create("gpt-4o-mini", train_path, validation_file=valid_path,
                                hyperparameters={"n_epochs": 6}, suffix="async")
        assert job.status == "validating_files"
        events = [e async for e in jobs.follow(job.id)]
        assert len(events) > 100  # more than one page of events
        assert [e.id for e in events] == [e.id for e in await jobs.events(job.id)]
        assert events[-1].message == "The job has successfully completed"
        done = await jobs.wait(job.id)
        assert done.fine_tuned_model is not None
        assert done.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:fake:async:")
        again = await jobs.create("gpt-4o-mini", train_path)  # identical upload reused
        assert again.training_file == job.training_file
        assert [j.id async for j in jobs.list(limit=1)] == [again.id]
        await client.aclose()

    asyncio.run(run())


def test_async_errors_cancel_and_timeout(fake: FakeOpenAI, train_path: Path, tmp_path: Path, cookbook: Path) -> None:
    async def run() -> None:
        client = fake.async_client(retry=RetryPolicy(sleep=fake.sleep))
        jobs = AsyncJobManager(client, today=lambda: fake_day(fake))
        job = await jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 10})
        with pytest.raises(JobTimeoutError):
            await jobs.wait(job.id, timeout=60)
        await jobs.pause(job.id)
        assert (await jobs.get(job.id)).status == "paused"
        await jobs.resume(job.id)
        await jobs.cancel(job.id)
        with pytest.raises(JobCancelledError):
            await jobs.wait(job.id)
        examples = news_examples(cookbook, 0, 12)
        examples[4]["messages"] = []
        bad = write_jsonl(tmp_path / "bad_async.jsonl", examples)
        failing = await jobs.create("gpt-4o-mini", bad, validate=False)
        fake.inject(429, path="/v1/fine_tuning/jobs/*", times=2)
        with pytest.raises(JobFailedError, match="Example 5 has an invalid 'messages' field"):
            await jobs.wait(failing.id)
        await client.aclose()

    asyncio.run(run())


def test_async_sleep_may_be_a_coroutine(fake: FakeOpenAI, train_path: Path) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake.sleep(seconds)

    async def run() -> None:
        client = fake.async_client(retry=RetryPolicy(sleep=fake.sleep))
        jobs = AsyncJobManager(client, sleep=sleep, today=lambda: fake_day(fake))
        job = await jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 1})
        assert (await jobs.wait(job.id)).status == "succeeded"
        await client.aclose()

    asyncio.run(run())
    assert slept[0] == 5.0


def test_azure_lifecycle(fake: FakeOpenAI, train_path: Path) -> None:
    client = fake.azure_client(retry=RetryPolicy(sleep=fake.sleep))
    assert client.provider == "azure"
    jobs = JobManager(client, today=lambda: fake_day(fake))
    job = jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 2}, suffix="azure")
    done = jobs.wait(job.id)
    assert done.status == "succeeded"
    metrics = jobs.metrics(job.id)
    assert len(metrics) == 40
    assert [c.step_number for c in jobs.checkpoints(job.id)] == [20, 40]
    assert list(jobs.follow(job.id))[-1].message == "The job has successfully completed"
    requests = fake.ledger.requests
    assert requests
    assert {r.layout for r in requests} == {"azure"}
    assert all(r.path.startswith("/openai/") for r in requests)


def test_azure_keeps_fine_tuning_after_openais_cutoff(fake: FakeOpenAI, train_path: Path) -> None:
    from datetime import date

    from finetune_embed import UnsupportedModelError

    after_cutoff = date(2027, 1, 7)
    openai_jobs = JobManager(fake.client(retry=RetryPolicy(sleep=fake.sleep)), today=lambda: after_cutoff)
    with pytest.raises(UnsupportedModelError, match=r"no new fine-tuning jobs after 2027-01-06.*Client\.azure"):
        openai_jobs.create("gpt-4.1-mini", train_path)
    azure_jobs = JobManager(fake.azure_client(retry=RetryPolicy(sleep=fake.sleep)), today=lambda: after_cutoff)
    assert azure_jobs.create("gpt-4.1-mini", train_path).status == "validating_files"


def test_lifecycle_over_loopback_http(fake: FakeOpenAI, train_path: Path) -> None:
    with fake.serve(scale=2000.0) as url:
        client = Client(base_url=url, api_key="sk-test-loopback-0000", retry=RetryPolicy(sleep=fake.sleep))
        jobs = JobManager(client, today=lambda: fake_day(fake))
        job = jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 2}, suffix="http")
        done = jobs.wait(job.id, timeout=3600)
        assert done.fine_tuned_model is not None
        assert ":http:" in done.fine_tuned_model
        metrics = jobs.metrics(job.id)
        assert len(metrics) == 40
        assert metrics.step.tolist() == list(range(1, 41))
        assert jobs.files.upload(train_path).id == job.training_file
        client.close()


def test_a_proxy_in_front_of_openai_keeps_the_refusals(fake: FakeOpenAI, train_path: Path) -> None:
    """A base URL in front of OpenAI (a gateway) keeps OpenAI's last day for new jobs; provider='compatible'
    (or a local server) drops the catalog's dates, as a compatible server decides for itself."""
    from finetune_embed import UnsupportedModelError

    after_cutoff = date(2027, 1, 7)
    gateway = Client(
        api_key="sk-gateway-000000", base_url="https://llm-gateway.example.com/v1", transport=fake.transport
    )
    assert gateway.provider == "openai"
    with pytest.raises(UnsupportedModelError, match=r"no new fine-tuning jobs after 2027-01-06"):
        JobManager(gateway, today=lambda: after_cutoff).create("gpt-4o-mini-2024-07-18", train_path)
    assert fake.ledger.count("/v1/fine_tuning/jobs") == 0  # refused before anything was sent
    with fake.serve() as base_url, Client(base_url=base_url, retry=RetryPolicy(sleep=fake.sleep)) as local:
        assert local.provider == "compatible"
        job = JobManager(local, today=lambda: after_cutoff).create(
            "gpt-4o-mini-2024-07-18", train_path, validate=False
        )
    assert job.status == "validating_files"
