"""Fixtures for the evaluation tests: a fake service, a client on its clock, and news-headline data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from finetune_embed import Client, Dataset, RetryPolicy
from finetune_embed.finetuning import JobManager
from finetune_embed.testing import FakeOpenAI

SYSTEM = "Classify the news headline as World, Sports, Business or Sci/Tech. Answer with the label only."


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_EMBED_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI()


@pytest.fixture
def client(fake: FakeOpenAI) -> Client:
    return fake.client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0))


@pytest.fixture
def news(cookbook: Path) -> Dataset:
    """400 distinct AG news headlines with their topic, as chat examples (the cookbook's CSV)."""
    data = Dataset.from_csv(cookbook / "AG_news_samples.csv", prompt="title", completion="label", system=SYSTEM)
    return data.dedupe()[:400]


@pytest.fixture
def jobs(fake: FakeOpenAI, client: Client) -> JobManager:
    return JobManager(client, today=lambda: datetime.fromtimestamp(fake.clock.now(), UTC).date())


@pytest.fixture
def fine_tune(fake: FakeOpenAI, jobs: JobManager) -> Callable[..., str]:
    def run(train: Any, model: str = "gpt-4o-mini") -> str:
        job = jobs.create(model, train, suffix="eval")
        fake.run_until_idle()
        name = jobs.get(job.id).fine_tuned_model
        assert name is not None
        return name

    return run
