"""Fixtures for the embeddings tests: a fake OpenAI on a manual clock, and embedders wired to it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from finetune_embed import Client, RetryPolicy
from finetune_embed.embeddings import Embedder
from finetune_embed.testing import FakeOpenAI


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default cache lives in the test's temporary folder, never in ~/.cache."""
    monkeypatch.setenv("FINETUNE_EMBED_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def fake() -> FakeOpenAI:
    """A fresh fake: manual clock, no limits, no latency."""
    return FakeOpenAI()


@pytest.fixture
def client(fake: FakeOpenAI) -> Client:
    """A client on the fake whose retries advance the fake clock instead of sleeping."""
    return fake.client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0))


@pytest.fixture
def make_embedder(fake: FakeOpenAI, client: Client, tmp_path: Path) -> Callable[..., Embedder]:
    """``make_embedder(**kwargs)``: an Embedder on the fake, paced on the fake clock, cache in tmp_path."""

    def make(**kwargs: Any) -> Embedder:
        kwargs.setdefault("cache", tmp_path / "emb.sqlite")
        kwargs.setdefault("clock", fake.clock.now)
        kwargs.setdefault("sleep", fake.sleep)
        return Embedder(kwargs.pop("client", client), **kwargs)

    return make

