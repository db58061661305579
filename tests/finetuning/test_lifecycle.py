"""The whole fine-tuning lifecycle against FakeOpenAI, in-process: data → upload → job → wait → results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent

from finetune_embed import JobCancelledError, JobFailedError, JobTimeoutError
from finetune_embed.finetuning import FileManager, JobManager, ResultsUnavailableError
from finetune_embed.testing import FakeOpenAI

from .conftest import fake_day, news_examples, write_jsonl


def test_full_lifecycle_from_a_local_jsonl(
    jobs: JobManager, fake: FakeOpenAI, train_path: Path, valid_path: Path
) -> None:
    job = jobs.create(
        "gpt-4o-mini",
        train_path,
        validation_file=valid_path,
        hyperparameters={"n_epochs": 2},
        suffix="news",
        seed=7,
        metadata={"team": "search"},
    )
    assert isinstance(job, FineTuningJob)
    assert job.status == "validating_files"
    assert job.training_file.startswith("file-")
    assert job.validation_file is not None
    assert job.seed == 7
    assert job.metadata is not None
    assert job.metadata["team"] == "search"
    uploaded = {f.id: f for f in jobs.files.list(purpose="fine-tune")}
    assert uploaded[job.training_file].filename.startswith("news_train.")
    assert uploaded[job.training_file].filename.endswith(".jsonl")

    done = jobs.wait(job.id, timeout=6 * 3600)
    assert done.status == "succeeded"
    assert done.fine_tuned_model is not None
    assert done.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:fake:news:")
    assert done.trained_tokens is not None
    assert done.trained_tokens > 0

    metrics = jobs.metrics(job.id)
    steps = 2 * 20  # 2 epochs of 20 examples, batch size 1 (the fake's auto batch size for 20 examples)
    assert len(metrics) == steps
    assert metrics.step.dtype == np.int64
    assert metrics.step.tolist() == list(range(1, steps + 1))
    assert metrics.train_loss.dtype == np.float64
    assert metrics.train_loss[-5:].mean() < metrics.train_loss[:5].mean()
    assert not np.isnan(metrics.valid_loss).any()  # a validation file was given
    assert metrics.last("full_valid_loss") is not None
    df = metrics.to_pandas()
    assert len(df) == steps
    assert metrics.file_id == done.result_files[0]

    checkpoints = jobs.checkpoints(job.id)
    assert [c.step_number for c in checkpoints] == [20, 40]
    assert checkpoints[-1].metrics.train_loss == pytest.approx(metrics.train_loss[-1])
    assert checkpoints[0].fine_tuned_model_checkpoint.endswith(":ckpt-step-20")

    events = jobs.events(job.id)
    assert all(isinstance(e, FineTuningJobEvent) for e in events)
    assert events[0].message == f"Created fine-tuning job: {job.id}"
    assert events[-1].message == "The job has successfully completed"
    assert len({e.id for e in events}) == len(events)
    assert [e.message for e in jobs.events(job.id, limit=2)] == [e.message for e in events[-2:]]

    deleted = jobs.delete_model(done.fine_tuned_model)
    assert deleted.deleted is True


def test_follow_yields_every_event_once_in_order_across_pages(
    jobs: JobManager, fake: FakeOpenAI, train_path: Path
) -> None:
    job = jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 6})  # 120 steps: > 1 page
    seen = list(jobs.follow(job.id))
    assert len(seen) > 100
    assert [e.id for e in seen] == [e.id for e in jobs.events(job.id)]
    assert seen[0].message.startswith("Created fine-tuning job")
    assert seen[-1].message == "The job has successfully completed"
    steps = [e.data["step"] for e in seen if e.type == "metrics"]
    assert steps == list(range(1, 121))
    assert jobs.get(job.id).status == "succeeded"


def test_follow_without_history_starts_from_now(jobs: JobManager, fake: FakeOpenAI, train_path: Path) -> None:
    job = jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 1})
    fake.advance(25)  # validated and queued: a few events exist already
    before = {e.id for e in jobs.events(job.id)}
    assert before
    seen = list(jobs.follow(job.id, history=False))
    assert not before & {e.id for e in seen}
    assert seen[-1].message == "The job has successfully completed"


def test_bad_training_file_fails_at_the_server_with_its_message(
    jobs: JobManager, tmp_path: Path, cookbook: Path
) -> None:
    examples = news_examples(cookbook, 0, 12)
    examples[2]["messages"][2]["content"] = "Sports <|fim_suffix|>"  # type: ignore[index]
    bad = write_jsonl(tmp_path / "bad.jsonl", examples)
    job = jobs.create("gpt-4o-mini", bad, validate=False)  # skip the local check: let the server find it
    with pytest.raises(JobFailedError) as info:
        jobs.wait(job.id)
    err = info.value
    assert "Example 3 message contains an invalid token: <|fim_suffix|>" in str(err)
    assert f"Fine-tuning job {job.id} failed" in str(err)
    assert "code=invalid_file_format" in str(err)
    assert "param=training_file" in str(err)
    assert err.error.code == "invalid_file_format"
    assert err.job_id == job.id
    assert err.job.status == "failed"
    with pytest.raises(ResultsUnavailableError, match="has no result file"):
        jobs.metrics(job.id)


def test_too_few_examples_fail_at_the_server(jobs: JobManager, tmp_path: Path, cookbook: Path) -> None:
    few = write_jsonl(tmp_path / "few.jsonl", news_examples(cookbook, 0, 3))
    job = jobs.create("gpt-4o-mini", few, validate=False)
    with pytest.raises(JobFailedError, match="has 3 example\\(s\\), but must have at least 10 examples"):
        jobs.wait(job.id)


def test_cancellation_during_wait(client: object, fake: FakeOpenAI, train_path: Path) -> None:
    polls = 0
    other = JobManager(client, today=lambda: fake_day(fake))  # type: ignore[arg-type]

    def sleep(seconds: float) -> None:
        nonlocal polls
        polls += 1
        fake.sleep(seconds)
        if polls == 4:
            other.cancel(job.id)  # someone cancels it (here: from a second manager) while we wait

    manager = JobManager(client, sleep=sleep, today=lambda: fake_day(fake))  # type: ignore[arg-type]
    job = manager.create("gpt-4o-mini", train_path)
    with pytest.raises(JobCancelledError, match=f"Fine-tuning job {job.id} was cancelled") as info:
        manager.wait(job.id)
    assert info.value.job.status == "cancelled"
    assert polls == 4


def test_429s_and_5xx_while_polling_are_retried(jobs: JobManager, fake: FakeOpenAI, train_path: Path) -> None:
    job = jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 1})
    fake.inject(429, path="/v1/fine_tuning/jobs/*", times=2)
    fake.inject(500, path="/v1/fine_tuning/jobs/*", times=2)
    fake.inject(503, path="/v1/fine_tuning/jobs/*", times=1)
    done = jobs.wait(job.id)
    assert done.status == "succeeded"
    injected = [r for r in fake.ledger.requests if r.injected]
    assert sorted(r.status for r in injected) == [429, 429, 500, 500, 503]


def test_a_job_that_outlives_the_timeout(jobs: JobManager, fake: FakeOpenAI, train_path: Path) -> None:
    job = jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 10})  # 200 steps
    start = fake.clock.now()
    with pytest.raises(JobTimeoutError, match=r"still 'running' after 120s.*goes on on the server") as info:
        jobs.wait(job.id, timeout=120)
    assert fake.clock.now() - start == pytest.approx(120)
    assert info.value.job_id == job.id
    assert isinstance(info.value, TimeoutError)
    assert jobs.wait(job.id).status == "succeeded"  # it went on


def test_wait_backs_off_from_5s_to_a_minute(client: object, fake: FakeOpenAI, train_path: Path) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake.sleep(seconds)

    manager = JobManager(client, sleep=sleep, today=lambda: fake_day(fake))  # type: ignore[arg-type]
    job = manager.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 25})  # 500 steps
    manager.wait(job.id)
    assert slept[0] == 5.0
    assert max(slept) == 60.0
    assert min(slept) == 5.0
    assert len(slept) < 40  # ~560 s of fake time in few polls, not one poll per 5 s


def test_paused_is_a_status_that_never_crashes_anything(jobs: JobManager, fake: FakeOpenAI, train_path: Path) -> None:
    job = jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 3})
    fake.advance(40)
    assert jobs.get(job.id).status == "running"
    paused = jobs.pause(job.id)
    assert isinstance(paused, FineTuningJob)
    assert paused.status == "paused"  # not in the SDK's Literal: kept as sent
    assert [j.id for j in jobs.list(status="paused")] == [job.id]
    with pytest.raises(JobTimeoutError, match="still 'paused'"):
        jobs.wait(job.id, timeout=300)
    assert jobs.resume(job.id).status == "running"
    assert jobs.wait(job.id).status == "succeeded"
    messages = [e.message for e in jobs.events(job.id)]
    assert "Fine-tuning job paused" in messages
    assert "Fine-tuning job resumed" in messages


def test_list_pages_and_filters(jobs: JobManager, fake: FakeOpenAI, train_path: Path) -> None:
    file = jobs.files.upload(train_path)
    created = [
        jobs.create("gpt-4o-mini", file.id, metadata={"team": "a" if i % 2 else "b", "i": str(i)})
        for i in range(25)
    ]
    before = len(fake.ledger.requests)
    listed = list(jobs.list(page_size=10))
    assert [j.id for j in listed] == [j.id for j in reversed(created)]  # newest first, across 3 pages
    pages = [r for r in fake.ledger.requests[before:] if r.method == "GET" and r.path == "/v1/fine_tuning/jobs"]
    assert len(pages) == 3
    assert [j.id for j in jobs.list(page_size=10, limit=12)] == [j.id for j in reversed(created)][:12]
    team_a = list(jobs.list(metadata={"team": "a"}, page_size=5))
    assert len(team_a) == 12
    assert all(j.metadata["team"] == "a" for j in team_a)
    for j in created[:3]:
        jobs.cancel(j.id)
    assert {j.id for j in jobs.list(status="cancelled")} == {j.id for j in created[:3]}
    assert len(list(jobs.list(status=["validating_files", "cancelled"]))) == 25


def test_training_file_by_id_and_by_file_object(jobs: JobManager, train_path: Path) -> None:
    file = jobs.files.upload(train_path)
    assert jobs.create("gpt-4o-mini", file.id).training_file == file.id
    assert jobs.create("gpt-4o-mini", file).training_file == file.id


def test_create_reuses_identical_uploads(jobs: JobManager, fake: FakeOpenAI, train_path: Path) -> None:
    first = jobs.create("gpt-4o-mini", train_path)
    copy = train_path.with_name("renamed_copy.jsonl")
    copy.write_bytes(train_path.read_bytes())
    second = jobs.create("gpt-4o-mini", copy)
    assert second.training_file == first.training_file
    posts = [r for r in fake.ledger.requests if r.method == "POST" and r.path == "/v1/files"]
    assert len(posts) == 1


def test_metrics_before_the_end(jobs: JobManager, train_path: Path) -> None:
    job = jobs.create("gpt-4o-mini", train_path)
    with pytest.raises(ResultsUnavailableError, match=r"validating_files.*no result file yet.*wait"):
        jobs.metrics(job.id)


def test_results_can_be_downloaded_as_files(
    jobs: JobManager, files: FileManager, train_path: Path, tmp_path: Path
) -> None:
    job = jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 1})
    done = jobs.wait(job.id)
    out = files.download(done.result_files[0], tmp_path / "results" / "step_metrics.csv")
    assert out.read_bytes() == files.content(done.result_files[0])
    assert json.dumps(files.retrieve(done.result_files[0]).model_dump(mode="json"))
