"""Helpers for the CLI tests: run the command line in process or as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from click.testing import CliRunner, Result

from finetune_embed.cli import main


def invoke(args: Sequence[str], input: str | bytes | None = None) -> Result:
    """Run ``finetune-embed ARGS`` in process, with stdout and stderr kept apart."""
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=True)


def run_cli(
    args: Sequence[str], *, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``finetune-embed ARGS`` in a fresh interpreter (exit codes, signals and pipes as a shell sees them)."""
    return subprocess.run(
        [sys.executable, "-m", "finetune_embed.cli", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
