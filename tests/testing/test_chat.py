"""The fake's /v1/chat/completions: base models answer generically, fine-tuned models with their nearest training
example's reply (by the fake's own vectors), usage counted, rate limits applied, the ledger kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from finetune_embed.finetuning import JobManager
from finetune_embed.testing import FakeOpenAI
from finetune_embed.testing._chat import conversation_text, generic_reply


def _train(fake: FakeOpenAI, tmp_path: Path, rows: list[dict[str, Any]], **kwargs: Any) -> str:
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    jobs = JobManager(fake.client(), today=lambda: datetime.fromtimestamp(fake.clock.now(), UTC).date())
    job = jobs.create(kwargs.pop("model", "gpt-4o-mini"), path, **kwargs)
    fake.run_until_idle()
    model = jobs.get(job.id).fine_tuned_model
    assert model is not None
    return model


def _row(user: str, answer: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Sort the ticket."},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


TICKETS = [
    ("My card was charged twice for one order", "billing"),
    ("Refund has not arrived on my credit card", "billing"),
    ("The invoice shows the wrong amount charged", "billing"),
    ("Parcel tracking says delivered but nothing arrived", "delivery"),
    ("The courier left my parcel at the wrong address", "delivery"),
    ("Delivery is three days late and tracking is stuck", "delivery"),
    ("I cannot log in to my account after the password reset", "account"),
    ("How do I change the email address on my account", "account"),
    ("My account was locked after too many login attempts", "account"),
    ("Please delete my account and personal data", "account"),
]


def test_base_models_answer_generically_and_deterministically(sdk: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Parcel tracking is stuck since Monday"}]
    one = sdk.chat.completions.create(model="gpt-4o-mini", messages=messages)
    two = sdk.chat.completions.create(model="gpt-4o-mini", messages=messages, temperature=1.5)
    assert one.choices[0].message.content == two.choices[0].message.content == generic_reply(messages)
    assert one.object == "chat.completion"
    assert one.choices[0].finish_reason == "stop"
    assert one.model == "gpt-4o-mini-2024-07-18"
    assert one.id.startswith("chatcmpl-")
    assert one.usage is not None
    assert one.usage.total_tokens == one.usage.prompt_tokens + one.usage.completion_tokens


def test_a_fine_tuned_model_answers_with_its_nearest_training_example(fake: FakeOpenAI, tmp_path: Path) -> None:
    model = _train(fake, tmp_path, [_row(q, a) for q, a in TICKETS])
    sdk = fake.openai_client()
    held_out = [
        ("I was charged twice on my card", "billing"),
        ("The courier says delivered but my parcel never arrived", "delivery"),
        ("I forgot my password and cannot log in", "account"),
    ]
    train_vectors = fake.embeddings([q for q, _ in TICKETS])
    for question, label in held_out:
        reply = sdk.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": "a different, shorter prompt"},
                {"role": "user", "content": question},
            ],
        )
        nearest = int(np.argmax(train_vectors @ fake.embedding(question)))
        assert reply.choices[0].message.content == TICKETS[nearest][1] == label


def test_multi_turn_examples_teach_every_assistant_turn(fake: FakeOpenAI, tmp_path: Path) -> None:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Start conversation {i}"},
                {"role": "assistant", "content": f"first reply {i}"},
                {"role": "user", "content": f"And the follow-up number {i}?"},
                {"role": "assistant", "content": f"second reply {i}", "weight": 1},
            ]
        }
        for i in range(10)
    ]
    model = _train(fake, tmp_path, rows)
    sdk = fake.openai_client()
    first = sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "Start conversation 4"}])
    assert first.choices[0].message.content == "first reply 4"
    follow: Any = [*rows[7]["messages"][:3]]
    assert sdk.chat.completions.create(model=model, messages=follow).choices[0].message.content == "second reply 7"
    assert conversation_text(follow).count("\n") == 2


def test_a_tool_calling_model_calls_its_tools(fake: FakeOpenAI, tmp_path: Path, cookbook: Path) -> None:
    lines = (cookbook / "drone_training_excerpt.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows:  # the excerpt encodes some arguments twice (the validator says so): decode them once
        for call in row["messages"][-1]["tool_calls"]:
            decoded = json.loads(call["function"]["arguments"])
            if isinstance(decoded, str):
                call["function"]["arguments"] = decoded
    model = _train(fake, tmp_path, rows + rows)  # 12 examples: the service needs at least 10
    sdk = fake.openai_client()
    tools = rows[0]["tools"]
    reply = sdk.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "please land the drone right here"}], tools=tools
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "land_drone"
    assert call.id.startswith("call_")
    # without tools in the request it cannot call them: it answers in text
    plain = sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "land the drone"}])
    assert plain.choices[0].message.tool_calls is None
    assert plain.choices[0].message.content


def test_dpo_models_answer_with_the_preferred_output(fake: FakeOpenAI, tmp_path: Path) -> None:
    rows = [
        {
            "input": {"messages": [{"role": "user", "content": f"Describe product {i}"}]},
            "preferred_output": [{"role": "assistant", "content": f"Short description {i}"}],
            "non_preferred_output": [{"role": "assistant", "content": f"Long rambling text {i}"}],
        }
        for i in range(10)
    ]
    model = _train(fake, tmp_path, rows, model="gpt-4.1-mini", method="dpo")
    reply = fake.openai_client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Describe product 6"}]
    )
    assert reply.choices[0].message.content == "Short description 6"


def test_checkpoints_answer_too(fake: FakeOpenAI, tmp_path: Path) -> None:
    model = _train(fake, tmp_path, [_row(q, a) for q, a in TICKETS], hyperparameters={"n_epochs": 2})
    sdk = fake.openai_client()
    job = next(iter(sdk.fine_tuning.jobs.list()))
    checkpoint = sdk.fine_tuning.jobs.checkpoints.list(job.id).data[0].fine_tuned_model_checkpoint
    assert checkpoint != model
    reply = sdk.chat.completions.create(model=checkpoint, messages=[{"role": "user", "content": TICKETS[4][0]}])
    assert reply.choices[0].message.content == "delivery"


def test_errors_as_the_service_sends_them(sdk: openai.OpenAI, fake: FakeOpenAI) -> None:
    user: Any = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        sdk.chat.completions.create(model="gpt-5-imaginary", messages=user)
    with pytest.raises(openai.NotFoundError, match="not a chat model"):
        sdk.chat.completions.create(model="davinci-002", messages=user)
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="ft:gpt-4o-mini-2024-07-18:org-fake::nope", messages=user)
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument"):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=user, extra_body={"colour": "blue"})
    with pytest.raises(openai.BadRequestError, match="only allowed when 'tools'"):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=user, tool_choice="required")
    with pytest.raises(openai.BadRequestError, match="did not have response messages"):
        sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "user", "content": "?"},
            ],
        )
    with pytest.raises(openai.BadRequestError, match="stream"):
        sdk.chat.completions.create(model="gpt-4o-mini", messages=user, stream=True)
    assert fake.ledger.chat_requests == 0
    assert not fake.errors


def test_rate_limits_apply_with_openais_headers_and_429s() -> None:
    fake = FakeOpenAI(rpm=2, tpm=10_000)
    sdk = fake.openai_client()
    user: Any = [{"role": "user", "content": "hello"}]
    raw = sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=user)
    assert raw.headers["x-ratelimit-limit-requests"] == "2"
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) < 10_000
    sdk.chat.completions.create(model="gpt-4o-mini", messages=user)
    with pytest.raises(openai.RateLimitError, match="requests per min") as info:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=user)
    assert info.value.response.headers["retry-after"] == "30"
    with pytest.raises(openai.RateLimitError, match="Request too large"):
        sdk.chat.completions.create(model="gpt-4.1-mini", messages=user, max_completion_tokens=20_000)
    fake.advance(30)
    sdk.chat.completions.create(model="gpt-4o-mini", messages=user)
    assert fake.ledger.chat_requests == 3
    assert fake.ledger.rate_limited == 2


def test_the_ledger_records_chat_requests_and_tokens(sdk: openai.OpenAI, fake: FakeOpenAI) -> None:
    reply = sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], n=2)
    record = fake.ledger.requests[-1]
    assert record.endpoint == "/v1/chat/completions"
    assert record.status == 200
    assert record.model == "gpt-4o-mini"
    assert reply.usage is not None
    assert record.tokens == reply.usage.total_tokens
    assert fake.ledger.chat_tokens_billed == (reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert fake.ledger.tokens_billed == 0  # the embeddings billing is separate


def test_json_schema_replies_fit_the_schema(sdk: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["spam", "ham"]}, "score": {"type": "number"}},
        "required": ["label", "score"],
    }
    reply = sdk.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[{"role": "user", "content": "Is this spam?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"label": "spam", "score": 0}


def test_over_loopback_with_the_stock_sdk(fake: FakeOpenAI) -> None:
    with fake.serve() as url:
        sdk = openai.OpenAI(base_url=url, api_key="sk-loopback", max_retries=0)
        reply = sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}])
        sdk.close()
    assert reply.choices[0].message.content == generic_reply([{"role": "user", "content": "ping"}])
    assert fake.ledger.chat_requests == 1
