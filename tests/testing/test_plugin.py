"""The pytest plugin: `-p finetune_embed.testing.pytest_plugin` gives a `fake_openai` fixture."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from finetune_embed.testing import FakeOpenAI


def test_fixture_is_a_fresh_fake(fake_openai: FakeOpenAI) -> None:
    assert isinstance(fake_openai, FakeOpenAI)
    assert fake_openai.ledger.requests == []


def test_plugin_in_a_user_project(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            def test_uses_fixture(fake_openai):
                sdk = fake_openai.openai_client()
                sdk.embeddings.create(model="text-embedding-3-small", input="x")
                assert fake_openai.ledger.embedding_requests == 1

            def test_loopback(fake_openai_url):
                assert fake_openai_url.endswith("/v1")
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "finetune_embed.testing.pytest_plugin",
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
