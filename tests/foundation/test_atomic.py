"""One atomic writer for every file the library writes: complete or untouched, nothing left behind, and the
permissions ``open()`` would give (0o666 minus the umask), never a blanket 0o600."""

from __future__ import annotations

import errno
import json
import os
import pickle
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from finetune_embed import Dataset, FileAccessError, FinetuneEmbedError
from finetune_embed._atomic import atomic_path, atomic_write, atomic_write_bytes, atomic_write_lines
from finetune_embed.dataset import _memory
from finetune_embed.finetuning import FileManager, TrainingMetrics
from finetune_embed.retry import RetryPolicy
from finetune_embed.testing import FakeOpenAI

ROWS = [
    {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(12)
]


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=["umask022", "umask077", "umask002"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under a given umask (restored afterwards)."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _to_json(out: Path) -> list[Path]:
    Dataset(ROWS).to_json(out / "train.jsonl")
    return [out / "train.jsonl"]


def _split_and_convert(out: Path) -> list[Path]:
    ds = Dataset([{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(12)])
    train, test = ds.train_test_split(0.25, seed=1)
    train.to_json(out / "train.jsonl")
    test.convert().to_json(out / "test.jsonl")
    return [out / "train.jsonl", out / "test.jsonl"]


def _fix(out: Path) -> list[Path]:
    src = out / "src.jsonl"
    src.write_text("\n".join([*(json.dumps(r) for r in ROWS), "not json"]) + "\n", encoding="utf-8")
    src.chmod(0o600)  # the source's own mode must not leak into the outputs
    result = Dataset.fix_file(src)
    return [result.fixed_path, result.rejected_path]


def _metrics_csv(out: Path) -> list[Path]:
    TrainingMetrics.from_csv("step,train_loss\n1,2.0\n2,1.5\n").to_csv(out / "metrics.csv")
    return [out / "metrics.csv"]


def _download(out: Path) -> list[Path]:
    fake = FakeOpenAI()
    files = FileManager(fake.client(retry=RetryPolicy.none()))
    src = out / "up.jsonl"
    Dataset(ROWS).to_json(src)
    uploaded = files.upload(src)
    target = out / "down" / "train.jsonl"
    files.download(uploaded.id, target)
    return [target]


def _embed_npy(out: Path) -> list[Path]:
    from finetune_embed.cli._embed import _save_npy

    _save_npy(np.zeros((2, 3), dtype=np.float32), out / "vectors.npy")
    return [out / "vectors.npy"]


WRITERS: dict[str, Callable[[Path], list[Path]]] = {
    "Dataset.to_json": _to_json,
    "split+convert": _split_and_convert,
    "fix_file": _fix,
    "TrainingMetrics.to_csv": _metrics_csv,
    "FileManager.download": _download,
    "embed -o .npy": _embed_npy,
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_writer_respects_the_umask(writer: str, umask: int, tmp_path: Path) -> None:
    for path in WRITERS[writer](tmp_path):
        assert path.is_file()
        assert mode_of(path) == 0o666 & ~umask, f"{writer} wrote {path.name} as {oct(mode_of(path))}"
        assert leftovers(path.parent) == [], f"{writer} left temporary files"


def test_cli_embed_output_respects_the_umask(umask: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune_embed.cli import main

    fake = FakeOpenAI()
    src = tmp_path / "texts.txt"
    src.write_text("one\ntwo\n", encoding="utf-8")
    with fake.serve() as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-umask-test")
        result = CliRunner().invoke(main, ["embed", str(src), "-o", str(tmp_path / "v.npy")])
    assert result.exit_code == 0, result.output
    assert mode_of(tmp_path / "v.npy") == 0o666 & ~umask


def test_replacing_keeps_the_existing_files_mode(tmp_path: Path) -> None:
    target = tmp_path / "shared.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    atomic_write_lines(target, ["new"])
    assert target.read_text() == "new\n"
    assert mode_of(target) == 0o640


def test_private_files_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        atomic_write_bytes(tmp_path / "secret", b"k", private=True)
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "secret") == 0o600


def test_a_symlink_is_followed_not_replaced(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError, SystemExit])
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_file(
    interruption: type[BaseException], tmp_path: Path
) -> None:
    target = tmp_path / "data.jsonl"
    target.write_text("old\n")

    def lines() -> Iterator[str]:
        yield "new 1"
        raise interruption()

    with pytest.raises(interruption):
        atomic_write_lines(target, lines())
    assert target.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_fix_interrupted_midway_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    calls = 0

    original = _memory.canonical_digest

    def interrupt(row: object) -> int:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise KeyboardInterrupt
        return original(row)

    monkeypatch.setattr(_memory, "canonical_digest", interrupt)
    with pytest.raises(KeyboardInterrupt):
        Dataset.fix_file(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.jsonl"]


def test_file_system_failures_are_typed(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(FileAccessError) as info:
        atomic_write_bytes(blocker / "sub" / "out.bin", b"x")
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, FinetuneEmbedError)
    assert "a-file" in info.value.path
    assert "check the path" in str(info.value)
    with pytest.raises(FileAccessError, match=r"is a folder|Is a directory"):
        atomic_write_bytes(tmp_path, b"x")  # a directory: the rename fails
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_read_only_folder_is_a_typed_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(FileAccessError, match="permissions") as info:
            Dataset(ROWS).to_json(folder / "train.jsonl")
        assert info.value.errno == errno.EACCES
    finally:
        folder.chmod(0o700)


def test_a_full_disk_is_a_typed_error_and_leaves_nothing(tmp_path: Path) -> None:
    class Full:
        def __iter__(self) -> Iterator[str]:
            yield "x"
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(FileAccessError, match="disk space"):
        atomic_write_lines(tmp_path / "out.jsonl", Full())
    assert list(tmp_path.iterdir()) == []


def test_the_callers_own_errors_pass_through_unchanged(tmp_path: Path) -> None:
    with pytest.raises(ConnectionResetError), atomic_path(tmp_path / "x.part"):
        raise ConnectionResetError("the network, not the disk")
    assert list(tmp_path.iterdir()) == []


def test_binary_and_text_modes(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "t.txt") as f:
        f.write("a\nb\n")
    with atomic_write(tmp_path / "b.bin", "wb") as fb:
        fb.write(b"\x00\x01")
    assert (tmp_path / "t.txt").read_bytes() == b"a\nb\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_file_access_error_pickles_with_its_attributes() -> None:
    exc = FileAccessError("Cannot write /x: denied", path="/x", errno=errno.EACCES)
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is FileAccessError
    assert (str(again), again.path, again.errno, again.filename) == (str(exc), "/x", errno.EACCES, "/x")
