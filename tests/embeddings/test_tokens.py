"""``tokenizer=``: counting tokens for models the catalog does not know (#12)."""

from __future__ import annotations

import itertools

import pytest

from finetune_embed import ConfigError
from finetune_embed.embeddings import Embedder
from finetune_embed.embeddings._tokens import CallableCounter, CharEstimate, TiktokenCounter, counter_for
from finetune_embed.testing import FakeOpenAI


def words_counter(text: str) -> list[str]:
    return text.split()  # a "tokenizer" returning ids (here: words) - one token per word


def test_the_default_for_an_unknown_model_is_a_character_estimate() -> None:
    emb = Embedder(FakeOpenAI(any_model=64).client(), model="my-model", cache=False)
    assert isinstance(emb.tokenizer, CharEstimate)
    assert not emb.tokenizer.exact
    assert emb.tokenizer.count_batch(["abcdef", "é" * 3, ""]) == [2, 2, 0]  # 1 token per 3 bytes of UTF-8
    known = Embedder(FakeOpenAI().client(), cache=False)
    assert isinstance(known.tokenizer, TiktokenCounter)
    assert known.tokenizer.name == "cl100k_base"


@pytest.mark.parametrize(
    ("setting", "kind"),
    [
        ("o200k_base", TiktokenCounter),
        ("chars", CharEstimate),
        (words_counter, CallableCounter),
        (len, CallableCounter),
    ],
)
def test_tokenizer_settings(setting: object, kind: type) -> None:
    counter = counter_for(setting, encoding=None)  # type: ignore[arg-type]
    assert isinstance(counter, kind)
    assert counter.count_batch(["one two three"])[0] > 0


def test_bad_tokenizer_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not a tiktoken encoding"):
        counter_for("bert-base-uncased", encoding=None)
    with pytest.raises(ConfigError, match="must be a tiktoken encoding name"):
        counter_for(42, encoding=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="returned 'x'"):
        CallableCounter(lambda s: "x").count_one("a")


@pytest.mark.parametrize("counter", [CallableCounter(words_counter), CharEstimate()])
def test_splitting_by_any_counter_covers_the_text_within_the_limit(counter: object) -> None:
    text = "\n".join(f"line {i}: " + "word " * 17 for i in range(40)) + " último café"
    pieces = counter.split(text, 50)  # type: ignore[attr-defined]
    assert pieces[0][0] == 0
    assert pieces[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert all(0 < tokens <= 50 for _, _, tokens in pieces)
    assert all(counter.count_one(text[s:e]) == tokens for s, e, tokens in pieces)  # type: ignore[attr-defined]


def test_a_callable_tokenizer_drives_long_input_chunking() -> None:
    fake = FakeOpenAI(any_model=32)
    long = " ".join(f"w{i}" for i in range(250))
    emb = Embedder(fake.client(), model="local-model", tokenizer=words_counter, max_input_tokens=100,
                   long_inputs="pieces", cache=False)
    result = emb.embed_with_info(["short", long])
    assert result.pieces is not None
    _, spans = result.pieces.of(1)
    assert len(spans) == 3
    assert all(len(long[s:e].split()) <= 100 for s, e in spans)
