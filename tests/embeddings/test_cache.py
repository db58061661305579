"""EmbeddingCache: SQLite, WAL, keyed on (model, dimensions, sha256(text)), safe across threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from finetune_embed import ConfigError
from finetune_embed.embeddings import EmbeddingCache, default_cache_path, text_key


def test_default_path_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FINETUNE_EMBED_CACHE_DIR", str(tmp_path / "a"))
    assert default_cache_path() == tmp_path / "a" / "embeddings.sqlite"
    monkeypatch.delenv("FINETUNE_EMBED_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "finetune_embed" / "embeddings.sqlite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "finetune_embed" / "embeddings.sqlite"


def test_round_trip_is_exact_float32(tmp_path: Path) -> None:
    vecs = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    with EmbeddingCache(tmp_path / "c.sqlite") as cache:
        cache.put("m", None, [text_key(t) for t in "abc"], vecs)
        assert len(cache) == 3
        got = cache.get("m", None, "b")
        assert got is not None
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, vecs[1])


def test_model_and_dimensions_are_part_of_the_key(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.put("m", None, [text_key("x")], np.ones((1, 4), np.float32))
    assert cache.get("m", 256, "x") is None
    assert cache.get("other", None, "x") is None
    assert ("m", None, "x") in cache
    cache.put("m", 2, [text_key("x")], np.full((1, 2), 2, np.float32))
    assert cache.stats() == {"m": 1, "m@2": 1}
    assert cache.clear("m", 2) == 1
    assert cache.clear() == 1


def test_wal_mode_and_texts_are_not_stored(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    EmbeddingCache(path).put("m", None, [text_key("a secret sentence")], np.ones((1, 2), np.float32))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    files = [path, path.with_name(path.name + "-wal")]
    raw = b"".join(f.read_bytes() for f in files if f.exists())
    assert b"a secret sentence" not in raw


def test_a_committed_put_is_visible_to_another_connection_at_once(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    writer = EmbeddingCache(path)
    writer.put("m", None, [text_key("a")], np.ones((1, 2), np.float32))
    reader = EmbeddingCache(path)  # as a second process would
    assert reader.get("m", None, "a") is not None


def test_thread_safe_writes(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")

    def work(t: int) -> None:
        for i in range(20):
            cache.put("m", None, [text_key(f"{t}-{i}")], np.full((1, 4), t, np.float32))
            assert cache.get("m", None, f"{t}-{i}") is not None

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(cache) == 160


def test_a_file_that_is_not_a_cache_gives_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match="move it away"):
        EmbeddingCache(bad)


def test_journal_round_trip(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.journal_add("batch_1", "m", 256, {"fe-1": [text_key("a"), text_key("b")]}, 10)
    assert cache.journal_pending("m", 256) == [("batch_1", {"fe-1": [text_key("a"), text_key("b")]}, 10)]
    assert cache.journal_pending("m", None) == []
    cache.journal_remove("batch_1")
    assert cache.journal_pending("m", 256) == []
