"""``finetune-embed fake serve``: a real process on loopback, its printed env lines, and a clean Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ._run import invoke


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "finetune_embed.cli", "fake", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


@pytest.fixture(name="server")
def _server() -> Iterator[subprocess.Popen[str]]:
    proc = _start()
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def _exports(proc: subprocess.Popen[str]) -> dict[str, str]:
    assert proc.stdout is not None
    headline = proc.stdout.readline()
    assert headline.startswith("FakeOpenAI serving at http://127.0.0.1:"), headline
    env: dict[str, str] = {}
    while (line := proc.stdout.readline()).startswith("export "):
        name, _, value = line.strip().removeprefix("export ").partition("=")
        env[name] = value
    assert line.startswith("# for --azure: export AZURE_OPENAI_ENDPOINT=")
    return env


def test_serve_prints_working_env_lines_and_stops_on_ctrl_c(server: subprocess.Popen[str], tmp_path: Path) -> None:
    env = _exports(server)
    assert env["FINETUNE_EMBED_PROVIDER"] == "openai"
    assert set(env) == {"OPENAI_BASE_URL", "OPENAI_API_KEY", "FINETUNE_EMBED_PROVIDER"}
    models = httpx.get(env["OPENAI_BASE_URL"] + "/models", headers={"authorization": f"Bearer {env['OPENAI_API_KEY']}"})
    assert models.status_code == 200
    assert any(m["id"] == "text-embedding-3-small" for m in models.json()["data"])
    # the CLI itself, configured only by the printed lines, talks to it
    texts = tmp_path / "texts.txt"
    texts.write_text("hello\nworld\n")
    embedded = subprocess.run(
        [sys.executable, "-m", "finetune_embed.cli", "embed", str(texts), "-o", str(tmp_path / "v.npy"), "--no-cache"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert embedded.returncode == 0, embedded.stderr
    assert embedded.stdout.startswith("Wrote 2 x 1536 vectors")
    server.send_signal(signal.SIGINT)
    _out, err = server.communicate(timeout=30)
    assert server.returncode == 0
    assert "Traceback" not in err
    assert "FakeOpenAI stopped." in err


def test_serve_stops_on_sigterm_and_never_echoes_a_chosen_key() -> None:
    proc = _start("--api-key", "sk-chosen-secret-123456", "--json", "--rpm", "5", "--latency", "0,0.01")
    try:
        assert proc.stdout is not None
        line = json.loads(proc.stdout.readline())
        assert line["base_url"].startswith("http://127.0.0.1:")
        assert line["api_key"] is None
        wrong = httpx.get(line["base_url"] + "/models", headers={"authorization": "Bearer sk-other"})
        assert wrong.status_code == 401
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "sk-chosen-secret" not in out + err


@pytest.mark.parametrize("latency", ["-1", "abc", "2,1", "1,2,3", "nan", "inf"])
def test_serve_refuses_a_bad_latency(latency: str) -> None:
    result = invoke(["fake", "serve", "--latency", latency])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--latency" in result.stderr
