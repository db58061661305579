"""Kill -9 mid-run, run again: nothing finished is paid for twice, and the output is identical.

The fake is served over loopback by this process, so it outlives the killed subprocess and its ledger
counts every text billed across both runs.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from finetune_embed.testing import FakeOpenAI

N_TEXTS = 1200
BATCH = 40
CONCURRENCY = 2

CHILD = f"""
import sys
import numpy as np
from finetune_embed import Client
from finetune_embed.embeddings import Embedder

url, cache, out = sys.argv[1:]
texts = [f"resumable text {{i}} " + "lorem ipsum " * (i % 13) for i in range({N_TEXTS})]
client = Client(api_key="sk-test", base_url=url, timeout=120)
embedder = Embedder(client, cache=cache, max_batch_inputs={BATCH}, max_concurrency={CONCURRENCY}, progress=False)
np.save(out, embedder.embed(texts))
"""


def corpus() -> list[str]:
    return [f"resumable text {i} " + "lorem ipsum " * (i % 13) for i in range(N_TEXTS)]


def cached_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def start(script: Path, url: str, cache: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": os.environ["TIKTOKEN_CACHE_DIR"], "FINETUNE_EMBED_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, str(script), url, str(cache), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until(predicate: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the kill: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the run to make progress")
        time.sleep(0.02)


def finish(proc: subprocess.Popen[bytes]) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "child.py"
    path.write_text(CHILD)
    return path


def test_killed_while_requests_hang_then_resumed_bills_nothing_twice(tmp_path: Path, script: Path) -> None:
    fake = FakeOpenAI(latency=(0.02, 0.08))
    cache, out = tmp_path / "cache.sqlite", tmp_path / "out.npy"
    with fake.serve() as url:
        proc = start(script, url, cache, out)
        wait_until(lambda: fake.ledger.embedding_requests >= 8, proc)
        fake.inject_timeout(times=1000, hold=5)  # from now on requests hang, unbilled
        # kill once every billed batch has been committed and the run is stuck mid-request
        wait_until(
            lambda: any(r.fault == "timeout" for r in fake.ledger.requests)
            and cached_rows(cache) == len(fake.ledger.billed_texts),
            proc,
        )
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        done_before = cached_rows(cache)
        assert 0 < done_before < N_TEXTS
        assert not out.exists()
        fake.faults.clear()
        second = start(script, url, cache, out)
        finish(second)
    billed = fake.ledger.billed_texts
    assert len(billed) == N_TEXTS
    assert set(billed.values()) == {1}
    np.testing.assert_array_equal(np.load(out), fake.embeddings(corpus()))


def settled(read: Callable[[], int], quiet: float = 0.5, timeout: float = 30.0) -> int:
    """``read()`` once it has not changed for ``quiet`` seconds (the server has finished what was in flight)."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
    raise AssertionError(f"the server kept billing for {timeout} s after the client was killed")


def test_killed_at_a_random_moment_repays_at_most_the_requests_in_flight(tmp_path: Path, script: Path) -> None:
    fake = FakeOpenAI(latency=(0.05, 0.1))
    cache, out = tmp_path / "cache.sqlite", tmp_path / "out.npy"
    with fake.serve() as url:
        proc = start(script, url, cache, out)
        wait_until(lambda: fake.ledger.embedding_requests >= 6, proc)
        time.sleep(0.037)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        committed = cached_rows(cache)
        # a request the server was still working on when the client died is billed when the server finishes it
        billed_at_kill = settled(lambda: len(fake.ledger.billed_texts))
        second = start(script, url, cache, out)
        finish(second)
    billed = fake.ledger.billed_texts
    twice = [t for t, n in billed.items() if n > 1]
    assert max(billed.values()) <= 2
    # only texts billed but not yet committed when the kill came (requests in flight) are paid again
    assert len(twice) == billed_at_kill - committed <= CONCURRENCY * BATCH
    np.testing.assert_array_equal(np.load(out), fake.embeddings(corpus()))
