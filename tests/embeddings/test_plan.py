"""Planning: empty and long-input policies, de-duplication and cutting texts by tokens."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finetune_embed import EmptyInputError, InputTooLongError, InvalidInputError
from finetune_embed.embeddings import split_by_tokens
from finetune_embed.embeddings._plan import plan_inputs
from finetune_embed.tokenizer import Tokenizer

TOK = Tokenizer("cl100k_base")


def plan(texts: list[str], **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("max_input_tokens", 8191)
    return plan_inputs(texts, tokenizer=TOK, **kw)  # type: ignore[arg-type]


def test_duplicates_share_one_unit() -> None:
    p = plan(["a", "b", "a", "a"])
    assert p.unit_texts == ["a", "b"]
    assert p.input_unit.tolist() == [0, 1, 0, 0]


def test_empty_inputs_error_names_every_index() -> None:
    with pytest.raises(EmptyInputError) as info:
        plan(["ok", "", "  \n\t", "fine", " "])
    assert info.value.index == 1
    assert "index 1, 2, 4" in str(info.value)
    assert "empty_inputs='skip'" in str(info.value)


@pytest.mark.parametrize("policy", ["zero", "nan", "skip"])
def test_empty_inputs_are_never_units(policy: str) -> None:
    p = plan(["ok", "", "   "], empty_inputs=policy)
    assert p.unit_texts == ["ok"]
    assert p.empty.tolist() == [False, True, True]


def test_non_string_inputs_are_refused_with_a_hint() -> None:
    with pytest.raises(InvalidInputError, match=r"input 1 is float .*fillna") as info:
        plan(["a", float("nan")])  # type: ignore[list-item]
    assert info.value.index == 1
    assert isinstance(info.value, TypeError)  # still caught by `except TypeError`
    with pytest.raises(InvalidInputError, match="input 0 is NoneType"):
        plan([None])  # type: ignore[list-item]


def test_a_lone_surrogate_is_a_typed_error_naming_the_input() -> None:
    with pytest.raises(InvalidInputError, match=r"input 2 holds a lone surrogate .* at character 3") as info:
        plan(["fine", "caf\u00e9", "abc\ud800def"])
    assert info.value.index == 2
    assert "encode('utf-8', 'replace')" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_long_inputs_error_by_default() -> None:
    long = "word " * 9000
    with pytest.raises(InputTooLongError) as info:
        plan(["short", long, long], max_input_tokens=8191)
    assert info.value.index == 1
    assert info.value.tokens == TOK.count(long)
    assert info.value.limit == 8191
    assert "1 more input(s) too: index 2" in str(info.value)


def test_truncate_keeps_the_first_tokens() -> None:
    long = "word " * 9000
    p = plan([long], long_inputs="truncate")
    assert p.truncated == [0]
    (text,) = p.unit_texts
    assert long.startswith(text)
    assert TOK.count(text) <= 8191
    assert p.unit_tokens == [TOK.count(text)]


def test_chunk_pieces_cover_the_text() -> None:
    long = "\n".join(f"line {i} " + "abc " * 30 for i in range(400))
    p = plan([long, "x"], long_inputs="chunk", max_input_tokens=1000)
    refs = p.multi[0]
    assert len(refs) > 1
    assert "".join(long[r.start : r.end] for r in refs) == long
    for r in refs:
        assert r.tokens == TOK.count(long[r.start : r.end]) <= 1000
        assert p.unit_texts[r.unit] == long[r.start : r.end]
    # cuts prefer line breaks
    assert all(long[r.end - 1] == "\n" for r in refs[:-1])
    assert p.input_unit.tolist() == [-1, p.unit_texts.index("x")]


def test_a_piece_equal_to_another_input_shares_its_unit() -> None:
    piece = "alpha " * 5
    long = piece * 4
    p = plan([piece.strip() + " ", long], long_inputs="chunk", max_input_tokens=5)
    assert len(set(p.unit_texts)) == len(p.unit_texts)


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=600
    ),
    limit=st.integers(min_value=2, max_value=40),
)
def test_split_by_tokens_property(text: str, limit: int) -> None:
    spans = split_by_tokens(text, TOK, limit)
    assert spans[0][0] == 0
    assert spans[-1][1] == len(text)
    for (_, e0, _), (s1, _, _) in itertools.pairwise(spans):
        assert e0 == s1
    for s, e, c in spans:
        assert e > s
        assert c == TOK.count(text[s:e])
        # a single character may encode to more tokens than a tiny limit allows; otherwise within the limit
        assert c <= limit or e - s == 1


def test_plan_token_counts_are_exact() -> None:
    texts = ["hello world", "another text", "hello world"]
    p = plan(texts)
    assert p.unit_tokens == [TOK.count("hello world"), TOK.count("another text")]
    assert isinstance(p.empty, np.ndarray)


def test_lazy_plan_still_finds_every_long_input_up_front() -> None:
    long = "word " * 9000
    short_but_wide = "é" * 3000  # 6000 UTF-8 bytes: cannot be over 8191 tokens, not counted
    p = plan(["a b", long, short_but_wide], long_inputs="chunk", count_all=False)
    assert p.long == [1]
    assert p.unit_tokens[p.unit_texts.index("a b")] == -1  # counted later, while sending
    assert all(r.tokens > 0 for r in p.multi[1])
    with pytest.raises(InputTooLongError):
        plan(["a b", long], count_all=False)
