"""save / load: round trips, memory maps, corruption and tampering, atomic replacement."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finetune_embed import _exceptions as exc
from finetune_embed.index import EmbeddingIndex
from finetune_embed.index import _storage as storage
from finetune_embed.index._manifest import manifest_bytes


def _index(kind: str = "float32", n: int = 500, d: int = 16, metric: str = "cosine") -> EmbeddingIndex:
    rng = np.random.default_rng(0)
    index = EmbeddingIndex(d, metric=metric, dtype=kind, model="text-embedding-3-small")  # type: ignore[arg-type]
    meta = [{"n": i, "text": f"review {i} ✓", "nested": {"k": [i, None]}} for i in range(n)]
    index.add([f"id{i}" for i in range(n)], rng.standard_normal((n, d)), meta)
    return index


@pytest.mark.parametrize("kind", ["float32", "float16", "int8"])
@pytest.mark.parametrize("mmap", [True, False])
def test_round_trip(tmp_path: Path, kind: str, mmap: bool) -> None:
    index = _index(kind, metric="dot" if kind == "float16" else "cosine")
    index.delete(["id3", "id7"])
    index.upsert(["id0"], np.ones(16), [{"changed": True}])
    path = index.save(tmp_path / "idx")
    loaded = EmbeddingIndex.load(path, mmap=mmap)
    assert loaded.ids == index.ids
    assert loaded.metadata == index.metadata
    assert (loaded.dim, loaded.metric, loaded.dtype, loaded.model) == (16, index.metric, kind, "text-embedding-3-small")
    np.testing.assert_array_equal(loaded.vectors, index.vectors)
    queries = np.random.default_rng(1).standard_normal((4, 16))
    a, b = index.search(queries, 7), loaded.search(queries, 7)
    assert a.ids == b.ids
    for x, y in zip(a.scores, b.scores, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    assert manifest["count"] == 498
    assert manifest["vector_sha256"] == manifest["files"]["vectors.npy"]["sha256"]
    # plain formats anyone can read, without pickle
    raw = np.load(path / "vectors.npy", allow_pickle=False)
    assert raw.shape == (498, 16)
    assert json.loads((path / "ids.json").read_text()) == index.ids


def test_mmap_is_copy_on_write(tmp_path: Path) -> None:
    path = _index().save(tmp_path / "idx")
    before = (path / "vectors.npy").read_bytes()
    loaded = EmbeddingIndex.load(path, mmap=True)
    store = loaded._store
    assert store is not None
    assert isinstance(store.segments[0].data, np.memmap)
    loaded.upsert(["id1"], np.ones(16))
    loaded.add(["new"], np.ones(16))
    loaded.delete(["id2"])
    assert loaded.search(np.ones(16), k=2).ids == ["id1", "new"]
    assert (path / "vectors.npy").read_bytes() == before  # the file is never written
    assert EmbeddingIndex.load(path).ids[:3] == ["id0", "id1", "id2"]


def test_empty_index_round_trip(tmp_path: Path) -> None:
    path = EmbeddingIndex(metric="dot").save(tmp_path / "empty")
    loaded = EmbeddingIndex.load(path)
    assert len(loaded) == 0
    assert loaded.metric == "dot"


def test_save_replaces_an_index_and_refuses_other_directories(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    _index(n=10).save(target)
    _index(n=20).save(target)
    assert len(EmbeddingIndex.load(target)) == 20
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no temp or old directories left
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(exc.IndexFileError, match="refusing"):
        _index(n=5).save(other)
    assert (other / "cat.jpg").exists()


def test_fallback_rename_when_exchange_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "_exchange", lambda a, b: False)
    target = tmp_path / "idx"
    _index(n=10).save(target)
    _index(n=30).save(target)
    assert len(EmbeddingIndex.load(target)) == 30
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_a_crash_between_the_renames_leaves_the_old_index_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "idx"
    _index(n=10).save(target)
    monkeypatch.setattr(storage, "_exchange", lambda a, b: False)
    real_rename = os.rename
    calls = []

    def rename(src: object, dst: object) -> None:
        calls.append((src, dst))
        if len(calls) == 2:  # the old index was moved away; the new one never arrives
            raise KeyboardInterrupt
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(storage.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        _index(n=30).save(target)
    monkeypatch.setattr(storage.os, "rename", real_rename)
    assert not target.exists()
    assert len(EmbeddingIndex.load(target)) == 10  # found beside it


def test_a_failed_write_leaves_the_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "idx"
    _index(n=10).save(target)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(storage, "_write_text", boom)
    with pytest.raises(exc.FileAccessError, match=r"Cannot write the index to .*disk full"):
        _index(n=30).save(target)
    assert len(EmbeddingIndex.load(target)) == 10
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


_SAVER = textwrap.dedent(
    """
    import sys, numpy as np
    from finetune_embed.index import EmbeddingIndex
    target = sys.argv[1]
    rng = np.random.default_rng(0)
    indexes = []
    for n in (3000, 5000):
        index = EmbeddingIndex(64)
        index.add([f"{n}-{i}" for i in range(n)], rng.standard_normal((n, 64)))
        indexes.append(index)
    indexes[0].save(target)
    print("ready", flush=True)
    i = 1
    while True:
        indexes[i % 2].save(target)
        i += 1
    """
)


@pytest.mark.slow
def test_killing_a_save_at_random_moments_always_leaves_a_loadable_index(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    rng = np.random.default_rng(2)
    for _ in range(6):
        with subprocess.Popen([sys.executable, "-c", _SAVER, str(target)], stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(float(rng.uniform(0.0, 0.4)))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        loaded = EmbeddingIndex.load(target)
        assert len(loaded) in (3000, 5000)
        assert loaded.ids[0] == f"{len(loaded)}-0"


# --- corruption and tampering -----------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return _index("int8").save(tmp_path / "idx")


def _flip_byte(file: Path, at: int) -> None:
    data = bytearray(file.read_bytes())
    data[at] ^= 0x01
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["vectors.npy", "ids.json", "metadata.jsonl", "codes.npy", "residuals.npy"])
def test_a_changed_byte_is_caught_by_the_checksum(saved: Path, name: str) -> None:
    file = saved / name
    _flip_byte(file, file.stat().st_size - 3)
    with pytest.raises(exc.IndexFileError, match=f"{name}.*sha256"):
        EmbeddingIndex.load(saved)


@pytest.mark.parametrize("name", ["vectors.npy", "ids.json", "metadata.jsonl", "codes.npy"])
def test_a_truncated_file_is_caught_even_without_verify(saved: Path, name: str) -> None:
    file = saved / name
    file.write_bytes(file.read_bytes()[:-10])
    with pytest.raises(exc.IndexFileError, match="truncated"):
        EmbeddingIndex.load(saved, verify=False)


def test_a_missing_file_or_manifest(saved: Path) -> None:
    (saved / "ids.json").unlink()
    with pytest.raises(exc.IndexFileError, match=r"ids\.json is missing"):
        EmbeddingIndex.load(saved)
    (saved / "manifest.json").unlink()
    with pytest.raises(exc.IndexFileError, match=r"manifest\.json is missing"):
        EmbeddingIndex.load(saved)
    with pytest.raises(exc.IndexFileError, match="does not exist"):
        EmbeddingIndex.load(saved.parent / "nowhere")


def _forge(saved: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change manifest fields and recompute the manifest's own checksum, as a forger would."""
    fields = json.loads((saved / "manifest.json").read_text())
    del fields["manifest_sha256"]
    change(fields)
    (saved / "manifest.json").write_bytes(manifest_bytes(fields))


def _rewrite(saved: Path, name: str, content: bytes) -> None:
    """Replace a file and update every checksum to match, as a tamperer covering all their tracks would."""
    (saved / name).write_bytes(content)

    def change(fields: dict[str, Any]) -> None:
        fields["files"][name] = {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
        if name == "vectors.npy":
            fields["vector_sha256"] = fields["files"][name]["sha256"]

    _forge(saved, change)


def test_consistent_tampering_is_still_refused_by_the_structure_checks(tmp_path: Path) -> None:
    import io

    saved = _index().save(tmp_path / "a")
    ids = json.loads((saved / "ids.json").read_text())
    _rewrite(saved, "ids.json", json.dumps(ids[:-1]).encode())
    with pytest.raises(exc.IndexFileError, match="499 ids but the manifest says count=500"):
        EmbeddingIndex.load(saved)
    _rewrite(saved, "ids.json", json.dumps(ids[:-1] + ids[:1]).encode())
    with pytest.raises(exc.IndexFileError, match="repeated ids"):
        EmbeddingIndex.load(saved)

    saved = _index().save(tmp_path / "b")
    buf = io.BytesIO()
    np.save(buf, np.zeros((500, 8), dtype=np.float32))
    _rewrite(saved, "vectors.npy", buf.getvalue())
    with pytest.raises(exc.IndexFileError, match=r"holds a \(500, 8\) array"):
        EmbeddingIndex.load(saved)

    saved = _index().save(tmp_path / "c")
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}] * 500, dtype=object), allow_pickle=True)
    _rewrite(saved, "vectors.npy", buf.getvalue())
    with pytest.raises(exc.IndexFileError, match=r"holds a \(500,\) array of object"):
        EmbeddingIndex.load(saved)  # object arrays need pickle, which is never allowed

    saved = _index().save(tmp_path / "d")
    lines = (saved / "metadata.jsonl").read_text().splitlines()
    lines[5] = "[1, 2]"
    _rewrite(saved, "metadata.jsonl", ("\n".join(lines) + "\n").encode())
    with pytest.raises(exc.IndexFileError, match=r"metadata.jsonl:6: expected a JSON object"):
        EmbeddingIndex.load(saved)
    lines[5] = "{not json"
    _rewrite(saved, "metadata.jsonl", ("\n".join(lines) + "\n").encode())
    with pytest.raises(exc.IndexFileError, match=r"metadata.jsonl:6: not valid JSON"):
        EmbeddingIndex.load(saved)


def test_manifest_problems(saved: Path) -> None:
    manifest = json.loads((saved / "manifest.json").read_text())
    (saved / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(exc.IndexFileError, match=r"format_version 99.*Upgrade"):
        EmbeddingIndex.load(saved)
    (saved / "manifest.json").write_text(json.dumps(manifest))
    _forge(saved, lambda m: m.update(metric="l2", count=-1))
    with pytest.raises(exc.IndexFileError, match=r"count must be an integer.*found -1.*metric must be one of"):
        EmbeddingIndex.load(saved)
    (saved / "manifest.json").write_text("{")
    with pytest.raises(exc.IndexFileError, match="not valid JSON"):
        EmbeddingIndex.load(saved)
    (saved / "manifest.json").write_text("[]")
    with pytest.raises(exc.IndexFileError, match="not an EmbeddingIndex manifest"):
        EmbeddingIndex.load(saved)
