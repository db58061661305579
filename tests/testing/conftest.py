"""Fixtures for the fake's own tests (the public ``fake_openai`` fixture comes from the pytest plugin)."""

from __future__ import annotations

import openai
import pytest

from finetune_embed.testing import FakeOpenAI
from finetune_embed.testing.pytest_plugin import fake_openai

__all__ = ["fake_openai"]


@pytest.fixture
def fake() -> FakeOpenAI:
    """A fresh fake with default settings."""
    return FakeOpenAI()


@pytest.fixture
def sdk(fake: FakeOpenAI) -> openai.OpenAI:
    """The official SDK client on ``fake`` (retries off)."""
    return fake.openai_client()
