"""Validation counts tokens through tiktoken's buffer output (no list of Python ints per text, #16): the counts
must be exactly ``encode_ordinary``'s, and a tiktoken without that output (or with another one) is counted the
plain way."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from finetune_embed.dataset import _tokens
from finetune_embed.dataset._tokens import TokenCounter
from finetune_embed.tokenizer import get_encoding

TEXTS = [
    "",
    " ",
    "hello world",
    "Héllo wörld — ça va? 日本語のテキスト、句読点。 한국어 😀👍🏽",
    "special tokens are ordinary text here: <|endoftext|> <|im_start|>user<|im_end|>",
    '{"location": "Paris", "unit": "celsius", "days": [1, 2, 3]}',
    "\t\n  trailing spaces   \n\n",
    "word " * 2000,
    "x\ud800y",  # a lone surrogate: UnicodeEncodeError from the buffer too, then tiktoken's replacement
]


def _cookbook_texts(folder: Path) -> list[str]:
    with (folder / "fine_food_reviews_1k.csv").open(encoding="utf-8") as fh:
        return [row["Text"] for row in csv.DictReader(fh)][:300]


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
def test_buffer_counts_equal_encode_ordinary(encoding: str, cookbook: Path) -> None:
    counter = TokenCounter(encoding)
    assert counter._buffer is not None  # this tiktoken has the buffer output: the fast path is the one tested
    enc = get_encoding(encoding)
    texts = TEXTS + _cookbook_texts(cookbook)
    expected = []
    for text in texts:
        try:
            expected.append(len(enc.encode_ordinary(text)))
        except UnicodeEncodeError:
            expected.append(len(enc.encode_ordinary(text.encode("utf-8", "replace").decode("utf-8"))))
    assert [counter.count(t) for t in texts] == expected


def test_without_the_buffer_output_counting_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = TokenCounter("o200k_base")

    def mismatching(enc: Any) -> Any:
        return None

    monkeypatch.setattr(_tokens, "_buffer_encoder", mismatching)
    plain = TokenCounter("o200k_base")
    assert plain._buffer is None
    assert [plain.count(t) for t in TEXTS] == [fast.count(t) for t in TEXTS]


def test_a_buffer_that_counts_differently_is_not_used() -> None:
    class Core:
        def encode_to_tiktoken_buffer(self, text: str, allowed: frozenset[str]) -> bytes:
            return b"\0" * 4 * (len(text) + 1)  # one token too many

    class Enc:
        _core_bpe = Core()

        def encode_ordinary(self, text: str) -> list[int]:
            return [0] * len(text)

    class Broken:
        class _core_bpe:  # the attribute name tiktoken uses
            @staticmethod
            def encode_to_tiktoken_buffer(text: str) -> bytes:  # another signature
                return b""

    assert _tokens._buffer_encoder(Enc()) is None
    assert _tokens._buffer_encoder(Broken()) is None
    assert _tokens._buffer_encoder(object()) is None
