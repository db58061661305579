"""Fixtures for the chat tests: a fake service on a manual clock, a client whose retries sleep on it, and a way to
get a fine-tuned model from training rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from finetune_embed import Client, RetryPolicy
from finetune_embed.finetuning import JobManager
from finetune_embed.testing import FakeOpenAI


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default caches live in the test's temporary folder."""
    monkeypatch.setenv("FINETUNE_EMBED_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI()


@pytest.fixture
def client(fake: FakeOpenAI) -> Client:
    return fake.client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0))


def chat_row(user: str, answer: str, system: str = "You answer briefly.") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def fine_tune(fake: FakeOpenAI, client: Client, rows: Sequence[dict[str, Any]], tmp_path: Path) -> str:
    """Train ``rows`` on the fake (gpt-4o-mini) and return the fine-tuned model's name."""
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    jobs = JobManager(client, today=lambda: datetime.fromtimestamp(fake.clock.now(), UTC).date())
    job = jobs.create("gpt-4o-mini", path, suffix="t")
    fake.run_until_idle()
    done = jobs.get(job.id)
    assert done.fine_tuned_model is not None, done
    return done.fine_tuned_model


@pytest.fixture
def tuned(fake: FakeOpenAI, client: Client, tmp_path: Path) -> Callable[[Sequence[dict[str, Any]]], str]:
    return lambda rows: fine_tune(fake, client, rows, tmp_path)
