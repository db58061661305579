"""A new user's first hour, end to end: a fresh virtualenv, the plain install of this checkout (no extras), the
tokenizer files fetched with the CLI, the README's main command, then the CLI journey against
`finetune-embed fake serve` — every step a real process, as a shell runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with `pip install <this checkout>`: the plain user install, no extras."""
    folder = tmp_path_factory.mktemp("journey") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    python = folder / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    return folder / "bin"


_FRESH_CACHE = tempfile.mkdtemp(prefix="finetune-embed-journey-cache-")


def _env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "FINETUNE_EMBED_"))}
    keep.pop("TIKTOKEN_CACHE_DIR", None)
    keep.pop("VIRTUAL_ENV", None)
    keep["XDG_CACHE_HOME"] = _FRESH_CACHE  # a new user's empty cache, never the machine's ~/.cache
    return {**keep, **extra}


def _run(
    bin_dir: Path, args: list[str], env: dict[str, str], cwd: Path, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(bin_dir / "finetune-embed"), *args],
        env=env,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_the_journey(venv: Path, mirror: tuple[str, Path], tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples")
    url, _ = mirror

    # the plain install has the command and no development extras
    assert subprocess.run([str(venv / "python"), "-c", "import pytest"], capture_output=True).returncode != 0
    version = _run(venv, ["--version"], _env(), work)
    assert version.returncode == 0
    assert "finetune-embed, version" in version.stdout

    # first run: the README's tokenizer command (here from a loopback mirror of the blob store) fills the folder
    download_line = next(x for x in README.splitlines() if x.startswith("finetune-embed tokenizer download"))
    args = download_line.split("#")[0].split()[1:]
    fetched = _run(venv, [*args, "--source", url], _env(), work)
    assert fetched.returncode == 0, fetched.stderr
    export = re.search(r"export TIKTOKEN_CACHE_DIR=(\S+)$", fetched.stdout, flags=re.M)
    assert export is not None, fetched.stdout
    env = _env(TIKTOKEN_CACHE_DIR=export.group(1))

    # the README's main command
    main_line = next(x for x in README.splitlines() if x.startswith("finetune-embed ") and "the main job" in x)
    checked = _run(venv, [*main_line.split("#")[0].split()[1:], "--on", "2026-11-25"], env, work)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.rstrip().endswith("OK: 0 error(s), 1 warning(s)")

    # the fake on loopback, configured only by the lines it prints
    serve_line = next(x for x in README.splitlines() if x.startswith("finetune-embed fake serve"))
    proc = subprocess.Popen(
        [str(venv / "finetune-embed"), *serve_line.split("#")[0].split()[1:]],
        env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("FakeOpenAI serving at http://127.0.0.1:")
        exports = {}
        while (line := proc.stdout.readline()).startswith("export "):
            name, _, value = line.strip().removeprefix("export ").partition("=")
            exports[name] = value
        api = {**env, **exports}

        # data -> file -> job (the method inferred and said), waited for
        job = _run(
            venv,
            ["jobs", "create", "gpt-4.1-mini", "examples/support_preference.jsonl", "--suffix", "journey", "--wait",
             "--poll-interval", "0.2", "--max-poll-interval", "1", "--json"],
            api, work,
        )
        assert job.returncode == 0, job.stderr
        assert "Method: dpo" in job.stderr
        created = json.loads(job.stdout)
        assert created["status"] == "succeeded"
        assert created["fine_tuned_model"].startswith("ft:gpt-4.1-mini-2025-04-14:fake:journey:")
        listed = _run(venv, ["files", "list", "--json"], api, work)
        [training] = [f for f in json.loads(listed.stdout) if f["purpose"] == "fine-tune"]
        fetched_back = _run(venv, ["files", "download", training["id"]], api, work)
        assert fetched_back.returncode == 0, fetched_back.stderr
        original = (work / "examples" / "support_preference.jsonl").read_bytes()
        assert (work / "support_preference.jsonl").read_bytes() == original

        # texts from stdin -> an index -> a text query
        texts = "The coffee was excellent\nGreat coffee, fast delivery\nThe dog food smelled bad\n"
        embedded = _run(venv, ["embed", "-", "-o", "idx", "--no-cache"], api, work, input=texts)
        assert embedded.returncode == 0, embedded.stderr
        hits = _run(venv, ["index", "search", "idx", "The dog food smelled bad", "-k", "1", "--json"], api, work)
        assert hits.returncode == 0, hits.stderr
        assert json.loads(hits.stdout)[0][0]["id"] == "2"

        # a typo is caught before anything is sent
        typo = _run(venv, ["jobs", "create", "gpt-4.1-mnii", "examples/support_chat.jsonl", "--dry-run"], api, work)
        assert typo.returncode == 2
        assert "did you mean 'gpt-4.1-mini'" in typo.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
