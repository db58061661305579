"""Tokenizer: the right encoding per model, cached, and a clear error offline."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from finetune_embed import Tokenizer
from finetune_embed.tokenizer import encoding_name_for_model, get_encoding


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4o", "o200k_base"),
        ("gpt-4.1-nano-2025-04-14", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("ft:gpt-4o-mini-2024-07-18:org:suffix:abc123", "o200k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("text-embedding-3-large", "cl100k_base"),
        ("text-embedding-ada-002", "cl100k_base"),
        ("davinci-002", "cl100k_base"),
        ("some-future-model", "o200k_base"),
    ],
)
def test_encoding_per_model(model: str, encoding: str) -> None:
    """Each family gets its own encoding (never cl100k for o200k models)."""
    assert encoding_name_for_model(model) == encoding


def test_known_vectors() -> None:
    """'hello world' tokenises as tiktoken documents for both encodings."""
    assert Tokenizer("o200k_base").encode("hello world") == [24912, 2375]
    assert Tokenizer("cl100k_base").encode("hello world") == [15339, 1917]
    tok = Tokenizer.for_model("text-embedding-3-small")
    assert tok.count_batch(["hello world", "", "a b c"]) == [2, 0, 3]
    assert tok.decode(tok.encode("round trip")) == "round trip"


def test_special_tokens_are_plain_text() -> None:
    """Special-token text is counted as text, never raising, and can be detected."""
    tok = Tokenizer("cl100k_base")
    assert tok.count("<|endoftext|>") > 1
    assert tok.special_tokens_in("x <|endoftext|> y") == ["<|endoftext|>"]


def test_encodings_are_loaded_once() -> None:
    """get_encoding caches per process."""
    assert get_encoding("cl100k_base") is get_encoding("cl100k_base")


def test_offline_with_empty_cache_gives_an_actionable_error(tmp_path: os.PathLike[str]) -> None:
    """With an empty TIKTOKEN_CACHE_DIR and no network, the error names the encoding, the file and the variable."""
    code = (
        "from finetune_embed import Tokenizer, TokenizerUnavailableError\n"
        "try:\n"
        "    Tokenizer.for_model('gpt-4o-mini').count('x')\n"
        "except TokenizerUnavailableError as e:\n"
        "    print('ENCODING=' + e.encoding)\n"
        "    print(e)\n"
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "ENCODING=o200k_base" in out.stdout, out.stderr
    assert "o200k_base.tiktoken" in out.stdout
    assert "fb374d419588a4632f3f557e76b4b70aebbca790" in out.stdout  # the cache file tiktoken looks for
    assert "TIKTOKEN_CACHE_DIR" in out.stdout
    assert "Traceback" not in out.stderr
