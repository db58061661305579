"""client.chat on the fake: answers, the cache (keys, reruns, bypass), retries, pacing under rate limits, per-request
errors, interruption and resume, and the async twin."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from finetune_embed import Client, ConfigError, NotFoundError, RetryPolicy
from finetune_embed.chat import AsyncChatCompletions, ChatCache, ChatCompletions, ChatRequest, ChatResult
from finetune_embed.testing import FakeOpenAI

from .conftest import chat_row

USER = [{"role": "user", "content": "What time do you close?"}]


def test_create_answers_with_usage_and_the_fakes_shape(client: Client, fake: FakeOpenAI) -> None:
    result = client.chat.create("gpt-4o-mini", [{"role": "system", "content": "Be brief."}, *USER], temperature=0)
    assert isinstance(result, ChatResult)
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert result.content is not None
    assert "What time do you close?" in result.content
    assert result.finish_reason == "stop"
    assert not result.cached
    assert result.usage.prompt_tokens > 0
    assert result.usage.completion_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.request_id
    assert result.request_id.startswith("req_")
    assert result.to_openai().choices[0].message.content == result.content
    assert fake.ledger.chat_requests == 1
    assert fake.ledger.chat_tokens_billed == (result.usage.prompt_tokens, result.usage.completion_tokens)
    assert not fake.errors


def test_the_client_estimates_prompt_tokens_as_the_server_counts_them(client: Client) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "How many tokens is this?", "name": "u"},
    ]
    request = ChatRequest.build("gpt-4o-mini", messages, tools=tools)
    result = client.chat.create("gpt-4o-mini", messages, tools=tools, cache=False)
    assert client.chat.estimate_tokens(request) == result.usage.prompt_tokens
    bounded = ChatRequest.build("gpt-4o-mini", messages, tools=tools, max_completion_tokens=50, n=2)
    assert client.chat.estimate_tokens(bounded) == result.usage.prompt_tokens + 100


def test_a_rerun_is_answered_from_the_cache(client: Client, fake: FakeOpenAI) -> None:
    first = client.chat.create("gpt-4o-mini", USER, temperature=0.2, seed=1)
    again = client.chat.create("gpt-4o-mini", USER, temperature=0.2, seed=1, user="someone", metadata={"run": "2"})
    assert again.cached
    assert again.content == first.content
    assert again.latency == pytest.approx(first.latency)  # the original latency is kept
    assert fake.ledger.chat_requests == 1
    client.chat.create("gpt-4o-mini", USER, temperature=0.3, seed=1)  # another sampling parameter: another key
    client.chat.create("gpt-4.1-mini", USER, temperature=0.2, seed=1)  # another model
    client.chat.create("gpt-4o-mini", [*USER, {"role": "assistant", "content": "9 pm"}, *USER], temperature=0.2, seed=1)
    assert fake.ledger.chat_requests == 4
    client.chat.create("gpt-4o-mini", USER, temperature=0.2, seed=1, cache=False)  # bypass: sent again
    assert fake.ledger.chat_requests == 5


def test_the_cache_survives_a_new_client_and_process_but_not_another_server(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    path = tmp_path / "chat.sqlite"
    with ChatCompletions(fake.client(), cache=path) as chat:
        chat.create("gpt-4o-mini", USER)
    with ChatCompletions(fake.client(), cache=path) as chat:
        assert chat.create("gpt-4o-mini", USER).cached
    assert fake.ledger.chat_requests == 1
    other = FakeOpenAI()  # another server: its answers may differ, so nothing is shared
    with ChatCompletions(other.client(), cache=path) as chat:
        assert not chat.create("gpt-4o-mini", USER).cached
    with ChatCache(path) as cache:
        assert len(cache) == 2
        assert cache.stats() == {"gpt-4o-mini": 2}


def test_cache_false_never_opens_a_cache(fake: FakeOpenAI, tmp_path: Path) -> None:
    chat = ChatCompletions(fake.client(), cache=False)
    chat.create("gpt-4o-mini", USER)
    chat.create("gpt-4o-mini", USER)
    assert chat.cache is None
    assert fake.ledger.chat_requests == 2
    assert not (tmp_path / "cache").exists()


def test_server_errors_are_retried_by_the_one_retry_layer(client: Client, fake: FakeOpenAI) -> None:
    fake.inject(500, path="/v1/chat/completions", times=2)
    result = client.chat.create("gpt-4o-mini", USER, cache=False)
    assert result.content
    assert fake.ledger.count("/v1/chat/completions", status=500) == 2
    assert fake.ledger.chat_requests == 1


def test_tool_calls_come_back_as_tool_calls(client: Client) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "order_status",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}, "urgent": {"type": "boolean"}},
                    "required": ["order_id"],
                },
            },
        }
    ]
    result = client.chat.create(
        "gpt-4o-mini", USER, tools=tools, tool_choice={"type": "function", "function": {"name": "order_status"}}
    )
    assert result.content is None
    assert len(result.tool_calls) == 1
    call = result.tool_calls[0]
    assert call.name == "order_status"
    assert call.parsed_arguments() == {"order_id": "example"}
    assert call.id.startswith("call_")
    assert result.message["tool_calls"][0]["function"]["name"] == "order_status"


def test_max_tokens_stop_n_and_json_mode(client: Client) -> None:
    cut = client.chat.create("gpt-4o-mini", USER, max_completion_tokens=3)
    assert cut.finish_reason == "length"
    assert cut.usage.completion_tokens == 3
    many = client.chat.create("gpt-4o-mini", USER, n=3)
    assert len(many.choices) == 3
    assert many.usage.completion_tokens == 3 * len(client.chat._tokenizer("gpt-4o-mini").encode(many.content or ""))
    stopped = client.chat.create("gpt-4o-mini", USER, stop=["general"])
    assert stopped.content is not None
    assert "general" not in stopped.content
    import json

    as_json = client.chat.create("gpt-4o-mini", USER, response_format={"type": "json_object"})
    assert isinstance(json.loads(as_json.content or ""), dict)


def test_bad_arguments_are_refused_locally(client: Client, fake: FakeOpenAI) -> None:
    for messages in ([], "hello", [{"role": "robot", "content": "x"}], [object()]):
        with pytest.raises(ConfigError):
            client.chat.create("gpt-4o-mini", messages)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="stream"):
        client.chat.create("gpt-4o-mini", USER, stream=True)
    with pytest.raises(ConfigError, match="finite"):
        client.chat.create("gpt-4o-mini", USER, temperature=float("nan"))
    with pytest.raises(ConfigError):
        ChatCompletions(client, max_concurrency=0)
    assert fake.ledger.requests == []


def test_unknown_and_deleted_models_are_not_found(client: Client, fake: FakeOpenAI, tuned: Any) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        client.chat.create("gpt-9-ultra", USER)
    model = tuned([chat_row(f"question {i}", f"answer {i}") for i in range(10)])
    assert client.chat.create(model, USER, cache=False).content
    client.jobs.delete_model(model)
    with pytest.raises(NotFoundError):
        client.chat.create(model, USER, cache=False)


def test_create_many_keeps_order_and_a_rerun_sends_nothing(client: Client, fake: FakeOpenAI) -> None:
    requests = [
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Question {i}?"}]} for i in range(12)
    ]
    results = client.chat.create_many(requests)
    assert [r.content for r in results if isinstance(r, ChatResult)] == [
        client.chat.create("gpt-4o-mini", [{"role": "user", "content": f"Question {i}?"}]).content for i in range(12)
    ]
    assert fake.ledger.chat_requests == 12
    again = client.chat.create_many(requests)
    assert all(isinstance(r, ChatResult) and r.cached for r in again)
    assert fake.ledger.chat_requests == 12


def test_create_many_paces_requests_within_the_servers_limits(tmp_path: Path) -> None:
    fake = FakeOpenAI(rpm=30, tpm=100_000)
    client = fake.client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0))
    chat = ChatCompletions(client, cache=False, max_concurrency=8, clock=fake.clock.now, sleep=fake.sleep)
    start = fake.clock.now()
    requests = [ChatRequest.build("gpt-4o-mini", [{"role": "user", "content": f"q{i}"}]) for i in range(60)]
    results = chat.create_many(requests)
    assert len(results) == 60
    assert all(isinstance(r, ChatResult) for r in results)
    elapsed = fake.clock.now() - start
    # a bucket of 30 that refills at 0.5 per second: 30 at once, 30 more over at least ~60 s (senders waiting at
    # the same time each advance the shared fake clock, so only the lower bound is exact)
    assert 58.0 <= elapsed <= 8 * 60.0, elapsed
    assert fake.ledger.rate_limited <= 2
    assert fake.ledger.chat_requests == 60


def test_user_tpm_budget_paces_before_the_server_objects(fake: FakeOpenAI) -> None:
    client = fake.client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0))
    chat = ChatCompletions(client, cache=False, tpm=600, clock=fake.clock.now, sleep=fake.sleep)
    request = ChatRequest.build("gpt-4o-mini", USER, max_completion_tokens=90)
    tokens = chat.estimate_tokens(request)
    start = fake.clock.now()
    chat.create_many([request] * 12)
    # 12 requests of `tokens` each through a 600-per-minute bucket that starts full
    expected = (12 * tokens - 600) / 10.0
    assert expected * 0.95 <= fake.clock.now() - start <= 4 * expected
    assert fake.ledger.rate_limited == 0


def test_per_request_errors_can_be_returned_in_place(client: Client, fake: FakeOpenAI) -> None:
    good = {"model": "gpt-4o-mini", "messages": USER}
    bad = {"model": "gpt-4o-mini", "messages": [{"role": "tool", "tool_call_id": "x", "content": "orphan"}]}
    from finetune_embed import BadRequestError

    with pytest.raises(BadRequestError, match="tool_calls"):
        client.chat.create_many([good, bad])
    results = client.chat.create_many([good, bad, good], return_exceptions=True)
    assert isinstance(results[0], ChatResult)
    assert isinstance(results[2], ChatResult)
    assert isinstance(results[1], BadRequestError)
    missing = {"model": "no-such-model", "messages": USER}
    with pytest.raises(NotFoundError):  # fails every request alike: always raised
        client.chat.create_many([missing], return_exceptions=True)


def test_an_interrupted_run_resumes_without_paying_twice(client: Client, fake: FakeOpenAI) -> None:
    requests = [{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Item {i}"}]} for i in range(20)]
    chat = client.chat.with_options(max_concurrency=2)
    seen: list[int] = []

    def stop_after_five(index: int, result: object) -> None:
        seen.append(index)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        chat.create_many(requests, on_result=stop_after_five)
    sent = fake.ledger.chat_requests
    assert 5 <= sent < 20
    results = chat.create_many(requests)
    assert len(results) == 20
    assert fake.ledger.chat_requests == 20  # the answers paid for before the interruption were kept
    assert sum(isinstance(r, ChatResult) and r.cached for r in results) == sent


def test_with_options_checks_names(client: Client) -> None:
    with pytest.raises(ConfigError, match="unknown option"):
        client.chat.with_options(colour="blue")
    assert client.chat.with_options(max_concurrency=9).max_concurrency == 9
    assert client.chat is client.chat


def test_azure_deployments_of_chat_models(fake: FakeOpenAI, tuned: Any) -> None:
    model = tuned([chat_row(f"question {i}", f"answer {i}") for i in range(10)])
    fake.add_deployment("support-bot", model)
    azure = fake.azure_client()
    result = azure.chat.create("support-bot", [{"role": "user", "content": "question 3"}])
    assert result.content == "answer 3"
    assert result.model == model
    with pytest.raises(NotFoundError):
        azure.chat.create("no-such-deployment", USER)


def test_a_compatible_servers_own_models(fake: FakeOpenAI) -> None:
    fake.add_chat_model("llama3.1:8b")
    result = fake.client().chat.create("llama3.1:8b", USER, cache=False)
    assert result.model == "llama3.1:8b"
    assert result.content


def test_async_twin(fake: FakeOpenAI) -> None:
    async def main() -> tuple[ChatResult, list[Any], list[Any]]:
        aclient = fake.async_client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0))
        assert isinstance(aclient.chat, AsyncChatCompletions)
        one = await aclient.chat.create("gpt-4o-mini", USER)
        requests = [{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Q{i}"}]} for i in range(8)]
        many = await aclient.chat.create_many(requests)
        again = await aclient.chat.create_many(requests)
        await aclient.aclose()
        return one, many, again

    one, many, again = asyncio.run(main())
    assert one.content
    assert len(many) == 8
    assert all(isinstance(r, ChatResult) and r.cached for r in again)
    assert fake.ledger.chat_requests == 9


def test_async_paces_under_rate_limits() -> None:
    fake = FakeOpenAI(rpm=20)

    async def main() -> list[Any]:
        aclient = fake.async_client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0))
        chat = AsyncChatCompletions(aclient, cache=False, max_concurrency=6, clock=fake.clock.now, sleep=fake.sleep)
        requests = [ChatRequest.build("gpt-4o-mini", [{"role": "user", "content": f"x{i}"}]) for i in range(30)]
        return await chat.create_many(requests)

    start = fake.clock.now()
    results = asyncio.run(main())
    assert len(results) == 30
    assert fake.ledger.chat_requests == 30
    assert fake.clock.now() - start >= 25.0  # 20 at once, 10 more at one per 3 s
    assert fake.ledger.rate_limited <= 2


def test_sync_chat_inside_a_running_event_loop(client: Client) -> None:
    async def notebook_cell() -> str | None:
        return client.chat.create("gpt-4o-mini", USER).content  # no asyncio.run inside: works in Jupyter

    assert asyncio.run(notebook_cell())


def test_without_rate_limit_headers_concurrency_adapts_instead_of_a_429_storm() -> None:
    fake = FakeOpenAI(rpm=20)
    fake.set_rate_limits(rpm=20, headers=False)  # as on Azure or a compatible server
    client = fake.client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0))
    chat = ChatCompletions(client, cache=False, max_concurrency=8, clock=fake.clock.now, sleep=fake.sleep)
    results = chat.create_many(
        [ChatRequest.build("gpt-4o-mini", [{"role": "user", "content": f"n{i}"}]) for i in range(40)]
    )
    assert all(isinstance(r, ChatResult) for r in results)
    assert fake.ledger.chat_requests == 40
    # the first 429s name the limit ("Limit 20, Used 20"): only the requests already in flight then can hit one (at
    # most max_concurrency); from then on requests are paced, never a storm of retries
    assert fake.ledger.rate_limited <= 8
