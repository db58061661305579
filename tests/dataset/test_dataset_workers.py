"""Parallelism is an explicit knob with a deterministic default, and validation changes no interpreter-wide
state: no process unless asked, the automatic count depends only on the file size and the CPUs (never the load
average or other threads), workers start by forkserver/spawn (fork only when asked), and a script without a
``__main__`` guard gets a typed error saying so."""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from dataset_helpers import good_rows, write_jsonl

from finetune_embed import InvalidArgumentError
from finetune_embed.dataset import Dataset, _stream, fix_file

ROOT = Path(__file__).resolve().parents[2]


def _file(tmp_path: Path, n: int = 60) -> Path:
    rows = good_rows(n)
    rows[7]["messages"][1]["weight"] = 2  # an error
    rows[30] = rows[3]  # a duplicate
    return write_jsonl(tmp_path / "train.jsonl", rows)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Start methods of every process started during the test."""
    seen: list[str] = []
    original = multiprocessing.process.BaseProcess.start

    def spy(self: multiprocessing.process.BaseProcess) -> None:
        seen.append(type(self).__name__)
        original(self)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", spy)
    return seen


def test_the_default_starts_no_process(tmp_path: Path, started: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_stream, "PARALLEL_MIN_BYTES", 1)  # "large" for auto: still one process by default
    path = _file(tmp_path)
    report = Dataset.validate_file(path, model="gpt-4o-mini", stats=True)
    Dataset.stats_file(path)
    assert started == []
    assert report.n_examples == 60


def test_auto_depends_only_on_size_and_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    mb = 1024 * 1024
    sizes = (10 * mb, 47 * mb, 48 * mb, 60 * mb, 100 * mb, 10_000 * mb)
    monkeypatch.setattr(_stream, "usable_cpus", lambda: 4)
    expected = [_stream.auto_workers(s) for s in sizes]
    assert expected == [1, 1, 2, 2, 4, 4]

    def busy() -> tuple[float, float, float]:
        return (64.0, 64.0, 64.0)

    monkeypatch.setattr(os, "getloadavg", busy)
    stop = threading.Event()
    others = [threading.Thread(target=stop.wait) for _ in range(3)]
    for t in others:
        t.start()
    try:
        assert [_stream.auto_workers(s) for s in sizes] == expected
    finally:
        stop.set()
        for t in others:
            t.join()
    monkeypatch.setattr(_stream, "usable_cpus", lambda: 32)
    assert _stream.auto_workers(10_000 * mb) == 8


def test_auto_splits_a_large_file_with_the_same_report(
    tmp_path: Path, started: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(tmp_path)
    one = Dataset.validate_file(path, model="gpt-4o-mini", stats=True, workers=1)
    monkeypatch.setattr(_stream, "PARALLEL_MIN_BYTES", 2000)
    monkeypatch.setattr(_stream, "usable_cpus", lambda: 2)
    auto = Dataset.validate_file(path, model="gpt-4o-mini", stats=True, workers="auto")
    assert started, "workers='auto' on a large file starts workers"
    assert auto.to_dict() == one.to_dict()


@pytest.mark.parametrize("threads", [1, 3])
def test_workers_start_by_forkserver_whatever_threads_run(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "active_count", lambda: threads)
    default = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    assert _stream.worker_context(None).get_start_method() == default
    assert _stream.worker_context("spawn").get_start_method() == "spawn"
    if "fork" in multiprocessing.get_all_start_methods():
        assert _stream.worker_context("fork").get_start_method() == "fork"
    with pytest.raises(InvalidArgumentError, match="start_method must be one of") as info:
        _stream.worker_context("thread")
    assert info.value.argument == "start_method"


@pytest.mark.parametrize("start_method", [None, "spawn", "fork"])
def test_every_start_method_gives_the_same_report(tmp_path: Path, start_method: Any) -> None:
    path = _file(tmp_path)
    one = Dataset.validate_file(path, model="gpt-4o-mini", stats=True)
    two = Dataset.validate_file(path, model="gpt-4o-mini", stats=True, workers=2, start_method=start_method)
    assert two.to_dict() == one.to_dict()


def test_bad_workers_values(tmp_path: Path) -> None:
    path = _file(tmp_path)
    for bad in (0, -1, "all", 2.5, True):
        with pytest.raises(InvalidArgumentError, match="workers") as info:
            Dataset.validate_file(path, workers=bad)  # type: ignore[arg-type]
        assert info.value.argument == "workers"


_SCRIPT = """
import json, sys
from finetune_embed.dataset import Dataset
{body}
"""
_CALL = "report = Dataset.validate_file(sys.argv[1], workers=2)\nprint(json.dumps(report.counts, sort_keys=True))"


def _run(tmp_path: Path, body: str, data: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(_SCRIPT.format(body=body), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(script), str(data)], capture_output=True, text=True, env=env, timeout=240, check=False
    )


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="needs forkserver")
def test_a_script_needs_a_main_guard_and_is_told_so(tmp_path: Path) -> None:
    data = _file(tmp_path)
    expected = json.dumps(Dataset.validate_file(data).counts, sort_keys=True)
    guarded = _run(tmp_path, 'if __name__ == "__main__":\n' + textwrap.indent(_CALL, "    "), data)
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    assert guarded.stdout.strip() == expected
    unguarded = _run(tmp_path, _CALL, data)
    assert unguarded.returncode != 0
    assert "ConfigError" in unguarded.stderr
    assert 'if __name__ == "__main__":' in unguarded.stderr
    assert "workers=1" in unguarded.stderr


def _interpreter_state() -> dict[str, Any]:
    root = logging.getLogger()
    return {
        "csv.field_size_limit": csv.field_size_limit(),
        "recursion limit": sys.getrecursionlimit(),
        "start method": multiprocessing.get_start_method(allow_none=True),
        "threads": sorted(t.name for t in threading.enumerate()),
        "root logger": (root.level, list(root.handlers)),
        "warnings filters": list(warnings.filters),
        "environ": dict(os.environ),
        "sys.path": list(sys.path),
        "SIGINT": signal.getsignal(signal.SIGINT),
        "SIGTERM": signal.getsignal(signal.SIGTERM),
        "socket timeout": socket.getdefaulttimeout(),
        "cwd": os.getcwd(),
        "umask": os.umask(os.umask(0o022)),
    }


def test_no_interpreter_wide_side_effects(tmp_path: Path) -> None:
    """Validation (one process and several), stats, CSV loading, fix and writing leave the interpreter as they
    found it: csv's field limit, recursion limit, start method, threads, logging, warnings, environment,
    signal handlers, socket timeout, cwd and umask."""
    path = _file(tmp_path)
    big = "word " * 40_000
    src = tmp_path / "d.csv"
    src.write_text(f'prompt,completion\n"{big}",ok\n', encoding="utf-8")
    before = _interpreter_state()
    Dataset.validate_file(path, model="gpt-4o-mini", stats=True)
    Dataset.validate_file(path, model="gpt-4o-mini", stats=True, workers=2)
    Dataset.stats_file(path, validation=path)
    fix_file(path)
    ds = Dataset.from_csv(src)
    ds.to_json(tmp_path / "out.jsonl")
    ds.validate()
    Dataset.from_json(path).train_test_split(0.2, seed=1)
    after = _interpreter_state()
    assert after == before


def test_cli_workers_option(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from finetune_embed.cli import main

    path = _file(tmp_path)
    outputs = []
    for value in ("auto", "1", "2"):
        result = CliRunner().invoke(main, ["dataset", "validate", str(path), "--workers", value, "--json"])
        assert result.exit_code == 1, result.output  # the file has an error
        outputs.append(json.loads(result.stdout)["counts"])
    assert outputs[0] == outputs[1] == outputs[2]
    bad = CliRunner().invoke(main, ["dataset", "validate", str(path), "--workers", "0"])
    assert bad.exit_code == 2
    assert "not a number >= 1 or 'auto'" in bad.output
