"""#11 items 5, 9, 12: concurrent saves and loads of one path, leftovers, the user's own files, symlinks, umask,
and typed errors from the operating system."""

from __future__ import annotations

import errno
import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from finetune_embed import _exceptions as exc
from finetune_embed.index import EmbeddingIndex
from finetune_embed.index import _storage as storage
from finetune_embed.index._dirlock import open_dir, try_lock


def _index(n: int, d: int = 16, kind: str = "float32") -> EmbeddingIndex:
    rng = np.random.default_rng(n)
    index = EmbeddingIndex(d, dtype=kind)  # type: ignore[arg-type]
    index.add([f"{n}-{i}" for i in range(n)], rng.standard_normal((n, d)), [{"n": n} for _ in range(n)])
    return index


def _consistent(index: EmbeddingIndex) -> int:
    """The index is one whole saved version: every id, vector and metadata belongs to the same n."""
    n = len(index)
    assert index.ids == [f"{n}-{i}" for i in range(n)]
    assert index.metadata == [{"n": n}] * n
    assert index.vectors.shape == (n, 16)
    return n


def test_concurrent_saves_and_loads_in_threads(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    sizes = [100, 200, 300, 400]
    indexes = [_index(n, kind="int8" if n == 300 else "float32") for n in sizes]
    indexes[0].save(target)
    errors: list[BaseException] = []
    loaded: list[int] = []
    stop = threading.Event()

    def save(i: int) -> None:
        try:
            for _ in range(6):
                indexes[i].save(target)
        except BaseException as e:  # pragma: no cover - the assertion below reports it
            errors.append(e)

    def load() -> None:
        while not stop.is_set():
            try:
                loaded.append(_consistent(EmbeddingIndex.load(target, mmap=len(loaded) % 2 == 0)))
            except BaseException as e:  # pragma: no cover
                errors.append(e)
                return

    readers = [threading.Thread(target=load) for _ in range(2)]
    writers = [threading.Thread(target=save, args=(i,)) for i in range(len(indexes))]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert loaded
    assert set(loaded) <= set(sizes)
    assert _consistent(EmbeddingIndex.load(target)) in sizes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # no .tmp- or .old- directory left


_SAVER = textwrap.dedent(
    """
    import sys, numpy as np
    from finetune_embed.index import EmbeddingIndex
    target, n = sys.argv[1], int(sys.argv[2])
    index = EmbeddingIndex(16)
    index.add([f"{n}-{i}" for i in range(n)], np.random.default_rng(n).standard_normal((n, 16)),
              [{"n": n} for _ in range(n)])
    for _ in range(8):
        index.save(target)
    """
)


@pytest.mark.slow
def test_concurrent_saves_from_processes_with_a_reader(tmp_path: Path) -> None:
    """The issue's probe: 42 of 45 concurrent saves failed and a reader alongside failed 78% of loads."""
    target = tmp_path / "idx"
    _index(50).save(target)
    procs = [
        subprocess.Popen([sys.executable, "-c", _SAVER, str(target), str(n)], stderr=subprocess.PIPE, text=True)
        for n in (1000, 2000, 3000)
    ]
    loads = 0
    while any(p.poll() is None for p in procs):
        _consistent(EmbeddingIndex.load(target))
        loads += 1
    for p in procs:
        assert p.wait() == 0, p.stderr.read() if p.stderr else ""
        if p.stderr:
            p.stderr.close()
    assert loads > 0
    assert _consistent(EmbeddingIndex.load(target)) in (1000, 2000, 3000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_the_users_own_files_survive_a_re_save(tmp_path: Path) -> None:
    target = _index(10).save(tmp_path / "idx")
    (target / "NOTES.md").write_text("how I built this index")
    (target / "extra").mkdir()
    (target / "extra" / "labels.csv").write_text("a,b\n")
    (target / "extra" / "ids.json").write_text("mine, not the index's")
    (target / "link").symlink_to("NOTES.md")
    inode = (target / "NOTES.md").stat().st_ino
    _index(20).save(target)
    assert len(EmbeddingIndex.load(target)) == 20
    assert (target / "NOTES.md").read_text() == "how I built this index"
    assert (target / "NOTES.md").stat().st_ino == inode  # the same file, not a copy
    assert (target / "extra" / "labels.csv").read_text() == "a,b\n"
    assert (target / "extra" / "ids.json").read_text() == "mine, not the index's"
    assert os.readlink(target / "link") == "NOTES.md"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_leftovers_of_dead_saves_are_cleaned_but_foreign_files_stay(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = _index(10).save(tmp_path / "idx")
    (target / "NOTES.md").write_text("mine")
    dead = tmp_path / ".idx.tmp-999-deadbeef0000"  # a save killed while writing (nobody holds its lock)
    dead.mkdir()
    (dead / "vectors.npy").write_bytes(b"partial")
    os.link(target / "NOTES.md", dead / "NOTES.md")  # the link it had made of the user's file
    legacy = tmp_path / ".idx.tmp-0123456789ab"  # finetune_embed 0.1's naming
    legacy.mkdir()
    (legacy / "ids.json").write_text("[]")
    old = tmp_path / ".idx.old-00000000000000000001-abcd"  # a dead save's old directory, with a stranger's file
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    (old / "diary.txt").write_text("not written by any save")
    with caplog.at_level(logging.WARNING, logger="finetune_embed"):
        _index(20).save(target)
    assert not dead.exists()
    assert not legacy.exists()
    assert (target / "NOTES.md").read_text() == "mine"
    assert (old / "diary.txt").read_text() == "not written by any save"  # never delete what we did not write
    assert not (old / "manifest.json").exists()
    assert "holds files that no save of" in caplog.text


def test_a_running_saves_temporary_directory_is_left_alone(tmp_path: Path) -> None:
    target = _index(10).save(tmp_path / "idx")
    running = tmp_path / ".idx.tmp-1-0123456789ab"
    running.mkdir()
    (running / "vectors.npy").write_bytes(b"being written")
    fd = open_dir(running)
    try:
        assert try_lock(fd)  # as the other save holds it
        _index(20).save(target)
        assert (running / "vectors.npy").read_bytes() == b"being written"
    finally:
        os.close(fd)
    _index(30).save(target)  # once that save is gone, the next one cleans up
    assert not running.exists()


def test_after_a_crash_between_the_renames_the_next_save_restores_and_cleans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _index(10).save(tmp_path / "idx")
    (target / "NOTES.md").write_text("mine")
    monkeypatch.setattr(storage, "_exchange", lambda a, b: False)
    real_rename = os.rename
    calls: list[object] = []

    def rename(src: object, dst: object) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(storage.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        _index(20).save(target)
    monkeypatch.setattr(storage.os, "rename", real_rename)
    assert not target.exists()
    assert len(EmbeddingIndex.load(target)) == 10  # from the .old- directory
    _index(30).save(target)
    assert len(EmbeddingIndex.load(target)) == 30
    assert (target / "NOTES.md").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_saving_through_a_symlink_saves_to_its_target(tmp_path: Path) -> None:
    real = _index(10).save(tmp_path / "real")
    link = tmp_path / "current"
    link.symlink_to("real")
    assert _index(20).save(link) == link
    assert link.is_symlink()
    assert os.readlink(link) == "real"
    assert len(EmbeddingIndex.load(real)) == 20
    assert len(EmbeddingIndex.load(link)) == 20
    dangling = tmp_path / "next"
    dangling.symlink_to("future")
    _index(5).save(dangling)
    assert dangling.is_symlink()
    assert len(EmbeddingIndex.load(tmp_path / "future")) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "future", "next", "real"]


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                                (0o002, 0o664, 0o775)])
def test_saved_files_respect_the_umask(tmp_path: Path, umask: int, file_mode: int, dir_mode: int) -> None:
    old = os.umask(umask)
    try:
        target = _index(10, kind="int8").save(tmp_path / "idx")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == dir_mode
    for file in target.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == file_mode, file.name


def _raise(code: int) -> object:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize(
    ("code", "hint"),
    [(errno.EACCES, "check the permissions"), (errno.ENOSPC, "free some disk space"), (errno.EROFS, "permissions")],
)
def test_os_errors_while_saving_are_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, hint: str
) -> None:
    monkeypatch.setattr(storage.os, "mkdir", _raise(code))
    with pytest.raises(exc.FileAccessError, match=rf"Cannot create a directory in {tmp_path}: .*{hint}") as info:
        _index(10).save(tmp_path / "idx")
    assert info.value.errno == code
    assert isinstance(info.value, OSError)  # except OSError keeps working


def test_os_errors_while_loading_are_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _index(10).save(tmp_path / "idx")
    real_open = os.open

    def deny(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if path == "ids.json":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(storage.os, "open", deny)
    with pytest.raises(exc.FileAccessError, match=r"Cannot read .*ids.json: Permission denied; check the permissions"):
        EmbeddingIndex.load(target)


def test_paths_that_are_not_index_directories(tmp_path: Path) -> None:
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(exc.IndexFileError, match="is a file, not an index directory"):
        EmbeddingIndex.load(file)
    with pytest.raises(exc.IndexFileError, match="exists and is not a directory"):
        _index(5).save(file)
    with pytest.raises(exc.FileAccessError, match="Cannot create the directory"):
        _index(5).save(file / "below")
    with pytest.raises(exc.IndexFileError, match="does not exist"):
        EmbeddingIndex.load(tmp_path / "nowhere" / "idx")
    target = _index(5).save(tmp_path / "idx")
    (target / "vectors.npy").unlink()
    (target / "vectors.npy").mkdir()
    with pytest.raises(exc.IndexFileError, match=r"vectors\.npy is not a regular file"):
        EmbeddingIndex.load(target)
