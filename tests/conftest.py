"""Shared fixtures: a clean environment for every test and the offline tiktoken cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
COOKBOOK = SHARED / "data" / "cookbook"
TIKTOKEN_CACHE = SHARED / "tiktoken-cache"

# tiktoken reads this when an encoding is first loaded; set it before any test runs
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(TIKTOKEN_CACHE))
os.environ.setdefault("FINETUNE_EMBED_PROGRESS", "0")
# the embedding cache is on by default; tests must never write to the user's ~/.cache
os.environ["FINETUNE_EMBED_CACHE_DIR"] = tempfile.mkdtemp(prefix="finetune-embed-test-cache-")

pytest_plugins = ["finetune_embed.testing.pytest_plugin"]

_STRIPPED_PREFIXES = ("OPENAI_", "AZURE_OPENAI_")


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without OPENAI_* / AZURE_OPENAI_* variables (a developer's key never leaks in)."""
    for name in list(os.environ):
        if name.startswith(_STRIPPED_PREFIXES) or name == "FINETUNE_EMBED_CATALOG":
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(name="cookbook")
def _cookbook() -> Path:
    """The folder of real cookbook data (../shared/data/cookbook)."""
    if not COOKBOOK.is_dir():  # pragma: no cover - CI always has shared/
        pytest.skip("../shared/data/cookbook is not available")
    return COOKBOOK
