"""Each scorer on hand-made answers: what matches, what does not, what does not apply."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from finetune_embed import AsyncEmbedder, ConfigError, Embedder
from finetune_embed.chat import ToolCallResult
from finetune_embed.evaluate import (
    Answer,
    EvalExample,
    custom,
    embedding_similarity,
    exact_match,
    json_match,
    json_valid,
    normalize,
    normalized_match,
    regex,
    tool_call_match,
)
from finetune_embed.evaluate._scorers import default_scorers, resolve
from finetune_embed.testing import FakeOpenAI

EX = EvalExample(index=0, line=1, messages=({"role": "user", "content": "q"},), reference=Answer("ref"))


def text(value: str | None) -> Answer:
    return Answer(value)


def calls(*pairs: tuple[str, str]) -> Answer:
    return Answer(None, tuple(ToolCallResult(f"id{i}", n, a) for i, (n, a) in enumerate(pairs)))


def test_exact_and_normalized() -> None:
    exact, norm = exact_match(), normalized_match()
    assert exact.score(text("Sports"), text("Sports"), EX) == 1.0
    assert exact.score(text("sports."), text("Sports"), EX) == 0.0
    assert norm.score(text("  sports. "), text("Sports"), EX) == 1.0
    assert norm.score(text("“Ｓｐｏｒｔｓ”"), text("Sports"), EX) == 1.0  # quotes and full-width forms
    assert norm.score(text("Sci / Tech"), text("Sci/Tech"), EX) == 0.0
    assert norm.score(text(None), text("x"), EX) == 0.0
    assert exact.score(text("x"), calls(("f", "{}")), EX) is None  # a tool-call reference has no text
    assert normalize("Hello,   World!!") == "hello, world"


def test_json_valid_and_key_value_match() -> None:
    valid, match = json_valid(), json_match()
    ref = text('{"label": "spam", "scores": {"a": 1, "b": 2.0}, "tags": ["x", "y"]}')
    same = text('{"tags": ["x", "y"], "scores": {"b": 2, "a": 1.0}, "label": "spam"}')
    assert valid.score(same, ref, EX) == 1.0
    assert match.score(same, ref, EX) == 1.0
    one_off = text('{"label": "ham", "scores": {"a": 1, "b": 2}, "tags": ["x", "y"]}')
    assert match.score(one_off, ref, EX) == pytest.approx(4 / 5)
    extra = text('{"label": "spam", "scores": {"a": 1, "b": 2}, "tags": ["x", "y"], "note": "!"}')
    assert match.score(extra, ref, EX) == pytest.approx(5 / 6)
    fenced = text('```json\n{"label": "spam", "scores": {"a": 1, "b": 2}, "tags": ["x", "y"]}\n```')
    assert valid.score(fenced, ref, EX) == 1.0
    assert match.score(fenced, ref, EX) == 1.0
    assert valid.score(text("not json"), ref, EX) == 0.0
    assert match.score(text("not json"), ref, EX) == 0.0
    assert valid.score(text("{}"), text("plain words"), EX) is None
    assert match.score(text("{}"), text("42"), EX) is None  # a bare number is not a JSON document to match
    assert match.score(text("true"), text('{"a": 1}'), EX) == 0.0


def test_tool_call_match_compares_names_and_arguments_as_json() -> None:
    full, names = tool_call_match(), tool_call_match(arguments=False)
    ref = calls(("land", '{"location": "home"}'))
    assert full.score(calls(("land", '{ "location" : "home" }')), ref, EX) == 1.0
    assert full.score(calls(("land", '{"location": "here"}')), ref, EX) == 0.0
    assert names.score(calls(("land", '{"location": "here"}')), ref, EX) == 1.0
    assert full.score(calls(("takeoff", "{}")), ref, EX) == 0.0
    assert full.score(text("I landed it"), ref, EX) == 0.0
    two = calls(("a", "{}"), ("b", '{"x": 1}'))
    assert full.score(calls(("b", '{"x": 1}'), ("a", "{}")), two, EX) == 1.0  # order does not matter
    assert full.score(calls(("a", "{}")), two, EX) == 0.5
    assert full.score(calls(("a", "{}"), ("a", "{}"), ("b", '{"x": 1}')), two, EX) == pytest.approx(2 / 3)
    assert full.score(calls(("f", "not json")), calls(("f", "not json")), EX) == 1.0
    assert full.score(text("x"), text("y"), EX) is None
    assert (full.name, names.name) == ("tool_call", "tool_name")


def test_regex_and_custom_scorers() -> None:
    yes_no = regex(r"(yes|no)", full=True)
    assert yes_no.score(text("yes"), text("ignored"), EX) == 1.0
    assert yes_no.score(text("yes, sure"), text("ignored"), EX) == 0.0
    assert regex(r"\d+").score(text("order 1234"), text(""), EX) == 1.0
    with pytest.raises(ConfigError, match="regular expression"):
        regex("(")

    def length_ratio(prediction: str, reference: str) -> float:
        return min(len(prediction), len(reference)) / max(len(prediction), len(reference), 1)

    scorer = custom(length_ratio)
    assert scorer.name == "length_ratio"
    assert scorer.score(text("abcd"), text("ab"), EX) == 0.5
    contains = custom(lambda p, r, ex: r.text in p.text, name="contains")
    assert contains.score(text("it is Paris"), text("Paris"), EX) == 1.0
    assert custom(lambda p, r: None).score(text("a"), text("b"), EX) is None
    with pytest.raises(ConfigError, match="finite number"):
        custom(lambda p, r: "good").score(text("a"), text("b"), EX)


def test_embedding_similarity_with_the_embedder(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    embedder = Embedder(fake.client(), cache=False)
    scorer = embedding_similarity(embedder)
    items = [
        (text("The parcel is delayed"), text("The parcel is delayed"), EX),
        (text("The parcel arrives late"), text("The parcel is delayed"), EX),
        (text("Quantum chromodynamics"), text("The parcel is delayed"), EX),
        (text(None), text("The parcel is delayed"), EX),
        (text("anything"), text(None), EX),
    ]
    scores = scorer.score_many(items)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert scores[0] > scores[1] > scores[2]  # type: ignore[operator]
    a, b = fake.embeddings(["The parcel arrives late", "The parcel is delayed"])
    assert scores[1] == pytest.approx(float(np.dot(a, b)), abs=1e-5)
    assert scores[3] == 0.0  # no answer
    assert scores[4] is None  # nothing to compare with
    assert fake.ledger.embedding_requests == 1  # one batched request for every text

    async def main() -> list[float | None]:
        aembedder = AsyncEmbedder(fake.async_client(), cache=False)
        return await embedding_similarity(aembedder).ascore_many(items)

    assert asyncio.run(main()) == pytest.approx(scores)  # type: ignore[arg-type]
    assert asyncio.run(scorer.ascore_many(items)) == pytest.approx(scores)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="sync Embedder"):
        embedding_similarity(AsyncEmbedder(fake.async_client(), cache=False)).score_many(items)


def test_names_resolve_and_defaults_follow_the_data() -> None:
    assert resolve("tool_name").name == "tool_name"
    assert resolve("regex:^a").name == "regex:^a"
    with pytest.raises(ConfigError, match="unknown scorer"):
        resolve("rouge")
    refs = [text("plain"), text('{"a": 1}'), calls(("f", "{}"))]
    assert [s.name for s in default_scorers(refs)] == ["exact", "normalized", "json_valid", "json_match", "tool_call"]
    assert [s.name for s in default_scorers([calls(("f", "{}"))])] == ["tool_call"]
    assert math.isfinite(len(default_scorers([])))
