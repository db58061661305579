"""Never create a billable object twice (#11 item 1): a create the server acted on before the client gave up is
adopted on the retry, and the same call made again after a crash adopts what the first one created."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from finetune_embed import APITimeoutError, Client, ConfigError, ServerError
from finetune_embed.finetuning import AsyncJobManager, FileManager, JobManager
from finetune_embed.retry import RetryPolicy
from finetune_embed.testing import FakeOpenAI

from .conftest import fake_day

JOBS = "/v1/fine_tuning/jobs"


def posts(fake: FakeOpenAI, path: str) -> int:
    return sum(1 for r in fake.ledger.requests if r.method == "POST" and r.path == path)


def three_attempts(fake: FakeOpenAI) -> RetryPolicy:
    return RetryPolicy(max_attempts=3, sleep=fake.sleep, jitter=0.0)


class TestJobs:
    @pytest.mark.parametrize("fault", ["timeout", "502"])
    def test_a_create_the_server_acted_on_is_adopted_on_retry(
        self, fake: FakeOpenAI, train_path: Path, fault: str
    ) -> None:
        """Every POST is answered with a timeout / 502 after the job was created; 3 attempts create one job."""
        jobs = JobManager(fake.client(retry=three_attempts(fake)), today=lambda: fake_day(fake))
        if fault == "timeout":
            fake.inject_timeout(JOBS, method="POST", after=True, times=3)
        else:
            fake.inject(502, path=JOBS, method="POST", after=True, times=3)
        job = jobs.create("gpt-4o-mini", train_path, suffix="once")
        assert list(fake.store.jobs) == [job.id]
        assert posts(fake, JOBS) == 1  # the retry looked first and found it
        assert job.metadata is not None
        assert job.metadata["finetune_embed_request"].startswith("job-")

    def test_a_server_slower_than_the_client_timeout_over_loopback(self, fake: FakeOpenAI, train_path: Path) -> None:
        """A real client timeout (0.5 s) against a server that acts and then answers after 2 s, 3 attempts."""
        with fake.serve() as base_url:
            client = Client(
                api_key="sk-loopback-0000", base_url=base_url, timeout=0.5,
                retry=RetryPolicy(max_attempts=3, initial_wait=0.01, jitter=0.0),
            )
            with client:
                jobs = JobManager(client, today=lambda: fake_day(fake))
                file_id = jobs.files.upload(train_path).id
                fake.inject_timeout(JOBS, method="POST", after=True, times=3, hold=2.0)
                job = jobs.create("gpt-4o-mini", file_id)
        assert list(fake.store.jobs) == [job.id]

    def test_a_rerun_after_a_crash_adopts_the_job_and_a_new_request_id_creates_another(
        self, fake: FakeOpenAI, train_path: Path
    ) -> None:
        """The first call fails after the server acted (no retries); the same call again returns that job.
        client_request_id= starts a second identical job on purpose."""
        once = JobManager(fake.client(retry=RetryPolicy.none()), today=lambda: fake_day(fake))
        fake.inject(502, path=JOBS, method="POST", after=True)
        with pytest.raises(ServerError):
            once.create("gpt-4o-mini", train_path, seed=3)
        (first_id,) = fake.store.jobs
        again = once.create("gpt-4o-mini", train_path, seed=3)
        assert again.id == first_id
        assert posts(fake, JOBS) == 1
        other = once.create("gpt-4o-mini", train_path, seed=3, client_request_id="run-2")
        assert other.id != first_id
        assert other.metadata == {"finetune_embed_request": "run-2"}
        assert once.create("gpt-4o-mini", train_path, seed=4).id not in (first_id, other.id)  # other arguments
        assert len(fake.store.jobs) == 3

    def test_a_cancelled_or_failed_job_is_not_adopted_by_a_new_call(self, fake: FakeOpenAI, train_path: Path) -> None:
        """Calling again after the job was cancelled starts afresh (only a retry adopts whatever it created)."""
        jobs = JobManager(fake.client(retry=three_attempts(fake)), today=lambda: fake_day(fake))
        first = jobs.create("gpt-4o-mini", train_path)
        jobs.cancel(first.id)
        second = jobs.create("gpt-4o-mini", train_path)
        assert second.id != first.id

    def test_async_twin(self, fake: FakeOpenAI, train_path: Path) -> None:
        """AsyncJobManager.create adopts too."""

        async def run() -> str:
            client = fake.async_client(retry=three_attempts(fake))
            jobs = AsyncJobManager(client, today=lambda: fake_day(fake))
            fake.inject_timeout(JOBS, method="POST", after=True, times=3)
            job = await jobs.create("gpt-4o-mini", train_path)
            return job.id

        job_id = asyncio.run(run())
        assert list(fake.store.jobs) == [job_id]

    def test_the_request_id_needs_room_in_the_metadata(self, fake: FakeOpenAI) -> None:
        """16 pairs of the caller's leave no room for the tag; a bad client_request_id is refused."""
        jobs = JobManager(fake.client(), today=lambda: fake_day(fake))
        full = {f"k{i}": "v" for i in range(16)}
        with pytest.raises(ConfigError, match="at most 15 pairs of your own"):
            jobs.create("gpt-4o-mini", "file-abc", metadata=full)
        with pytest.raises(ConfigError, match="client_request_id must be a string"):
            jobs.create("gpt-4o-mini", "file-abc", client_request_id="")
        assert fake.store.jobs == {}


class TestFiles:
    @pytest.mark.parametrize("dedupe", [True, False])
    def test_an_upload_the_server_acted_on_is_not_sent_again(
        self, fake: FakeOpenAI, train_path: Path, dedupe: bool
    ) -> None:
        """The Files API: a 502 after the file was stored; the retry finds it by its content tag and size."""
        files = FileManager(fake.client(retry=three_attempts(fake)))
        fake.inject(502, path="/v1/files", method="POST", after=True, times=3)
        file = files.upload(train_path, dedupe=dedupe)
        assert list(fake.store.files) == [file.id]
        assert posts(fake, "/v1/files") == 1

    def test_a_multipart_upload_completed_on_the_server_is_not_completed_again(
        self, fake: FakeOpenAI, train_path: Path
    ) -> None:
        """The Uploads API: the complete call times out after the file was made; the retry adopts that file."""
        files = FileManager(fake.client(retry=three_attempts(fake)), files_api_limit=1024, part_size=1024)
        fake.inject_timeout("/v1/uploads/*/complete", method="POST", after=True, times=3)
        file = files.upload(train_path)
        assert list(fake.store.files) == [file.id]
        assert sum(1 for r in fake.ledger.requests if r.path.endswith("/complete")) == 1

    def test_a_timeout_before_the_server_acted_is_simply_retried(self, fake: FakeOpenAI, train_path: Path) -> None:
        """When the server never saw the request, the retry looks, finds nothing and sends it again."""
        files = FileManager(fake.client(retry=three_attempts(fake)))
        fake.inject_timeout("/v1/files", method="POST", times=2)
        file = files.upload(train_path)
        assert list(fake.store.files) == [file.id]
        assert posts(fake, "/v1/files") == 3

    def test_no_retries_means_the_error_is_raised(self, fake: FakeOpenAI, train_path: Path) -> None:
        """With one attempt the timeout is the caller's; a rerun (dedupe) then finds the file."""
        files = FileManager(fake.client(retry=RetryPolicy.none()))
        fake.inject_timeout("/v1/files", method="POST", after=True)
        with pytest.raises(APITimeoutError):
            files.upload(train_path)
        (file_id,) = fake.store.files
        assert files.upload(train_path).id == file_id
