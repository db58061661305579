"""First run: the BPE files (where from, prefetching them for offline use) and FakeOpenAI's tokenizer check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_embed._bpe_files import cache_file_name, download_encodings
from finetune_embed._exceptions import InvalidArgumentError, TokenizerUnavailableError

from ._run import invoke


def test_cache_file_names_are_tiktokens() -> None:
    """The names are the SHA-1 of the official URL, which is what tiktoken looks up."""
    assert cache_file_name("o200k_base") == "fb374d419588a4632f3f557e76b4b70aebbca790"
    assert cache_file_name("o200k_harmony") == cache_file_name("o200k_base")
    assert cache_file_name("cl100k_base") == "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"


def test_cli_download_fills_a_folder_tiktoken_then_reads_offline(mirror: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = mirror
    target = tmp_path / "bpe"
    result = invoke(["tokenizer", "download", "--dir", str(target), "--source", url])
    assert result.exit_code == 0, result.output
    assert "o200k_base: downloaded" in result.stdout
    assert "cl100k_base: downloaded" in result.stdout
    assert f"export TIKTOKEN_CACHE_DIR={target.resolve()}" in result.stdout
    names = sorted(p.name for p in target.iterdir())
    assert names == sorted([cache_file_name("o200k_base"), cache_file_name("cl100k_base")])
    # a fresh interpreter with the network cut off and only this folder loads both encodings
    code = (
        "import tiktoken.load\n"
        "def offline(*a, **k): raise ConnectionError('offline')\n"
        "tiktoken.load.read_file = offline\n"
        "from finetune_embed.tokenizer import Tokenizer\n"
        "print(Tokenizer('o200k_base').encode('hello world'), Tokenizer('cl100k_base').encode('hello world'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TIKTOKEN_CACHE_DIR": str(target)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "[24912, 2375] [15339, 1917]", out.stderr
    again = invoke(["tokenizer", "download", "--dir", str(target), "--source", url, "--json"])
    assert again.exit_code == 0, again.output
    assert '"status": "present"' in again.stdout
    assert '"downloaded"' not in again.stdout


def test_download_replaces_a_damaged_file_and_refuses_a_wrong_one(mirror: tuple[str, Path], tmp_path: Path) -> None:
    url, folder = mirror
    target = tmp_path / "bpe"
    target.mkdir()
    damaged = target / cache_file_name("p50k_base")
    damaged.write_bytes(b"not the ranks")
    [done] = download_encodings(target, ["p50k_edit"], source=url)
    assert done.status == "downloaded"
    assert damaged.read_bytes() == (folder / "p50k_base.tiktoken").read_bytes()
    (folder / "cl100k_base.tiktoken").write_bytes(b"tampered")
    result = invoke(["tokenizer", "download", "--dir", str(target), "--source", url, "-e", "cl100k_base"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "SHA-256" in result.stderr
    assert "Traceback" not in result.output
    assert not (target / cache_file_name("cl100k_base")).exists()


def test_download_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="gpt2"):
        download_encodings(tmp_path, ["gpt2"])
    with pytest.raises(TokenizerUnavailableError, match="Could not download"):
        download_encodings(tmp_path, ["cl100k_base"], source="http://127.0.0.1:9/", timeout=5)
    assert list(tmp_path.iterdir()) == []
    bad = invoke(["tokenizer", "download", "--dir", str(tmp_path), "-e", "nope"])
    assert bad.exit_code == 1
    assert "Unknown tiktoken encoding 'nope'" in bad.stderr


def test_fake_fails_at_once_without_the_bpe_files(tmp_path: Path) -> None:
    """Offline with an empty cache, FakeOpenAI() raises the tokenizer's typed error instead of answering 500s."""
    code = (
        "import tiktoken.load\n"
        "def offline(*a, **k): raise ConnectionError('offline')\n"
        "tiktoken.load.read_file = offline\n"
        "from finetune_embed import TokenizerUnavailableError\n"
        "from finetune_embed.testing import FakeOpenAI\n"
        "try:\n"
        "    FakeOpenAI()\n"
        "except TokenizerUnavailableError as e:\n"
        "    print('RAISED', e.encoding)\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.startswith("RAISED o200k_base"), out.stdout + out.stderr
    assert "TIKTOKEN_CACHE_DIR" in out.stdout
