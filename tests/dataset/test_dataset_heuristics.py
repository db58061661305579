"""The caches and cheap prefilters on the validator's hot path never change its answers."""

from __future__ import annotations

import itertools
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from finetune_embed.dataset._checks import _REFUSAL, RowChecker, _looks_like_refusal
from finetune_embed.dataset._profile import resolve
from finetune_embed.dataset._report import IssueCollector

_OPENINGS = ["I'm sorry, but I ", "I am afraid but I ", "I'M SORRY but I "]
_MODALS = ["can't", "cannot", "cannot", "won't", "will not", "am unable", "'m unable"]
_DIRECT = [
    "can't",
    "cannot",
    "won't",
    "will not",
    "am unable to",
    "'m unable to",
    "am not able to",
    "'m not able to",
]
_VERBS = ["help", "assist", "provide", "answer", "comply", "do that", "fulfil", "share", "discuss", "support"]


def _regex_only(text: str) -> bool:
    return _REFUSAL.search(text[:200].lower()) is not None


def test_every_refusal_form_passes_the_prefilter() -> None:
    phrases = [o + m + " do it." for o, m in itertools.product(_OPENINGS, _MODALS)]
    phrases += [f"Well, I {d} {v} with this." for d, v in itertools.product(_DIRECT, _VERBS)]
    phrases += ["As an AI, I have no opinion.", "as an ai language model"]
    for phrase in phrases:
        for text in (phrase, phrase.upper(), "Hmm. " + phrase):
            assert _regex_only(text), text
            assert _looks_like_refusal(text), text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["I", "i", "'m", " am", " can", "'t", " won't", " sorry", " help", ", but ", "as an ai", " "])
        | st.text(max_size=8),
        max_size=30,
    ).map("".join)
)
def test_prefilter_agrees_with_the_regex(text: str) -> None:
    assert _looks_like_refusal(text) == _regex_only(text)


def _checker() -> RowChecker:
    profile = resolve("gpt-4o-mini", None, counting="model", want_stats=True).profile
    return RowChecker(profile, IssueCollector(100), "chat")


def test_remembered_tool_definitions_count_like_fresh_ones() -> None:
    tools = [
        [{"type": "function", "function": {"name": f"f{k}", "parameters": {"type": "object", "x": "y" * k}}}]
        for k in range(12)
    ]
    checker = _checker()
    assert checker.counter is not None
    fresh = [checker.counter.count(json.dumps(t, ensure_ascii=False, separators=(",", ":"))) for t in tools]
    order = [0, 1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 11, 5, 5, 1]  # more distinct lists than are remembered
    assert [checker._tools_tokens(json.loads(json.dumps(tools[k]))) for k in order] == [fresh[k] for k in order]


def test_token_counter_cache_across_generations() -> None:
    from finetune_embed.dataset._tokens import TokenCounter
    from finetune_embed.tokenizer import get_encoding

    encode = get_encoding("o200k_base").encode_ordinary
    rng = random.Random(5)
    words = ["alpha", "beta", " gamma", "délta", "\n\n", "<|endoftext|>", "42", "🙂"]
    texts = ["".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(60)]
    counter = TokenCounter("o200k_base", cache_chars=200)  # a new generation every few texts
    for text in [*texts, *texts[::-1], *rng.choices(texts, k=200)]:
        assert counter.count(text) == len(encode(text))
    assert 60 <= counter.misses < 320  # repeats are found in the young or the old generation
    assert counter.count("lone \ud800 surrogate") == len(encode("lone \ud800 surrogate"))


def test_token_counter_matches_tiktoken_including_lone_surrogates() -> None:
    """count() calls tiktoken's Rust encoder directly; the result is tiktoken's own, lone surrogates included."""
    from finetune_embed.dataset._tokens import TokenCounter
    from finetune_embed.tokenizer import get_encoding

    enc = get_encoding("o200k_base")
    counter = TokenCounter("o200k_base")
    for text in ["Hello, world!", "<|endoftext|> stays text", "lone \ud800 surrogate", "x" * 5000, ""]:
        assert counter.count(text) == len(enc.encode_ordinary(text)), text
