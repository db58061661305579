"""The public surface: exported names, lazy imports, typing marker, CLI basics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import finetune_embed
from finetune_embed.cli import main


def test_all_is_sorted_and_resolves() -> None:
    """__all__ lists every public name once, sorted, and each one resolves."""
    assert finetune_embed.__all__ == sorted(finetune_embed.__all__, key=str.casefold)
    assert len(set(finetune_embed.__all__)) == len(finetune_embed.__all__)
    for name in finetune_embed.__all__:
        value = getattr(finetune_embed, name)
        if name != "__version__":
            assert getattr(value, "__module__", "finetune_embed") == "finetune_embed", name


def test_import_is_lazy() -> None:
    """`import finetune_embed` loads neither openai nor numpy (they cost most of a second)."""
    heavy = "('openai', 'numpy', 'pandas', 'httpx', 'tiktoken')"
    code = f"import sys, finetune_embed; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_py_typed_is_shipped() -> None:
    """The package carries the PEP 561 marker."""
    assert (Path(finetune_embed.__file__).parent / "py.typed").exists()


def test_version() -> None:
    """__version__ comes from the installed metadata, and the CLI prints it."""
    assert finetune_embed.__version__[0].isdigit()
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert finetune_embed.__version__ in result.output


def test_models_list_and_info() -> None:
    """`finetune-embed models list|info` work offline and without a key."""
    runner = CliRunner()
    result = runner.invoke(main, ["models", "list", "--on", "2026-11-25"])
    assert result.exit_code == 0, result.output
    assert "gpt-4o-mini-2024-07-18" in result.output
    assert "text-embedding-3-small" in result.output
    result = runner.invoke(main, ["models", "list", "--json"])
    assert result.exit_code == 0
    import json

    data = json.loads(result.output)
    assert {m["model"] for m in data["embedding_models"]} >= {"text-embedding-3-small", "text-embedding-ada-002"}
    result = runner.invoke(main, ["models", "info", "gpt-4o-mini"])
    assert result.exit_code == 0
    assert "2027-01-14" in result.output
    result = runner.invoke(main, ["models", "info", "no-such-model"])
    assert result.exit_code == 1
    assert "not in the catalog" in result.output
