"""Bounded reading: devices and FIFOs are refused before anything is read, a line never costs more memory than
the limit, and csv's process-wide field limit is always restored."""

from __future__ import annotations

import csv
import io
import os
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from finetune_embed import DatasetFormatError, FileAccessError, LineTooLongError
from finetune_embed._lines import (
    MAX_LINE_BYTES,
    LongLine,
    bounded_text_lines,
    csv_field_limit,
    iter_lines,
    open_input,
    read_lines,
)

DEVICES = [d for d in ("/dev/zero", "/dev/urandom", "/dev/null") if os.path.exists(d)]


def test_the_default_limit_is_the_files_api_limit() -> None:
    from finetune_embed.dataset._stream import FILES_API_MAX_BYTES

    assert MAX_LINE_BYTES == FILES_API_MAX_BYTES == 512 * 1024 * 1024


@pytest.mark.parametrize("device", DEVICES)
def test_devices_are_refused_before_reading(device: str) -> None:
    started = time.monotonic()
    with pytest.raises(FileAccessError, match="character device, not a regular file") as info:
        open_input(device)
    assert time.monotonic() - started < 1
    assert info.value.path == device
    assert info.value.errno is None
    assert isinstance(info.value, OSError)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(FileAccessError, match="FIFO"):
        open_input(fifo)  # no writer: a plain open() would block forever
    assert time.monotonic() - started < 1


def test_a_fifo_is_read_when_the_caller_asks(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:
        deadline = time.monotonic() + 10
        while True:  # wait for the reader without ever blocking forever (ENXIO until it has opened)
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.01)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as w:
            w.write(b'{"a": 1}\n' + b"x" * 100 + b"\n{}\n")

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with open_input(fifo, allow_special=True) as f:
            got = list(iter_lines(f, max_line_bytes=50))
    finally:
        writer.join()
    assert got[0] == b'{"a": 1}\n'
    assert isinstance(got[1], LongLine)
    assert got[1].length == 101
    assert got[2] == b"{}\n"


def test_missing_files_and_folders_are_typed(tmp_path: Path) -> None:
    with pytest.raises(FileAccessError, match="No such file") as info:
        open_input(tmp_path / "nope")
    assert info.value.errno == 2
    with pytest.raises(FileAccessError, match="is a folder"):
        open_input(tmp_path)


def test_long_lines_are_skipped_in_bounded_memory(tmp_path: Path) -> None:
    """Lines over the limit are stood for by LongLine (length, head) and read past in 1 MiB chunks: memory stays
    a few MiB (the read buffers) for lines of 20 MB; the other lines come through unchanged."""
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"first\n" + b"A" * 20_000_000 + b"\nsecond\n" + b"B" * 3_000_000 + b"\n\nlast")
    tracemalloc.start()
    try:
        with open_input(path) as f:
            got = [x if isinstance(x, bytes) else (x.length, x.head[:3]) for x in iter_lines(f, max_line_bytes=1000)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == [b"first\n", (20_000_001, b"AAA"), b"second\n", (3_000_001, b"BBB"), b"\n", b"last"]
    assert peak < 6_000_000, f"{peak:,} bytes traced for a line of 20 MB"


def test_small_regular_files_are_iterated_plainly(tmp_path: Path) -> None:
    """A regular file no larger than the limit cannot hold a longer line: the same lines, by plain iteration."""
    path = tmp_path / "x.jsonl"
    data = b"a\r\n\nbb\n" + b"c" * 50
    path.write_bytes(data)
    with open_input(path) as f:
        assert list(iter_lines(f, max_line_bytes=len(data))) == [b"a\r\n", b"\n", b"bb\n", b"c" * 50]
    with open_input(path) as f:
        assert list(iter_lines(f, max_line_bytes=10)) == [b"a\r\n", b"\n", b"bb\n", LongLine(50, b"c" * 11)]


def test_a_line_of_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(b"x" * 100 + b"\n" + b"y" * 101 + b"\n" + b"z" * 100)
    with open_input(path) as f:
        got = list(iter_lines(f, max_line_bytes=100))
    assert got[0] == b"x" * 100 + b"\n"
    assert got[1] == LongLine(102, b"y" * 101)
    assert got[2] == b"z" * 100


def test_read_lines_stops_at_a_long_line_with_its_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"{}\n{}\n" + b"\x00" * 5000 + b"\n{}\n")
    with pytest.raises(LineTooLongError) as info:
        list(read_lines(path, max_line_bytes=100))
    exc = info.value
    assert (exc.path, exc.line, exc.limit, exc.length) == (str(path), 3, 100, 5001)
    assert isinstance(exc, DatasetFormatError)
    assert f"{path}:3:" in str(exc)
    assert "longer than 100 bytes" in str(exc)


def test_bounded_text_lines_for_csv(tmp_path: Path) -> None:
    text = io.StringIO("a,b\n1,2\n" + "x" * 500 + ",3\n")
    reader = csv.reader(bounded_text_lines(text, path="t.csv", max_line_chars=100))
    assert next(reader) == ["a", "b"]
    assert next(reader) == ["1", "2"]
    with pytest.raises(LineTooLongError, match=r"t\.csv:3"):
        next(reader)


def test_csv_field_limit_is_restored_even_on_errors() -> None:
    before = csv.field_size_limit()
    with csv_field_limit(10**9):
        assert csv.field_size_limit() == 10**9
        with csv_field_limit(10):  # nested: never lowered
            assert csv.field_size_limit() == 10**9
        assert csv.field_size_limit() == 10**9
    assert csv.field_size_limit() == before
    with pytest.raises(RuntimeError), csv_field_limit(10**9):
        raise RuntimeError("boom")
    assert csv.field_size_limit() == before


def test_no_reader_changes_csvs_process_wide_limit(tmp_path: Path) -> None:
    """Dataset.from_csv, EmbeddingIndex.from_csv and the CLI's CSV reader all parse big cells, and leave csv's
    limit as they found it."""
    from finetune_embed import Dataset
    from finetune_embed.cli._embed import read_texts
    from finetune_embed.index import EmbeddingIndex

    before = csv.field_size_limit()
    big = "word " * 40_000  # 200 kB: over csv's default limit of 128 k characters
    src = tmp_path / "d.csv"
    src.write_text(f'prompt,completion\n"{big}",ok\n', encoding="utf-8")
    assert len(Dataset.from_csv(src)) == 1
    assert csv.field_size_limit() == before
    emb = tmp_path / "e.csv"
    emb.write_text(f'id,embedding,text\na,"[1.0, 0.5]","{big}"\n', encoding="utf-8")
    assert len(EmbeddingIndex.from_csv(emb, id_column="id")) == 1
    assert csv.field_size_limit() == before
    assert read_texts(emb, column="text").texts == [big]
    assert csv.field_size_limit() == before


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize(
    "args",
    [
        ["embed", "/dev/zero", "--estimate"],
        ["embed", "{tmp}/zero.jsonl", "--field", "text", "--estimate"],
        ["embed", "{tmp}/zero.csv", "--column", "text", "--estimate"],
        ["index", "build", "{tmp}/zero.csv", "-o", "{tmp}/idx"],
        ["dataset", "validate", "/dev/zero"],
        ["dataset", "fix", "/dev/zero", "-o", "{tmp}/f.jsonl", "--rejected", "{tmp}/r.jsonl"],
    ],
    ids=["embed-txt", "embed-jsonl", "embed-csv", "index-build", "validate", "fix"],
)
def test_the_cli_refuses_a_device_at_once(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/dev/zero (or a symlink to it with the suffix a reader expects) ends at once: exit 1, one line, no output."""
    from click.testing import CliRunner

    from finetune_embed.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    links = {tmp_path / "zero.jsonl", tmp_path / "zero.csv"}
    for link in links:
        link.symlink_to("/dev/zero")
    started = time.monotonic()
    result = CliRunner().invoke(main, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert time.monotonic() - started < 10
    assert result.exit_code == 1, result.output
    assert "not a regular file" in result.output
    assert "Traceback" not in result.output
    assert set(tmp_path.iterdir()) == links  # nothing written
