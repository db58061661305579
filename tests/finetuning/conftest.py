"""Fixtures for the fine-tuning tests: a fake service, clients on it, and real training data from the cookbook."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from finetune_embed import Client
from finetune_embed.finetuning import FileManager, JobManager
from finetune_embed.retry import RetryPolicy
from finetune_embed.testing import FakeOpenAI

SYSTEM = "Classify the news headline as World, Sports, Business or Sci/Tech. Answer with the label only."


def fake_day(fake: FakeOpenAI) -> date:
    """The fake clock's calendar day (the date the catalog checks use in these tests)."""
    return datetime.fromtimestamp(fake.clock.now(), UTC).date()


def news_examples(cookbook: Path, start: int, count: int) -> list[dict[str, object]]:
    """Chat examples built from the cookbook's AG news samples: headline -> label."""
    with open(cookbook / "AG_news_samples.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[start : start + count]
    return [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": row["title"]},
                {"role": "assistant", "content": row["label"]},
            ]
        }
        for row in rows
    ]


def write_jsonl(path: Path, examples: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in examples), encoding="utf-8")
    return path


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI()


@pytest.fixture
def client(fake: FakeOpenAI) -> Client:
    """A client on the fake whose retries (and, through them, polls) sleep on the fake clock."""
    return fake.client(retry=RetryPolicy(sleep=fake.sleep))


@pytest.fixture
def jobs(client: Client, fake: FakeOpenAI) -> JobManager:
    return JobManager(client, today=lambda: fake_day(fake))


@pytest.fixture
def files(client: Client) -> FileManager:
    return FileManager(client)


@pytest.fixture
def train_path(tmp_path: Path, cookbook: Path) -> Path:
    """20 training examples from real AG news headlines."""
    return write_jsonl(tmp_path / "news_train.jsonl", news_examples(cookbook, 0, 20))


@pytest.fixture
def valid_path(tmp_path: Path, cookbook: Path) -> Path:
    """5 validation examples (other headlines)."""
    return write_jsonl(tmp_path / "news_valid.jsonl", news_examples(cookbook, 100, 5))
