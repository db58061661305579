"""Fixtures for the dataset tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_helpers import good_rows, write_jsonl


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    """A valid 12-example chat file."""
    return write_jsonl(tmp_path / "good.jsonl", good_rows(12))
