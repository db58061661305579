"""The files / jobs / models-delete commands against FakeOpenAI served over loopback HTTP (OpenAI and Azure)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from finetune_embed import Client
from finetune_embed.cli import main
from finetune_embed.finetuning import JobManager, TrainingMetrics
from finetune_embed.retry import RetryPolicy
from finetune_embed.testing import FakeOpenAI

from .conftest import news_examples, write_jsonl

KEY = "sk-test-cli-000000000000"
FAST = ["--poll-interval", "0.01", "--max-poll-interval", "0.05"]


@pytest.fixture
def served(fake: FakeOpenAI) -> Iterator[str]:
    with fake.serve(scale=2000.0) as url:
        yield url


@pytest.fixture
def env(served: str) -> dict[str, str]:
    return {"OPENAI_BASE_URL": served, "OPENAI_API_KEY": KEY}


@pytest.fixture
def azure_env(served: str) -> dict[str, str]:
    return {
        "AZURE_OPENAI_ENDPOINT": served.removesuffix("/v1"),
        "OPENAI_API_VERSION": "2025-04-01-preview",
        "AZURE_OPENAI_API_KEY": KEY,
    }


def run(args: list[str], env: dict[str, str], *, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, env=env, input=input)
    assert "Traceback" not in result.output, result.output
    assert KEY not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_files_commands(env: dict[str, str], train_path: Path, tmp_path: Path, fake: FakeOpenAI) -> None:
    code, out, _ = run(["files", "upload", str(train_path)], env)
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "FILENAME", "PURPOSE", "BYTES", "STATUS", "CREATED"]
    file_id = out.splitlines()[1].split()[0]
    assert file_id.startswith("file-")
    code, out, _ = run(["files", "upload", str(train_path), "--json"], env)
    assert json.loads(out)["id"] == file_id  # identical content: not uploaded again
    code, out, _ = run(["files", "list", "--json"], env)
    assert [f["id"] for f in json.loads(out)] == [file_id]
    code, out, _ = run(["files", "get", file_id], env)
    assert file_id in out
    target = tmp_path / "copy.jsonl"
    code, out, _ = run(["files", "download", file_id, str(target)], env)
    assert code == 0
    assert target.read_bytes() == train_path.read_bytes()
    code, _, err = run(["files", "download", file_id, str(target)], env)
    assert code == 1
    assert "--overwrite" in err
    code, out, _ = run(["files", "delete", file_id], env)
    assert out.strip() == f"{file_id} deleted"
    code, _, err = run(["files", "get", file_id], env)
    assert code == 1
    assert f"No such File object: {file_id}" in err


def test_jobs_lifecycle(env: dict[str, str], train_path: Path, valid_path: Path, tmp_path: Path) -> None:
    code, out, err = run(
        ["jobs", "create", "gpt-4o-mini", str(train_path), "--validation-file", str(valid_path), "--epochs", "2",
         "--suffix", "cli", "--metadata", "team=search", "--wait", "--json", *FAST],
        env,
    )
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "succeeded"
    assert job["fine_tuned_model"].startswith("ft:gpt-4o-mini-2024-07-18:fake:cli:")
    assert job["metadata"]["team"] == "search"
    assert job["metadata"]["finetune_embed_request"].startswith("job-")  # the client request id (#11)
    job_id, model = job["id"], job["fine_tuned_model"]

    code, out, _ = run(["jobs", "list"], env)
    assert out.splitlines()[0].split() == ["ID", "MODEL", "STATUS", "FINE_TUNED_MODEL", "CREATED", "TRAINED_TOKENS"]
    assert job_id in out
    code, out, _ = run(["jobs", "list", "--metadata", "team=other", "--json"], env)
    assert json.loads(out) == []
    code, out, _ = run(["jobs", "get", job_id], env)
    fields = dict(line.split(None, 1) for line in out.splitlines())
    assert fields["status"] == "succeeded"
    assert fields["id"] == job_id
    assert model in out
    code, out, _ = run(["jobs", "events", job_id], env)
    lines = out.splitlines()
    assert "Created fine-tuning job" in lines[0]
    assert "The job has successfully completed" in lines[-1]
    code, out, _ = run(["jobs", "follow", job_id, "--json", *FAST], env)
    assert code == 0
    followed = [json.loads(line) for line in out.splitlines()]
    assert len(followed) == len(lines)
    code, out, _ = run(["jobs", "checkpoints", job_id], env)
    assert out.splitlines()[0].split()[:2] == ["STEP", "CHECKPOINT"]
    assert ":ckpt-step-40" in out
    csv_path = tmp_path / "metrics.csv"
    code, out, _ = run(["jobs", "metrics", job_id, "--csv", str(csv_path)], env)
    assert code == 0
    assert f"{job_id}: 40 steps" in out
    assert len(TrainingMetrics.from_csv(csv_path.read_bytes())) == 40
    code, out, _ = run(["jobs", "metrics", job_id, "--json"], env)
    data = json.loads(out)
    assert data["steps"] == 40
    assert data["columns"]["step"][-1] == 40
    code, out, _ = run(["models", "delete", model, "--yes"], env)
    assert out.strip() == f"{model} deleted"


def test_jobs_failures_cancel_pause_and_timeout(served: str, env: dict[str, str], fake: FakeOpenAI,
                                                train_path: Path, tmp_path: Path, cookbook: Path) -> None:
    examples = news_examples(cookbook, 0, 12)
    examples[6]["messages"][1]["content"] = "Markets <|endoftext|> rally"  # type: ignore[index]
    bad = write_jsonl(tmp_path / "bad.jsonl", examples)
    code, out, err = run(["jobs", "create", "gpt-4o-mini", str(bad), "--no-validate", "--wait", *FAST], env)
    assert code == 1
    assert "Example 7 message contains an invalid token: <|endoftext|>" in err

    client = Client(base_url=served, api_key=KEY, retry=RetryPolicy(sleep=fake.sleep))
    jobs = JobManager(client)
    fake.job_speed = 100.0  # 1000 steps take 50 s of real time at scale 2000: still running under any CPU load
    slow = jobs.create("gpt-4o-mini", train_path, hyperparameters={"n_epochs": 50})  # 1000 steps
    code, _, err = run(["jobs", "wait", slow.id, "--timeout", "0.05", *FAST], env)
    assert code == 1
    assert f"Fine-tuning job {slow.id} is still" in err
    while jobs.get(slow.id).status != "running":
        fake.advance(5)
    code, out, _ = run(["jobs", "pause", slow.id], env)
    assert out.strip() == f"{slow.id} paused"
    code, out, _ = run(["jobs", "list", "--status", "paused", "--json"], env)
    assert [j["id"] for j in json.loads(out)] == [slow.id]
    code, out, _ = run(["jobs", "resume", slow.id], env)
    assert out.strip() == f"{slow.id} running"
    code, out, _ = run(["jobs", "cancel", slow.id, "--json"], env)
    assert json.loads(out)["status"] == "cancelled"
    code, _, err = run(["jobs", "wait", slow.id, *FAST], env)
    assert code == 1
    assert f"Fine-tuning job {slow.id} was cancelled" in err
    code, _, err = run(["jobs", "follow", slow.id, "--no-history", *FAST], env)
    assert code == 1
    assert "was cancelled" in err
    client.close()


def test_azure_flag(azure_env: dict[str, str], fake: FakeOpenAI, train_path: Path) -> None:
    code, out, err = run(
        ["jobs", "create", "gpt-4o-mini", str(train_path), "--epochs", "1", "--wait", "--json", "--azure", *FAST],
        azure_env,
    )
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "succeeded"
    code, out, _ = run(["files", "list", "--azure", "--json"], azure_env)
    assert {f["purpose"] for f in json.loads(out)} == {"fine-tune", "fine-tune-results"}
    code, out, _ = run(["jobs", "metrics", job["id"], "--azure"], azure_env)
    assert "20 steps" in out
    assert {r.layout for r in fake.ledger.requests} == {"azure"}


def test_dry_run_creates_nothing(env: dict[str, str], fake: FakeOpenAI, train_path: Path) -> None:
    code, out, err = run(["jobs", "create", "gpt-4o-mini", str(train_path), "--dry-run", "--json"], env)
    assert code == 0, err
    estimate = json.loads(out)
    assert estimate["n_examples"] == 20
    assert estimate["n_epochs"] == 5  # the default for 20 examples
    assert estimate["billed_tokens"] == 5 * estimate["billed_tokens_per_epoch"]
    assert estimate["cost_usd"] == pytest.approx(estimate["billed_tokens"] / 1e6 * 3.0)
    assert fake.ledger.requests == []
