"""A pytest plugin providing the ``fake_openai`` fixture.

Enable it in your ``conftest.py`` with ``pytest_plugins = ["finetune_embed.testing.pytest_plugin"]`` or on the
command line with ``-p finetune_embed.testing.pytest_plugin``::

    def test_my_search(fake_openai):
        client = fake_openai.client()
        ...
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._fake import FakeOpenAI

__all__ = ["fake_openai", "fake_openai_url"]


@pytest.fixture
def fake_openai() -> FakeOpenAI:
    """A fresh :class:`~finetune_embed.testing.FakeOpenAI` for each test (manual clock, no limits)."""
    return FakeOpenAI()


@pytest.fixture
def fake_openai_url(fake_openai: FakeOpenAI) -> Iterator[str]:
    """``fake_openai`` served over loopback HTTP for the test; yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    with fake_openai.serve() as url:
        yield url
