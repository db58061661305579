"""The whole loop on the fake: JSONL -> split -> fine-tune -> evaluate base vs fine-tuned. The fine-tuned model wins
by exactly the margin the fake's design gives (its nearest-neighbour accuracy); a rerun sends nothing."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from finetune_embed import Client, ConfigError, Dataset, Embedder, RetryPolicy
from finetune_embed.evaluate import Candidate, Evaluation, EvaluationReport
from finetune_embed.testing import FakeOpenAI

from .conftest import SYSTEM


def _title(row: dict) -> str:  # type: ignore[type-arg]
    return str(row["messages"][1]["content"])


def _label(row: dict) -> str:  # type: ignore[type-arg]
    return str(row["messages"][2]["content"])


def nearest_neighbour_accuracy(fake: FakeOpenAI, train: Dataset, test: Dataset) -> list[bool]:
    """What the fake's design predicts: a held-out headline is answered right exactly when its nearest training
    headline (cosine of the fake's vectors; the earliest on a tie) has the same label."""
    train_vectors = fake.embeddings([_title(r) for r in train])
    test_vectors = fake.embeddings([_title(r) for r in test])
    nearest = np.argmax(test_vectors @ train_vectors.T, axis=1)
    return [_label(train[int(j)]) == _label(row) for j, row in zip(nearest, test, strict=True)]


def test_full_loop_the_fine_tuned_model_wins_by_the_explained_margin(
    fake: FakeOpenAI, client: Client, news: Dataset, fine_tune: Callable[..., str], tmp_path: Path
) -> None:
    news.to_json(tmp_path / "news.jsonl")
    data = Dataset.from_json(tmp_path / "news.jsonl")  # JSONL on disk, lines remembered
    train, test = data.train_test_split(test_size=40, seed=0)
    tuned = fine_tune(train)
    embedder = Embedder(client, cache=tmp_path / "emb.sqlite", progress=False)
    evaluation = Evaluation(
        test,
        ["gpt-4o-mini", tuned],
        client=client,
        embedder=embedder,
        params={"temperature": 0},
        cache=tmp_path / "chat.sqlite",
        progress=False,
    )
    assert [s.name for s in evaluation.scorers] == ["exact", "normalized", "embedding"]
    report = evaluation.run()

    expected = nearest_neighbour_accuracy(fake, train, test)
    assert report.mean(tuned, "exact") == pytest.approx(np.mean(expected))
    assert 0.3 < report.mean(tuned, "exact") < 0.7  # a real, partial improvement: 18 of 40 at seed 0
    assert report.mean("gpt-4o-mini", "exact") == 0.0  # the base model answers generically
    (exact,) = report.compare(scorer="exact")
    assert (exact.wins, exact.ties, exact.losses) == (sum(expected), 40 - sum(expected), 0)
    assert exact.low > 0.2  # the paired interval excludes "no improvement"
    assert exact.p_better == 1.0
    embedding = report.compare(scorer="embedding")[0]
    assert embedding.mean_difference > 0
    # per example: the rows say which headlines the fine-tuned model got right, at their source lines
    rows = [r for r in report.rows if r.candidate == tuned]
    assert [r.scores["exact"] == 1.0 for r in rows] == expected
    assert [r.line for r in rows] == test.lines
    assert all(r.prompt == _title(row) for r, row in zip(rows, test, strict=True))
    # the worst examples are the misses, with their lines
    worst = report.worst("exact", tuned, n=3)
    assert all(r.scores["exact"] == 0.0 and r.line in test.lines for r in worst)
    # tokens, cost and latency per model from the catalog
    base_usage, tuned_usage = report.usage["gpt-4o-mini"], report.usage[tuned]
    assert base_usage.requests == tuned_usage.requests == 40
    assert base_usage.price_per_1m == (0.15, 0.6)
    assert tuned_usage.price_per_1m == (0.3, 1.2)
    assert tuned_usage.cost_usd == pytest.approx(
        (tuned_usage.prompt_tokens * 0.3 + tuned_usage.completion_tokens * 1.2) / 1e6
    )
    assert tuned_usage.spent_usd == tuned_usage.cost_usd
    assert fake.ledger.chat_requests == 80
    assert fake.ledger.chat_tokens_billed == (
        base_usage.prompt_tokens + tuned_usage.prompt_tokens,
        base_usage.completion_tokens + tuned_usage.completion_tokens,
    )

    # a rerun makes no new request: every answer (and every embedding) comes from the caches
    before = len(fake.ledger.requests)
    again = Evaluation(
        test,
        ["gpt-4o-mini", tuned],
        client=client,
        embedder=embedder,
        params={"temperature": 0},
        cache=tmp_path / "chat.sqlite",
        progress=False,
    ).run()
    assert len(fake.ledger.requests) == before
    assert again.usage[tuned].cached == 40
    assert again.usage[tuned].spent_usd == 0.0
    assert again.usage[tuned].cost_usd == pytest.approx(tuned_usage.cost_usd)
    assert again.mean(tuned, "exact") == report.mean(tuned, "exact")
    assert [r.latency for r in again.rows] == pytest.approx([r.latency for r in report.rows])
    embedder.close()


def test_async_run_gives_the_same_report(
    fake: FakeOpenAI, news: Dataset, fine_tune: Callable[..., str], tmp_path: Path
) -> None:
    train, test = news.train_test_split(test_size=20, seed=1)
    tuned = fine_tune(train)
    sync = Evaluation(test, ["gpt-4o-mini", tuned], client=fake.client(), cache=False, progress=False).run()

    async def main() -> EvaluationReport:
        aclient = fake.async_client(retry=RetryPolicy(sleep=fake.sleep))
        report = await Evaluation(
            test, ["gpt-4o-mini", tuned], client=aclient, cache=tmp_path / "a.sqlite", progress=False
        ).arun()
        await aclient.aclose()
        return report

    report = asyncio.run(main())
    assert report.to_rows() != []
    for scorer in ("exact", "normalized"):
        assert report.mean(tuned, scorer) == sync.mean(tuned, scorer)
    assert [r.prediction for r in report.rows] == [r.prediction for r in sync.rows]
    requests = fake.ledger.chat_requests
    asyncio.run(main())  # the rerun is answered from the cache
    assert fake.ledger.chat_requests == requests


def test_a_shorter_system_prompt_costs_less_for_the_same_quality(
    fake: FakeOpenAI, client: Client, news: Dataset, fine_tune: Callable[..., str]
) -> None:
    train, test = news.train_test_split(test_size=20, seed=2)
    tuned = fine_tune(train)
    report = Evaluation(
        test,
        [
            Candidate("gpt-4o-mini", name="base, full prompt"),
            Candidate(tuned, name="tuned, full prompt"),
            Candidate(tuned, name="tuned, no prompt", system=""),
        ],
        client=client,
        cache=False,
        progress=False,
    ).run()
    full, short = report.usage["tuned, full prompt"], report.usage["tuned, no prompt"]
    assert short.prompt_tokens < full.prompt_tokens
    assert short.cost_usd is not None
    assert full.cost_usd is not None
    assert short.cost_usd < full.cost_usd
    assert report.mean("tuned, no prompt", "exact") == report.mean("tuned, full prompt", "exact")
    (cmp,) = report.compare("tuned, full prompt", "tuned, no prompt", scorer="exact")
    assert (cmp.wins, cmp.losses) == (0, 0)
    sent = [r for r in fake.ledger.requests if r.endpoint == "/v1/chat/completions"]
    assert len(sent) == 60


def test_tool_call_data_is_scored_on_the_calls(
    fake: FakeOpenAI, client: Client, fine_tune: Callable[..., str], cookbook: Path
) -> None:
    rows = [json.loads(x) for x in (cookbook / "drone_training_excerpt.jsonl").read_text().splitlines()]
    for row in rows:  # decode the excerpt's double-encoded arguments once (the validator flags them)
        for call in row["messages"][-1]["tool_calls"]:
            value = json.loads(call["function"]["arguments"])
            call["function"]["arguments"] = value if isinstance(value, str) else call["function"]["arguments"]
    tuned = fine_tune(Dataset.from_list(rows * 2))

    def ask(row: dict, question: str) -> dict:  # type: ignore[type-arg]
        system, _user, reply = row["messages"]
        return {**row, "messages": [system, {"role": "user", "content": question}, reply]}

    held_out = Dataset.from_list(
        [ask(rows[0], "make the drone take off"), ask(rows[4], "bring the drone home and land")]
    )
    report = Evaluation(held_out, ["gpt-4o-mini", tuned], client=client, cache=False, progress=False).run()
    assert report.scorers == ["tool_call"]  # the references are tool calls: no text to match
    assert report.mean(tuned, "tool_call") == 1.0
    assert report.mean("gpt-4o-mini", "tool_call") == 0.0  # the base model answered in text
    assert json.loads(report.rows[-1].prediction)[0]["name"] == "land_drone"
    # every request carried the example's tools
    bodies = [r for r in fake.ledger.requests if r.endpoint == "/v1/chat/completions"]
    assert len(bodies) == 4


def test_a_failing_example_is_reported_not_fatal(client: Client, fake: FakeOpenAI) -> None:
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    broken = {  # a tool reply without the call it answers: the server refuses this one request
        "messages": [
            {"role": "tool", "tool_call_id": "x", "content": "42"},
            {"role": "assistant", "content": "The answer is 42"},
        ]
    }
    no_reply = {"messages": [{"role": "user", "content": "Anyone?"}]}
    report = Evaluation([good, broken, no_reply], ["gpt-4o-mini"], client=client, cache=False, progress=False).run()
    assert report.n_examples == 2
    assert report.skipped == [3]
    failed = [r for r in report.rows if r.error]
    assert len(failed) == 1
    assert failed[0].line == 2
    assert "BadRequestError" in (failed[0].error or "")
    assert failed[0].scores["exact"] == 0.0
    assert report.usage["gpt-4o-mini"].errors == 1
    assert report.worst("exact")[0].line == 2  # errors first


def test_report_exports(client: Client, tmp_path: Path) -> None:
    data = Dataset.from_pairs(["Capital of France?", "2+2?", "Color of the sky?"], ["Paris", "4", "Blue"])
    report = Evaluation(data, {"base": "gpt-4o-mini", "other": "gpt-4.1-mini"}, client=client, cache=False).run()
    frame = report.to_pandas()
    assert list(frame["candidate"]) == ["base"] * 3 + ["other"] * 3
    assert {"line", "prompt", "reference", "prediction", "score:exact", "latency", "cost_usd"} <= set(frame.columns)
    as_dict = report.to_dict()
    json.dumps(as_dict, allow_nan=False)  # strict JSON (no NaN)
    assert as_dict["candidates"][1] == {"name": "other", "model": "gpt-4.1-mini"}
    assert len(as_dict["comparisons"]) == 2
    path = Path(tmp_path) / "report.json"
    report.to_json(path)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert len(saved["rows"]) == 6
    assert saved["summary"] == as_dict["summary"]
    text = report.format()
    assert "base" in text
    assert "win/tie/loss" in text
    assert "Worst on exact" in text
    summary = report.summary()
    assert [(s.candidate, s.scorer) for s in summary] == [
        ("base", "exact"),
        ("base", "normalized"),
        ("other", "exact"),
        ("other", "normalized"),
    ]
    assert all(s.stats.n == 3 for s in summary)
    with pytest.raises(ConfigError, match="no candidate"):
        report.mean("nobody", "exact")
    with pytest.raises(ConfigError, match="no scorer"):
        report.worst("bleu")


def test_estimate_before_running(client: Client, fake: FakeOpenAI, news: Dataset, tmp_path: Path) -> None:
    test = news[:10]
    evaluation = Evaluation(test, ["gpt-4o-mini", "gpt-4.1"], client=client, cache=tmp_path / "c.sqlite")
    first = evaluation.estimate()
    assert [e.candidate for e in first] == ["gpt-4o-mini", "gpt-4.1"]
    assert all(e.requests == 10 and e.cached == 0 for e in first)
    assert first[0].cost_usd is not None
    assert first[1].cost_usd is not None
    assert first[1].cost_usd > first[0].cost_usd  # gpt-4.1 costs more than gpt-4o-mini
    assert fake.ledger.chat_requests == 0  # an estimate sends nothing
    report = evaluation.run()
    assert first[0].prompt_tokens == report.usage["gpt-4o-mini"].prompt_tokens  # counted as the server counts
    assert all(e.requests == 0 and e.cached == 10 for e in evaluation.estimate())


def test_bad_arguments(client: Client) -> None:
    data = Dataset.from_pairs(["q"], ["a"])
    with pytest.raises(ConfigError, match="distinct names"):
        Evaluation(data, ["gpt-4o-mini", "gpt-4o-mini"], client=client)
    with pytest.raises(ConfigError, match="unknown scorer"):
        Evaluation(data, ["gpt-4o-mini"], client=client, scorers=["bleu"])
    with pytest.raises(ConfigError, match="needs an embedder"):
        Evaluation(data, ["gpt-4o-mini"], client=client, scorers=["embedding"])
    with pytest.raises(ConfigError, match="no example"):
        Evaluation(Dataset.from_list([{"messages": [{"role": "user", "content": "x"}]}]), ["m"], client=client)
    with pytest.raises(ConfigError, match="params may not set"):
        Evaluation(data, ["gpt-4o-mini"], client=client, params={"model": "x"})
    with pytest.raises(ConfigError, match="AsyncClient"):
        Evaluation(data, ["gpt-4o-mini"], client=FakeOpenAI().async_client()).run()
    nan_scorer = Evaluation(data, ["gpt-4o-mini"], client=client, cache=False, scorers=[lambda p, r: math.nan])
    with pytest.raises(ConfigError, match="finite number"):
        nan_scorer.run()


def test_completion_and_preference_data_are_evaluated_too(client: Client) -> None:
    completion = Dataset.from_list([{"prompt": "Say hi", "completion": "hi"}])
    assert Evaluation(completion, ["gpt-4o-mini"], client=client, cache=False).examples[0].reference.content == "hi"
    preference = Dataset.from_list(
        [
            {
                "input": {"messages": [{"role": "user", "content": "Pick one"}]},
                "preferred_output": [{"role": "assistant", "content": "A"}],
                "non_preferred_output": [{"role": "assistant", "content": "B"}],
            }
        ]
    )
    (example,) = Evaluation(preference, ["gpt-4o-mini"], client=client, cache=False).examples
    assert example.reference.content == "A"
    assert example.messages[-1]["content"] == "Pick one"


def test_system_prompt_choices(client: Client, fake: FakeOpenAI) -> None:
    data = Dataset.from_pairs(["q"], ["a"], system=SYSTEM)
    sent: list[list[dict]] = []  # type: ignore[type-arg]
    for system in (None, "Short.", ""):
        evaluation = Evaluation(data, ["gpt-4o-mini"], client=client, cache=False, system=system)
        ((_, _, request),) = evaluation.requests()
        sent.append([dict(m) for m in request.messages])
    assert sent[0][0] == {"role": "system", "content": SYSTEM}
    assert sent[1][0] == {"role": "system", "content": "Short."}
    assert sent[2] == [{"role": "user", "content": "q"}]
