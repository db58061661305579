"""EmbeddingCache: SQLite, WAL, keyed on (model, dimensions, sha256(text)), safe across threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from finetune_embed import ConfigError, EmbeddingCacheError, InvalidEmbeddingError
from finetune_embed.embeddings import EmbeddingCache, default_cache_path, text_key
from finetune_embed.embeddings._cache import MIGRATIONS, row_checksum


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
            cache.put("m", None, [text_key(f"{t}-{i}")], np.full((1, 4), t + 1, np.float32))
            assert cache.get("m", None, f"{t}-{i}") is not None

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(cache) == 160


def test_journal_round_trip(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.journal_add("batch_1", "m", 256, {"fe-1": [text_key("a"), text_key("b")]}, 10)
    assert cache.journal_pending("m", 256) == [("batch_1", {"fe-1": [text_key("a"), text_key("b")]}, 10)]
    assert cache.journal_pending("m", None) == []
    cache.journal_remove("batch_1")
    assert cache.journal_pending("m", 256) == []


# --- integrity: the cache never returns a corrupted vector (#11) ------------------------------------------------

MODEL = "text-embedding-3-small"
OLD_FILE = Path(__file__).parent / "data" / "cache-0.1.sqlite"  # written by finetune_embed 0.1's own code


def _filled(path: Path, n: int = 6, dim: int = 8) -> tuple[list[bytes], np.ndarray]:
    vecs = np.random.default_rng(1).standard_normal((n, dim)).astype(np.float32)
    keys = [text_key(f"text {i}") for i in range(n)]
    with EmbeddingCache(path) as cache:
        cache.put(MODEL, None, keys, vecs)
    return keys, vecs


def _tamper(path: Path, key: bytes, sql: str, *params: object) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql, (*params, key))
    conn.commit()
    conn.close()


def _read(path: Path, keys: list[bytes], dim: int | None = 8) -> dict[bytes, np.ndarray]:
    with EmbeddingCache(path) as cache:
        return {k: v.copy() for k, v in cache.vectors(MODEL, None, keys, dim=dim)}


def test_every_row_has_a_checksum_over_what_it_says(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    _keys, _vecs = _filled(path)
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT model, dimensions, key, dim, vector, checksum FROM embeddings").fetchall()
    assert len(rows) == 6
    for model, dims, key, dim, blob, checksum in rows:
        assert checksum == row_checksum(model, dims, key, dim, blob)
        assert len(checksum) == 8


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("bitflip", "checksum mismatch"),
        ("nan", "non-finite"),
        ("zero", "all zero"),
        ("truncated", "truncated"),
        ("wrong_dim", "truncated"),
        ("text_blob", "malformed"),
        ("checksum", "checksum mismatch"),
    ],
)
def test_a_damaged_row_is_dropped_with_a_warning_naming_the_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str, problem: str
) -> None:
    path = tmp_path / "c.sqlite"
    keys, vecs = _filled(path)
    bad = keys[2]
    blob = bytearray(vecs[2].tobytes())
    if damage == "bitflip":
        blob[5] ^= 0x10
        _tamper(path, bad, "UPDATE embeddings SET vector = ? WHERE key = ?", bytes(blob))
    elif damage in ("nan", "zero"):
        row = np.full(8, np.nan if damage == "nan" else 0.0, "<f4")
        # a row that was written (checksum and all) with a bad vector: still never returned
        _tamper(path, bad, "UPDATE embeddings SET vector = ?, checksum = ? WHERE key = ?", row.tobytes(),
                row_checksum(MODEL, 0, bad, 8, row.tobytes()))
    elif damage == "truncated":
        _tamper(path, bad, "UPDATE embeddings SET vector = ? WHERE key = ?", bytes(blob[:13]))
    elif damage == "wrong_dim":
        _tamper(path, bad, "UPDATE embeddings SET dim = ? WHERE key = ?", 9)
    elif damage == "text_blob":
        _tamper(path, bad, "UPDATE embeddings SET vector = ? WHERE key = ?", "not bytes")
    else:
        _tamper(path, bad, "UPDATE embeddings SET checksum = ? WHERE key = ?", b"\0" * 8)
    with caplog.at_level("WARNING", logger="finetune_embed.embeddings"):
        got = _read(path, keys)
    assert set(got) == set(keys) - {bad}
    for i, k in enumerate(keys):
        if k != bad:
            np.testing.assert_array_equal(got[k], vecs[i])
    (record,) = [r for r in caplog.records if "damaged" in r.getMessage()]
    assert str(path) in record.getMessage()
    assert problem in record.getMessage()
    # dropped for good: the next read is quiet, and the row can be written again
    caplog.clear()
    with EmbeddingCache(path) as cache:
        assert len(cache) == 5
        cache.put(MODEL, None, [bad], vecs[2:3])
        np.testing.assert_array_equal(cache.get(MODEL, None, "text 2"), vecs[2])
    assert not caplog.records


def test_a_row_of_another_size_is_a_miss_not_damage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "c.sqlite"
    keys, _ = _filled(path, dim=8)
    with caplog.at_level("WARNING"):
        assert _read(path, keys, dim=16) == {}
    assert not caplog.records
    assert len(EmbeddingCache(path)) == 6


def test_put_refuses_unusable_vectors(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    rows = np.ones((3, 4), np.float32)
    rows[1] = 0
    rows[2, 0] = np.inf
    with pytest.raises(InvalidEmbeddingError, match=r"\[1, 2\]") as info:
        cache.put(MODEL, None, [text_key(c) for c in "abc"], rows)
    assert info.value.indices == [1, 2]
    assert len(cache) == 0
    with pytest.raises(ConfigError, match="2 keys but 3 vectors"):
        cache.put(MODEL, None, [b"a", b"b"], np.ones((3, 4), np.float32))


@pytest.mark.parametrize("content", [b"not a database at all" * 100, b"", b"SQLite format 3\0" + b"\xff" * 4000])
def test_a_file_that_is_not_a_cache_is_a_typed_error_that_says_how_to_recover(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(content)
    if not content:  # an empty file is a fresh database to SQLite: it just becomes a cache
        EmbeddingCache(bad).close()
        return
    with pytest.raises(EmbeddingCacheError, match="salvage") as info:
        EmbeddingCache(bad)
    assert info.value.path == str(bad)
    assert "cache=False" in str(info.value)


def test_damaged_pages_are_a_typed_error_and_salvage_keeps_what_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    dim = 64
    n = 400  # many pages
    vecs = np.random.default_rng(2).standard_normal((n, dim)).astype(np.float32) + 0.5
    keys = [text_key(f"t{i}") for i in range(n)]
    with EmbeddingCache(path) as cache:
        cache.put(MODEL, None, keys, vecs)
        cache.journal_add("batch_1", MODEL, None, {"fe-1": [keys[0]]}, 5)
    raw = bytearray(path.read_bytes())
    page = 4096
    assert len(raw) > 20 * page
    for p in range(len(raw) // page // 2, len(raw) // page // 2 + 3):  # trash three pages in the middle
        raw[p * page : p * page + page] = b"\xa5" * page
    path.write_bytes(bytes(raw))
    with pytest.raises(EmbeddingCacheError, match="damaged") as info, EmbeddingCache(path) as cache:
        list(cache.vectors(MODEL, None, keys, dim=dim))
    assert "salvage" in str(info.value)
    report = EmbeddingCache.salvage(path)
    assert Path(report.moved_to).exists()
    assert 0 < report.vectors < n
    with EmbeddingCache(path) as cache:
        got = dict(cache.vectors(MODEL, None, keys, dim=dim))
        assert len(got) == report.vectors
        for i, k in enumerate(keys):
            if k in got:
                np.testing.assert_array_equal(got[k], vecs[i])
        assert [b for b, _, _ in cache.journal_pending(MODEL, None)] == (["batch_1"] if report.journal else [])


def test_salvage_of_a_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingCacheError, match="no embedding cache"):
        EmbeddingCache.salvage(tmp_path / "nope.sqlite")


def test_a_0_1_cache_is_migrated_in_place(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from finetune_embed.testing import FakeOpenAI

    path = tmp_path / "old.sqlite"
    path.write_bytes(OLD_FILE.read_bytes())
    texts = [f"cached review number {i}" for i in range(12)]
    truth = FakeOpenAI().embeddings(texts, dimensions=8)
    keys = [text_key(t) for t in texts]
    # flip a bit in one stored vector first: a 0.1 row has no checksum, but a NaN is still caught
    conn = sqlite3.connect(path)
    (blob,) = conn.execute("SELECT vector FROM embeddings WHERE key = ?", (keys[3],)).fetchone()
    nan_row = bytearray(blob)
    nan_row[0:4] = np.array([np.nan], "<f4").tobytes()
    conn.execute("UPDATE embeddings SET vector = ? WHERE key = ?", (bytes(nan_row), keys[3]))
    conn.commit()
    conn.close()
    with caplog.at_level("INFO", logger="finetune_embed.embeddings"), EmbeddingCache(path) as cache:
        got = dict(cache.vectors(MODEL, 8, keys, dim=8))
        assert [b for b, _, _ in cache.journal_pending(MODEL, 8)] == ["batch_0001"]
    assert any("migrated in place (m002_row_checksums, m003_servers_apart)" in r.getMessage() for r in caplog.records)
    assert set(got) == set(keys) - {keys[3]}
    for i, k in enumerate(keys):
        if k in got:
            np.testing.assert_array_equal(got[k], truth[i])
    conn = sqlite3.connect(path)
    names = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    rows = conn.execute("SELECT model, dimensions, key, dim, vector, checksum FROM embeddings").fetchall()
    assert len(rows) == 11
    # every row read since has its checksum now: a later bit flip is caught
    assert all(c == row_checksum(m, d, k, n, v) for m, d, k, n, v, c in rows)
    conn.close()


def test_migrations_run_once_and_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    EmbeddingCache(path).close()
    EmbeddingCache(path).close()  # nothing left to apply
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)
    conn.execute("INSERT INTO migrations VALUES ('m999_from_the_future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(EmbeddingCacheError, match="newer finetune_embed"):
        EmbeddingCache(path)


def test_a_folder_as_cache_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        EmbeddingCache(tmp_path)


def test_the_embedder_refetches_damaged_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from finetune_embed.embeddings import Embedder
    from finetune_embed.testing import FakeOpenAI

    fake = FakeOpenAI()
    path = tmp_path / "c.sqlite"
    texts = [f"review {i}" for i in range(10)]
    Embedder(fake.client(), cache=path, dimensions=8).embed(texts)
    key = text_key(texts[4])
    conn = sqlite3.connect(path)
    (blob,) = conn.execute("SELECT vector FROM embeddings WHERE key = ?", (key,)).fetchone()
    flipped = bytearray(blob)
    flipped[9] ^= 0x01
    conn.execute("UPDATE embeddings SET vector = ? WHERE key = ?", (bytes(flipped), key))
    conn.commit()
    conn.close()
    with caplog.at_level("WARNING", logger="finetune_embed.embeddings"):
        result = Embedder(fake.client(), cache=path, dimensions=8).embed_with_info(texts)
    np.testing.assert_array_equal(result.vectors, fake.embeddings(texts, dimensions=8))
    assert result.stats.cached == 9
    assert fake.ledger.billed_texts[texts[4]] == 2
    assert any(str(path) in r.getMessage() for r in caplog.records)


def test_one_except_clause_covers_every_cache_file(tmp_path: Path) -> None:
    import pickle

    from finetune_embed import CacheFileError, EmbeddingError

    path = tmp_path / "not-a-cache.sqlite"
    path.write_bytes(b"this is not an SQLite database, not even close" * 100)
    with pytest.raises(CacheFileError) as info:  # the chat cache's error catches the embedding cache's too
        EmbeddingCache(path)
    assert isinstance(info.value, EmbeddingCacheError)
    assert isinstance(info.value, EmbeddingError)
    assert info.value.path == str(path)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is EmbeddingCacheError
    assert again.path == str(path)
