"""Hostile inputs the AST scan cannot see (errors raised by Python itself, not by a ``raise`` of ours) come out
typed too (#11 item 9): recursion from deeply nested data, overflow from huge numbers, OS errors from paths."""

from __future__ import annotations

import pytest

from finetune_embed import ConfigError, InvalidArgumentError
from finetune_embed.finetuning import JobManager
from finetune_embed.retry import RetryPolicy
from finetune_embed.testing import FakeOpenAI


def _deep(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = {"a": [value]}
    return value


def test_deeply_nested_chat_messages_are_a_config_error() -> None:
    fake = FakeOpenAI()
    with pytest.raises(ConfigError, match="nested more than 100 levels deep"):
        fake.client().chat.create("gpt-4o-mini", [{"role": "user", "content": [_deep(5000)]}], cache=False)
    with pytest.raises(ConfigError, match="nested more than 100 levels deep"):
        fake.client().chat.create("gpt-4o-mini", [{"role": "user", "content": "hi"}], tools=[_deep(5000)])
    assert fake.ledger.requests == []


def test_moderately_nested_chat_data_still_passes() -> None:
    schema: dict[str, object] = {"type": "string"}
    for _ in range(20):  # 20 objects deep: about 40 levels of JSON
        schema = {"type": "object", "properties": {"a": schema}}
    fake = FakeOpenAI()
    result = fake.client().chat.create(
        "gpt-4o-mini",
        [{"role": "user", "content": "hi"}],
        response_format={"type": "json_schema", "json_schema": {"name": "deep", "schema": schema}},
        cache=False,
    )
    assert result.content


def test_deep_job_metadata_is_a_config_error() -> None:
    fake = FakeOpenAI()
    with pytest.raises(ConfigError, match=r"metadata\['a'\] must be a string, got dict"):
        JobManager(fake.client()).create("gpt-4o-mini", "file-abc", metadata={"a": _deep(5000)})  # type: ignore[dict-item]
    assert fake.ledger.requests == []


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_elapsed": -1.0}, "max_elapsed"),
        ({"initial_wait": -1.0}, "initial_wait"),
        ({"jitter": -0.5}, "jitter"),
    ],
)
def test_retry_policy_arguments_are_typed(kwargs: dict[str, float], argument: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert info.value.argument == argument
    assert isinstance(info.value, ValueError)  # what the old raw ValueError was: existing handlers still catch it


def test_poll_intervals_are_typed() -> None:
    fake = FakeOpenAI()
    jobs = JobManager(fake.client())
    with pytest.raises(InvalidArgumentError) as info:
        jobs.wait("ftjob-abc", poll_interval=0.0, progress=False)
    assert info.value.argument == "poll_interval"
