"""Ids that go into a URL path are checked before anything is sent (#11 item 10): a ``/``, ``..``, ``?``, ``#``,
``%``, whitespace or a control character is refused with an InvalidArgumentError naming the argument, and the
server never sees the request; real ids, ``ft:...:...`` model names with their colons included, reach it intact."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from finetune_embed import Client, Embedder, InvalidArgumentError
from finetune_embed._ids import MAX_ID_CHARS, check_path_id
from finetune_embed.finetuning import AsyncFileManager, AsyncJobManager, FileManager, JobManager
from finetune_embed.retry import RetryPolicy
from finetune_embed.testing import FakeOpenAI

from .conftest import fake_day

BAD_IDS = [
    "../files/file-abc",
    "ft:gpt-4o-mini:org:x:../../files/file-abc",
    "file-abc/../../models",
    "file-abc/",
    "..",
    ".",
    "file-abc?purpose=batch",
    "file-abc#frag",
    "file%2e%2e",
    "file abc",
    "file-abc\n",
    "file-abc\t",
    "file-\x00abc",
    "file-\u00e9",
    "",
    "f" * (MAX_ID_CHARS + 1),
]

GOOD_IDS = [
    "file-abc123",
    "ftjob-AbC123xyz",
    "batch_6789",
    "ftckpt_zb8WdeAl0hYVzHxL",
    "ft:gpt-4o-mini-2024-07-18:my-org:support:AbC123",
    "ft:gpt-4o-mini-2024-07-18:my-org::AbC123:ckpt-step-10",
    "my.deployment_v2",
    "f" * MAX_ID_CHARS,
]


@pytest.mark.parametrize("value", GOOD_IDS)
def test_real_ids_pass_unchanged(value: str) -> None:
    assert check_path_id(value, argument="file_id") == value


@pytest.mark.parametrize("value", BAD_IDS)
def test_bad_ids_are_refused_naming_the_argument(value: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^job_id .*Nothing was sent") as info:
        check_path_id(value, argument="job_id")
    assert info.value.argument == "job_id"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [None, 123, b"file-abc", ["file-abc"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidArgumentError, match="file_id must be a string id") as info:
        check_path_id(value, argument="file_id")
    assert info.value.argument == "file_id"


def _sync_calls(jobs: JobManager, files: FileManager, tmp: Path) -> dict[str, Callable[[str], object]]:
    return {
        "job_id": jobs.get,
        "job_id:cancel": jobs.cancel,
        "job_id:pause": jobs.pause,
        "job_id:resume": jobs.resume,
        "job_id:events": jobs.events,
        "job_id:follow": lambda v: list(jobs.follow(v, history=False)),
        "job_id:wait": lambda v: jobs.wait(v, progress=False),
        "job_id:checkpoints": jobs.checkpoints,
        "job_id:metrics": jobs.metrics,
        "file_id:metrics": lambda v: jobs.metrics("ftjob-abc", file_id=v),
        "model_id": jobs.delete_model,
        "file_id": files.retrieve,
        "file_id:content": files.content,
        "file_id:download": lambda v: files.download(v, tmp / "out.jsonl"),
        "file_id:delete": files.delete,
        "file_id:wait": files.wait,
    }


@pytest.mark.parametrize("value", ["../files/file-abc", "ft:x/../../files/file-abc", "a?b", "a b", ""])
def test_every_sync_method_refuses_before_sending(fake: FakeOpenAI, tmp_path: Path, value: str) -> None:
    client = fake.client(retry=RetryPolicy(sleep=fake.sleep))
    jobs = JobManager(client, today=lambda: fake_day(fake))
    for name, call in _sync_calls(jobs, jobs.files, tmp_path).items():
        with pytest.raises(InvalidArgumentError) as info:
            call(value)
        assert info.value.argument == name.split(":")[0], name
    assert fake.ledger.requests == []
    assert not (tmp_path / "out.jsonl").exists()


def _async_calls(
    jobs: AsyncJobManager, files: AsyncFileManager
) -> dict[str, Callable[[str], Awaitable[object]]]:
    async def follow(v: str) -> object:
        return [e async for e in jobs.follow(v, history=False)]

    return {
        "job_id": jobs.get,
        "job_id:cancel": jobs.cancel,
        "job_id:pause": jobs.pause,
        "job_id:resume": jobs.resume,
        "job_id:events": jobs.events,
        "job_id:follow": follow,
        "job_id:wait": lambda v: jobs.wait(v, progress=False),
        "file_id": files.retrieve,
        "file_id:delete": files.delete,
        "file_id:wait": files.wait,
    }


@pytest.mark.parametrize("value", ["../files/file-abc", "a#b", "x\ny"])
def test_every_async_method_refuses_before_sending(fake: FakeOpenAI, value: str) -> None:
    async def run() -> None:
        client = fake.async_client(retry=RetryPolicy(sleep=fake.sleep))
        jobs = AsyncJobManager(client, today=lambda: fake_day(fake))
        for name, call in _async_calls(jobs, jobs.files).items():
            with pytest.raises(InvalidArgumentError) as info:
                await call(value)
            assert info.value.argument == name.split(":")[0], name
        await client.aclose()

    asyncio.run(run())
    assert fake.ledger.requests == []


def test_delete_model_traversal_sends_nothing(jobs: JobManager, fake: FakeOpenAI) -> None:
    """The regression of the probe: DELETE /v1/models/../files/<id> reached the server."""
    uploaded = fake.openai_client().files.create(file=("a.jsonl", b"{}\n"), purpose="batch")
    before = len(fake.ledger.requests)
    for value in ("../files/" + uploaded.id, "ft:../../files/" + uploaded.id):
        with pytest.raises(InvalidArgumentError, match="model_id") as info:
            jobs.delete_model(value)
        assert info.value.argument == "model_id"
    assert fake.ledger.requests[before:] == []
    assert [f.id for f in fake.openai_client().files.list()] == [uploaded.id]  # still there


def test_compatible_servers_too(fake: FakeOpenAI) -> None:
    """On a compatible server any model name may be deleted, but never one that leaves its path segment."""
    jobs = JobManager(fake.client(provider="compatible"))
    with pytest.raises(InvalidArgumentError, match="model_id"):
        jobs.delete_model("../files/file-abc")
    assert fake.ledger.requests == []


def test_fine_tuned_model_names_reach_the_server_intact(
    jobs: JobManager, fake: FakeOpenAI, train_path: Path
) -> None:
    job = jobs.create("gpt-4o-mini", train_path, suffix="ids")
    done = jobs.wait(job.id, progress=False)
    model = done.fine_tuned_model
    assert model is not None
    assert model.count(":") == 4
    assert jobs.delete_model(model).deleted
    deletes = [r for r in fake.ledger.requests if r.method == "DELETE"]
    assert [r.path for r in deletes] == [f"/v1/models/{model}"]
    assert [r.status for r in deletes] == [200]
    assert jobs.checkpoints(job.id)  # job and checkpoint ids go through the same check


def test_azure_deployment_names(fake: FakeOpenAI) -> None:
    with pytest.raises(InvalidArgumentError, match="deployment") as info:
        Client.azure(endpoint="https://x.openai.azure.com", api_version="2025-04-01-preview", api_key="k",
                     deployment="../other/x")
    assert info.value.argument == "deployment"
    azure = fake.azure_client(retry=RetryPolicy(sleep=fake.sleep))
    with pytest.raises(InvalidArgumentError, match="Azure deployment"):
        Embedder(azure, model="prod/../../files", cache=False).embed(["hello"])
    with pytest.raises(InvalidArgumentError, match="Azure deployment"):
        azure.chat.create("bot?x=1", [{"role": "user", "content": "hi"}], cache=False)
    with pytest.raises(InvalidArgumentError, match="Azure deployment"):
        azure.chat.create_many([{"model": "a b", "messages": [{"role": "user", "content": "hi"}]}], cache=False)
    assert fake.ledger.requests == []


def test_models_with_slashes_still_work_where_they_travel_in_the_body(fake: FakeOpenAI) -> None:
    """A compatible server's ``BAAI/bge-small-en-v1.5`` is a body field, not a path segment: not refused."""
    fake.add_embedding_model("BAAI/bge-small-en-v1.5", dimensions=384)
    vectors = Embedder(fake.client(provider="compatible"), model="BAAI/bge-small-en-v1.5", cache=False).embed(["hi"])
    assert vectors.shape == (1, 384)
