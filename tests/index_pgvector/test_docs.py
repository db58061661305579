"""docs/search-postgres.md runs: its Python blocks are executed top to bottom in one namespace (a story)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("psycopg", reason="the pgvector extra (psycopg) is not installed")

pytestmark = pytest.mark.pgvector

DOC = Path(__file__).resolve().parents[2] / "docs" / "search-postgres.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 6


def test_the_page_runs_top_to_bottom(pg_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pg_server: the page starts its own server; the fixture only makes the test skip (or fail in CI) the same
    # way as the others when no PostgreSQL with pgvector is available
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "docs_search_postgres"}
    try:
        for number, block in enumerate(BLOCKS):
            exec(compile(block, f"{DOC}:block{number}", "exec"), namespace)
        assert not namespace["server"].running  # the last block stopped it
    finally:
        server = namespace.get("server")
        if server is not None:
            server.stop()
