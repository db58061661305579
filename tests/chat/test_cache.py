"""The chat response cache: checksums per row, typed errors for damaged files, atomic writes, never a wrong answer."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from finetune_embed import CacheFileError, Client
from finetune_embed.chat import ChatCache, ChatCompletions
from finetune_embed.testing import FakeOpenAI

USER = [{"role": "user", "content": "Where is my parcel?"}]


def _fill(path: Path, fake: FakeOpenAI, n: int = 3) -> list[str | None]:
    with ChatCompletions(fake.client(), cache=path) as chat:
        return [chat.create("gpt-4o-mini", [{"role": "user", "content": f"q{i}"}]).content for i in range(n)]


def test_a_row_that_fails_its_checksum_is_dropped_and_fetched_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeOpenAI()
    path = tmp_path / "chat.sqlite"
    answers = _fill(path, fake)
    conn = sqlite3.connect(path)
    body = conn.execute("SELECT body FROM chat_responses LIMIT 1").fetchone()[0]
    tampered = body.replace(b"general", b"GENERAL")
    conn.execute("UPDATE chat_responses SET body = ? WHERE body = ?", (tampered, body))
    conn.execute("UPDATE chat_responses SET latency = latency + 1 WHERE body != ?", (tampered,))
    conn.commit()
    conn.close()
    with (
        caplog.at_level(logging.WARNING, logger="finetune_embed.chat"),
        ChatCompletions(fake.client(), cache=path) as chat,
    ):
        again = [chat.create("gpt-4o-mini", [{"role": "user", "content": f"q{i}"}]) for i in range(3)]
    assert [r.content for r in again] == answers  # the right answers, never the tampered ones
    assert not any(r.cached for r in again)  # every damaged row was fetched again
    assert fake.ledger.chat_requests == 6
    assert str(path) in caplog.text
    assert "damaged" in caplog.text


def test_a_file_that_is_not_a_database_is_a_typed_error(tmp_path: Path, fake: FakeOpenAI) -> None:
    path = tmp_path / "chat.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(CacheFileError, match="Move it") as info:
        ChatCache(path)
    assert info.value.path == str(path)
    chat = ChatCompletions(fake.client(), cache=path)
    with pytest.raises(CacheFileError):
        chat.create("gpt-4o-mini", USER)
    assert fake.ledger.chat_requests == 0  # nothing is sent when the cache cannot be trusted


def test_flipped_bits_anywhere_never_give_a_wrong_answer(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    clean = tmp_path / "clean.sqlite"
    answers = _fill(clean, fake, n=4)
    with ChatCache(clean) as cache:  # checkpoint the WAL into the main file
        assert len(cache) == 4
    data = clean.read_bytes()
    outcomes = {"typed_error": 0, "ok": 0}
    for offset in range(0, len(data), max(1, len(data) // 300)):
        broken = bytearray(data)
        broken[offset] ^= 0x5A
        path = tmp_path / f"broken-{offset}.sqlite"
        path.write_bytes(bytes(broken))
        try:
            with ChatCompletions(fake.client(), cache=path) as chat:
                got = [chat.create("gpt-4o-mini", [{"role": "user", "content": f"q{i}"}]).content for i in range(4)]
        except CacheFileError:
            outcomes["typed_error"] += 1
            continue
        assert got == answers, offset
        outcomes["ok"] += 1
    assert outcomes["ok"] > 0, outcomes
    assert outcomes["typed_error"] > 0, outcomes


def test_a_newer_schema_is_refused_with_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite"
    ChatCache(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE chat_meta SET value = '99' WHERE name = 'schema'")
    conn.commit()
    conn.close()
    with pytest.raises(CacheFileError, match="schema version"):
        ChatCache(path)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CacheFileError, match="not a file"):
        ChatCache(tmp_path)


def test_each_answer_is_committed_the_moment_it_arrives(tmp_path: Path, client: Client) -> None:
    path = tmp_path / "chat.sqlite"
    chat = ChatCompletions(client, cache=path)
    chat.create("gpt-4o-mini", USER)
    other = sqlite3.connect(path)  # another process's view, while the first connection is still open
    assert other.execute("SELECT COUNT(*) FROM chat_responses").fetchone()[0] == 1
    other.close()
    chat.close()


def test_clear_and_stats(tmp_path: Path, fake: FakeOpenAI) -> None:
    path = tmp_path / "chat.sqlite"
    _fill(path, fake, n=2)
    with ChatCache(path) as cache:
        assert cache.stats() == {"gpt-4o-mini": 2}
        assert cache.clear("gpt-4.1") == 0
        assert cache.clear() == 2
        assert len(cache) == 0


def test_the_cache_stores_no_prompt_text(tmp_path: Path, fake: FakeOpenAI) -> None:
    path = tmp_path / "chat.sqlite"
    with ChatCompletions(fake.client(), cache=path) as chat:
        chat.create("gpt-4o-mini", [{"role": "system", "content": "SECRET-SYSTEM-PROMPT"}, *USER])
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("chat.sqlite*"))
    assert b"Where is my parcel?" in stored  # the answer quotes the question: answers are stored...
    assert b"SECRET-SYSTEM-PROMPT" not in stored  # ...but requests only as their hash
