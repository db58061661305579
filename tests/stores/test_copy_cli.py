"""``finetune-embed index copy SRC DST`` between stores named by URLs, on the real engines: results, resuming, and
errors as one line with every secret of the names masked."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from click.testing import CliRunner, Result

from finetune_embed.cli import main
from finetune_embed.index import EmbeddingIndex

from .conftest import unique_name
from .test_copy import _source, assert_same_items

SECRET = "TopSecret99xyz"
N_KILL = 5_000


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["index", "copy", *args])


def _ok(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, (result.output, result.exception)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _failed(result: Result, code: int = 1) -> str:
    """The one error line of a failed command (no traceback, no secret)."""
    assert result.exit_code == code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert SECRET not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def pg_url(conninfo: str, *, table: str, password: str | None = None) -> str:
    """The suite's server as a postgresql:// URL (a unix socket goes in ?host=)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(conninfo)
    user = f"{info['user']}:{password}" if password else str(info["user"])
    host, port, db = str(info["host"]), info["port"], info["dbname"]
    if host.startswith("/"):
        return f"postgresql://{user}@/{db}?host={quote(host, safe='')}&port={port}&table={table}"
    return f"postgresql://{user}@{host}:{port}/{db}?table={table}"


def _saved(tmp_path: Path, n: int = 300, metric: str = "cosine") -> tuple[EmbeddingIndex, str]:
    src = _source(n, metric)
    src.save(tmp_path / "src-index")
    return src, f"file:{tmp_path / 'src-index'}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_file_to_postgres_to_chroma_to_redis_to_file(pg_conninfo: str, redis_url: str, tmp_path: Path) -> None:
    src, file_src = _saved(tmp_path, metric="dot")
    table, collection, name = unique_name("cli"), unique_name("cli"), unique_name("cli")
    pg = pg_url(pg_conninfo, table=table, password=SECRET)  # the server trusts its socket: the password is unused
    chroma = f"chroma:{tmp_path / 'chroma'}?collection={collection}"
    redis = f"{redis_url}?name={name}"
    out = f"file:{tmp_path / 'out-index'}"
    first = _ok(_run(file_src, pg, "--json", "--batch-size", "64"))
    assert first == {"source": file_src, "destination": pg.replace(SECRET, "***"), "copied": 300, "skipped": 0,
                     "total": 300}
    for a, b in ((pg, chroma), (chroma, redis), (redis, out)):
        assert _ok(_run(a, b, "--json"))["copied"] == 300
    back = EmbeddingIndex.load(tmp_path / "out-index")
    assert back.metric == "dot"
    assert_same_items(back, src)
    human = _run(file_src, pg)  # everything is there already
    assert human.exit_code == 0, human.output
    masked = pg.replace(SECRET, "***")
    assert human.stdout.strip() == f"Copied 0 items from {file_src} to {masked} (300 were already there)"
    assert SECRET not in human.output


def test_a_rerun_completes_an_interrupted_copy(redis_url: str, tmp_path: Path) -> None:
    from finetune_embed.stores import RedisIndex

    src, file_src = _saved(tmp_path)
    name = unique_name("cli")
    with RedisIndex(redis_url, name) as partial:  # what a copy killed after 120 items leaves
        first = next(src.iter_items(120))
        partial.add(*first)
    result = _ok(_run(file_src, f"{redis_url}?name={name}", "--json", "--batch-size", "50"))
    assert (result["copied"], result["skipped"]) == (180, 120)
    with RedisIndex(redis_url, name) as done:
        assert_same_items(done, src)
        done.upsert("doc-7", src.get("doc-7").vector, {"edited": True})  # someone changed an item meanwhile
        refused = _failed(_run(file_src, f"{redis_url}?name={name}"))
        assert "different vector or metadata: 'doc-7'" in refused
        assert "--overwrite" in refused  # the CLI names its own option, not the Python argument
        assert _ok(_run(file_src, f"{redis_url}?name={name}", "--overwrite", "--json"))["copied"] == 300
        assert done.get("doc-7").metadata == src.get("doc-7").metadata
        done.drop()


def test_a_file_destination_is_written_once_at_the_end(tmp_path: Path) -> None:
    src, file_src = _saved(tmp_path, 40)
    other = EmbeddingIndex(3)
    other.add("x", [1, 2, 3])
    other.save(tmp_path / "three-d")
    message = _failed(_run(file_src, f"file:{tmp_path / 'three-d'}"))
    assert "16-dimensional" in message
    assert "3-dimensional" in message
    assert EmbeddingIndex.load(tmp_path / "three-d").ids == ["x"]  # untouched
    assert _ok(_run(file_src, f"file://{tmp_path / 'copy'}", "--json"))["copied"] == 40  # file:///abs works too
    assert_same_items(EmbeddingIndex.load(tmp_path / "copy"), src)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["nope", "file:./x"], 2, "names no store"),
        (["file:./x", "ftp://host/x"], 2, "names no store"),
        (["file:/no/such/index", "file:./x"], 1, "/no/such/index"),
        (["chroma:/no/such/folder?collection=docs", "file:./x"], 1, "no Chroma folder"),
        (["chroma:./x?collection=docs&color=red", "file:./x"], 1, "unknown query key(s) color"),
        (["file:./x?table=t", "file:./y"], 1, "takes no query"),
        (["file://elsewhere/x", "file:./y"], 1, "local folder"),
        (["chroma+http://?collection=docs", "file:./y"], 1, "no host"),
        (["file:./garbage.jsonl", "file:./y"], 1, "garbage.jsonl"),
        (["file:./src-index", "file:./garbage.jsonl"], 1, "is a file"),
    ],
)
def test_bad_names_are_one_line(args: list[str], code: int, words: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    _saved(tmp_path, 5)
    (tmp_path / "garbage.jsonl").write_bytes(b"\x00\xff\xfe{not json at all\n\x80\x81\n")
    monkeypatch.chdir(tmp_path)
    assert words in _failed(_run(*args), code)


def test_secrets_never_show_when_an_engine_refuses(tmp_path: Path) -> None:
    _, file_src = _saved(tmp_path, 5)
    port = _closed_port()
    for dst in (
        f"postgresql://app:{SECRET}@127.0.0.1:{port}/app?table=docs&connect_timeout=5",
        f"redis://:{SECRET}@127.0.0.1:{port}/0?name=docs",
        f"redis://127.0.0.1:{port}/0?name=docs&password={SECRET}",
    ):
        message = _failed(_run(file_src, dst))
        assert "***" in message or "refused" in message.lower(), message
    # qdrant-client checks the server's version in a thread of its own, which can outlive an in-process run: run
    # the real command
    argv = [sys.executable, "-m", "finetune_embed.cli", "index", "copy", file_src,
            f"qdrant://127.0.0.1:{port}?collection=docs&api_key={SECRET}"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 1, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("Error:")] == [
        "Error: the store refused: [Errno 111] Connection refused (qdrant_client: ResponseHandlingException)"
    ]


def test_a_missing_client_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each scheme imports its client only when used; without it the error says which extra to install."""
    _, file_src = _saved(tmp_path, 5)
    for module, package, dst in (
        ("finetune_embed.stores._redis", "redis", "redis://127.0.0.1:1?name=docs"),
        ("finetune_embed.stores._chroma", "chromadb", f"chroma:{tmp_path / 'c'}?collection=docs"),
    ):
        monkeypatch.delitem(sys.modules, module, raising=False)
        monkeypatch.setitem(sys.modules, package, None)  # `import <package>` now fails as if not installed
        extra = "redis" if package == "redis" else "chroma"
        assert f"pip install 'finetune-embed[{extra}]'" in _failed(_run(file_src, dst))


def test_a_copy_killed_with_sigkill_is_completed_by_the_rerun(redis_url: str, tmp_path: Path) -> None:
    """A real interruption: the command's process is killed (SIGKILL) once part of the data has arrived; the
    same command run again leaves exactly the source in the destination."""
    import os
    import signal
    import time

    from finetune_embed.stores import RedisIndex

    src = EmbeddingIndex(16)
    src.add([f"k-{i}" for i in range(N_KILL)], np.random.default_rng(5).standard_normal((N_KILL, 16)),
            [{"n": i, "even": i % 2 == 0} for i in range(N_KILL)])
    src.save(tmp_path / "big")
    name = unique_name("kill")
    argv = [sys.executable, "-m", "finetune_embed.cli", "index", "copy", f"file:{tmp_path / 'big'}",
            f"{redis_url}?name={name}", "--batch-size", "50", "--no-progress"]
    env = {**os.environ, "FINETUNE_EMBED_PROGRESS": "0"}
    with RedisIndex(redis_url, name, dim=16) as dst:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            while len(dst) < 300 and proc.poll() is None:  # wait until part of the data is there
                time.sleep(0.01)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        arrived = len(dst)
        assert 300 <= arrived < N_KILL
        rerun_argv = [*argv[:-3], "--batch-size", "700", "--json"]  # batches need not line up with the first run's
        rerun = subprocess.run(rerun_argv, env=env, capture_output=True, text=True, check=False)
        assert rerun.returncode == 0, rerun.stderr
        result = json.loads(rerun.stdout)
        assert (result["copied"] + result["skipped"], result["skipped"]) == (N_KILL, arrived)
        assert_same_items(dst, src)
        dst.drop()


def test_qdrant_local_mode_both_ways(tmp_path: Path) -> None:
    """qdrant:FOLDER is the client's local mode (Qdrant servers and Cloud take qdrant://host:6333 / qdrant+https)."""
    src, file_src = _saved(tmp_path, 60)
    qdrant = f"qdrant:{tmp_path / 'qdrant'}?collection=reviews"
    assert _ok(_run(file_src, qdrant, "--json", "--batch-size", "25"))["copied"] == 60
    assert _ok(_run(qdrant, f"file:{tmp_path / 'back'}", "--json"))["copied"] == 60
    assert_same_items(EmbeddingIndex.load(tmp_path / "back"), src)
    assert "unknown query key(s) size" in _failed(_run(file_src, "qdrant://127.0.0.1:6333?collection=x&size=3"))


def test_typesense_node_both_ways(typesense_node: Any, tmp_path: Path) -> None:
    """typesense://host:port?collection=..&api_key=.. (a cluster: host:port,host:port,...); the key is masked."""
    src, file_src = _saved(tmp_path, 80)
    typesense_node.ensure_running()
    host = typesense_node.url.removeprefix("http://")
    ts = f"typesense://{host}?collection={unique_name('cli')}&api_key={typesense_node.api_key}"
    first = _ok(_run(file_src, ts, "--json", "--batch-size", "30"))
    assert first["copied"] == 80
    assert typesense_node.api_key not in json.dumps(first)
    assert first["destination"].endswith("api_key=***")
    assert _ok(_run(ts, f"file:{tmp_path / 'back'}", "--json"))["copied"] == 80
    assert_same_items(EmbeddingIndex.load(tmp_path / "back"), src)
    refused = _run(file_src, f"typesense://127.0.0.1:{_closed_port()}?collection=docs&api_key={SECRET}")
    assert "Connection refused" in _failed(refused)
