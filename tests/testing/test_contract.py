"""Contract test against the OpenAPI spec (../shared/openai-openapi/openapi.yaml).

1. Requests: for each endpoint, a request the spec accepts is answered 200, and every request generated from the
   spec's request schema that the spec *rejects* (missing required fields, unknown fields where
   ``additionalProperties: false``, enum, type, minimum/maximum, length and item-count violations, at every
   depth) is refused by the fake with a 4xx and the error envelope.
2. Responses: every JSON body the fake sends while a realistic session runs conforms to the spec's response
   schema for that operation (and errors to ``ErrorResponse``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from finetune_embed.testing import FakeOpenAI

from ._data import chat_file, embedding_lines
from ._schema import Spec, apply

SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "openai-openapi" / "openapi.yaml"
AUTH = {"Authorization": "Bearer sk-contract"}


@pytest.fixture(scope="module")
def spec() -> Spec:
    if not SPEC_PATH.is_file():  # pragma: no cover - CI always has shared/
        pytest.skip(f"{SPEC_PATH} is not available")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open("rb") as fh:
        return Spec(yaml.load(fh, Loader=loader))


def _file(fake: FakeOpenAI, purpose: str, content: bytes) -> str:
    return fake.store.add_file("x.jsonl", purpose, content).id


def _upload_with_part(fake: FakeOpenAI) -> tuple[str, dict[str, Any]]:
    sdk = fake.openai_client()
    up = sdk.uploads.create(bytes=3, filename="x.jsonl", mime_type="text/jsonl", purpose="fine-tune")
    part = sdk.uploads.parts.create(up.id, data=b"abc")
    return f"/v1/uploads/{up.id}/complete", {"part_ids": [part.id], "md5": "900150983cd24fb0d6963f7d28e17f72"}


HYPER = {"n_epochs": 2, "batch_size": 1, "learning_rate_multiplier": 1.5}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": False,
    },
}
CHAT_REQUEST: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris?", "name": "u1"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
    ],
    "tools": [WEATHER_TOOL],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "temperature": 0.5,
    "top_p": 0.9,
    "max_completion_tokens": 100,
    "max_tokens": 100,
    "n": 2,
    "seed": 7,
    "stop": ["\n\n"],
    "frequency_penalty": 0.1,
    "presence_penalty": 0.1,
    "logprobs": False,
    "top_logprobs": 0,
    "user": "u",
    "metadata": {"k": "v"},
    "store": False,
    "response_format": {"type": "text"},
    "service_tier": "auto",
    "logit_bias": {"50256": -100},
}
JSON_CASES: dict[str, tuple[str, Callable[[FakeOpenAI], tuple[str, dict[str, Any]]]]] = {
    "embeddings": (
        "CreateEmbeddingRequest",
        lambda fake: (
            "/v1/embeddings",
            {
                "model": "text-embedding-3-small",
                "input": ["hello world"],
                "encoding_format": "float",
                "dimensions": 8,
                "user": "u",
            },
        ),
    ),
    "embeddings-tokens": (
        "CreateEmbeddingRequest",
        lambda fake: ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [[1, 2, 3]]}),
    ),
    "jobs-legacy-hyperparameters": (
        "CreateFineTuningJobRequest",
        lambda fake: (
            "/v1/fine_tuning/jobs",
            {
                "model": "gpt-4o-mini",
                "training_file": _file(fake, "fine-tune", chat_file()),
                "validation_file": _file(fake, "fine-tune", chat_file(2)),
                "suffix": "s",
                "seed": 1,
                "hyperparameters": HYPER,
                "integrations": [
                    {"type": "wandb", "wandb": {"project": "p", "name": "n", "entity": "e", "tags": ["t"]}}
                ],
                "metadata": {"k": "v"},
            },
        ),
    ),
    "jobs-supervised-method": (
        "CreateFineTuningJobRequest",
        lambda fake: (
            "/v1/fine_tuning/jobs",
            {
                "model": "gpt-4o-mini",
                "training_file": _file(fake, "fine-tune", chat_file()),
                "method": {"type": "supervised", "supervised": {"hyperparameters": HYPER}},
            },
        ),
    ),
    "jobs-dpo-method": (
        "CreateFineTuningJobRequest",
        lambda fake: (
            "/v1/fine_tuning/jobs",
            {
                "model": "gpt-4.1-mini",
                "training_file": _file(fake, "fine-tune", chat_file()),
                "method": {"type": "dpo", "dpo": {"hyperparameters": {**HYPER, "beta": 0.5}}},
            },
        ),
    ),
    "batches": (
        "CreateBatchRequest",
        lambda fake: (
            "/v1/batches",
            {
                "input_file_id": _file(fake, "batch", embedding_lines([["a"]])),
                "endpoint": "/v1/embeddings",
                "completion_window": "24h",
                "metadata": {"k": "v"},
                "output_expires_after": {"anchor": "created_at", "seconds": 7200},
            },
        ),
    ),
    "uploads": (
        "CreateUploadRequest",
        lambda fake: (
            "/v1/uploads",
            {
                "filename": "x.jsonl",
                "purpose": "fine-tune",
                "bytes": 3,
                "mime_type": "text/jsonl",
                "expires_after": {"anchor": "created_at", "seconds": 3600},
            },
        ),
    ),
    "uploads-complete": ("CompleteUploadRequest", _upload_with_part),
    "chat-completions": ("CreateChatCompletionRequest", lambda fake: ("/v1/chat/completions", CHAT_REQUEST)),
    "chat-completions-json-schema": (
        "CreateChatCompletionRequest",
        lambda fake: (
            "/v1/chat/completions",
            {
                "model": "gpt-4.1-mini",
                "messages": [{"role": "developer", "content": [{"type": "text", "text": "Answer in JSON."}]}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
                },
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "stop": "END",
                "logprobs": True,
                "top_logprobs": 2,
                "reasoning_effort": "low",
                "verbosity": "low",
                "safety_identifier": "user-1",
            },
        ),
    ),
}
MIN_VIOLATIONS = {
    "embeddings": 10,
    "jobs-legacy-hyperparameters": 25,
    "jobs-dpo-method": 12,
    "batches": 8,
    "uploads": 8,
    "chat-completions": 60,
    "chat-completions-json-schema": 20,
}


def _send(fake: FakeOpenAI, path: str, body: Any) -> httpx.Response:
    with httpx.Client(transport=fake.transport, base_url="https://api.openai.com") as http:
        return http.post(path, json=body, headers=AUTH)


def _is_refusal(resp: httpx.Response) -> bool:
    if not 400 <= resp.status_code < 500:
        return False
    err = resp.json().get("error")
    return isinstance(err, dict) and set(err) == {"message", "type", "param", "code"} and bool(err["message"])


@pytest.mark.parametrize("case", list(JSON_CASES))
def test_requests_the_spec_rejects_are_refused(spec: Spec, case: str) -> None:
    schema_name, make = JSON_CASES[case]
    schema = spec.schema(schema_name)
    fake = FakeOpenAI()
    path, base = make(fake)
    assert spec.accepts(schema, base), list(spec.errors(schema, base, "$", response=False))
    ok = _send(fake, path, base)
    assert ok.status_code == 200, ok.text  # the positive control
    checked: set[str] = set()
    accepted: list[str] = []
    for description, where, replacement in spec.violations(schema, base):
        candidate = apply(base, where, replacement)
        if spec.accepts(schema, candidate):
            continue
        key = json.dumps(candidate, sort_keys=True, default=str)
        if key in checked:
            continue
        checked.add(key)
        fresh_path, fresh_base = make(fake)
        resp = _send(fake, fresh_path, apply(fresh_base, where, replacement))
        if not _is_refusal(resp):
            accepted.append(
                f"{description} at {'/'.join(map(str, where)) or '$'}: HTTP {resp.status_code} {resp.text[:200]}"
            )
    assert not accepted, "the spec rejects these but the fake did not:\n" + "\n".join(accepted)
    assert len(checked) >= MIN_VIOLATIONS.get(case, 1)


def _multipart(body: dict[str, Any]) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    data: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for key, value in body.items():
        if key == "file" and isinstance(value, bytes):
            files["file"] = ("train.jsonl", value)
        elif isinstance(value, dict):
            for sub, v in value.items():
                data[f"{key}[{sub}]"] = str(v)
        else:
            data[key] = value if isinstance(value, str) else json.dumps(value)
    return data, files


def test_file_uploads_the_spec_rejects_are_refused(spec: Spec) -> None:
    schema = spec.schema("CreateFileRequest")
    base: dict[str, Any] = {
        "file": chat_file(2),
        "purpose": "fine-tune",
        "expires_after": {"anchor": "created_at", "seconds": 3600},
    }
    fake = FakeOpenAI()

    def send(body: dict[str, Any]) -> httpx.Response:
        data, files = _multipart(body)
        with httpx.Client(transport=fake.transport) as http:
            return http.post(
                "https://api.openai.com/v1/files", data=data, files=files or {"none": ("n", b"")}, headers=AUTH
            )

    assert send(base).status_code == 200
    checked = 0
    accepted = []
    for description, where, replacement in spec.violations(schema, {**base, "file": "binary"}):
        candidate = apply({**base, "file": "binary"}, where, replacement)
        if not where or spec.accepts(schema, candidate):  # a multipart body is always an object
            continue
        body = apply(base, where, replacement)
        checked += 1
        resp = send(body)
        if not _is_refusal(resp):
            accepted.append(f"{description} at {where}: HTTP {resp.status_code} {resp.text[:200]}")
    assert not accepted, "\n".join(accepted)
    assert checked >= 6


def test_query_enums(spec: Spec) -> None:
    params = spec.doc["paths"]["/files"]["get"]["parameters"]
    order = next(p for p in params if p["name"] == "order")
    assert "sideways" not in order["schema"]["enum"]
    with httpx.Client(transport=FakeOpenAI().transport) as http:
        resp = http.get("https://api.openai.com/v1/files", params={"order": "sideways"}, headers=AUTH)
    assert _is_refusal(resp)
    assert resp.json()["error"]["param"] == "order"


# --- responses ------------------------------------------------------------------------------------------------


class Recorder(httpx.BaseTransport):
    """Passes requests to the fake and keeps every (request, response) pair."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        self.seen: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.fake.transport.handle_request(request)
        response.read()
        self.seen.append((request, response))
        return response


def _operation(spec: Spec, method: str, path: str) -> dict[str, Any]:
    rel = path.removeprefix("/v1")
    for template, item in spec.doc["paths"].items():
        regex = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(regex, rel) and method.lower() in item:
            return dict(item[method.lower()])
    raise AssertionError(f"no operation for {method} {path} in the spec")


def test_every_response_conforms_to_the_spec(spec: Spec) -> None:
    fake = FakeOpenAI()
    recorder = Recorder(fake)
    sdk = openai.OpenAI(api_key="sk-x", max_retries=0, http_client=httpx.Client(transport=recorder))  # type: ignore[arg-type]
    sdk.embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format="float")
    train = sdk.files.create(file=("t.jsonl", chat_file(12)), purpose="fine-tune")
    valid = sdk.files.create(file=("v.jsonl", chat_file(2)), purpose="fine-tune")
    sdk.files.list()
    sdk.files.retrieve(train.id)
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=train.id,
        validation_file=valid.id,
        hyperparameters={"n_epochs": 1},
        metadata={"a": "b"},
        integrations=[{"type": "wandb", "wandb": {"project": "p"}}],
    )
    fake.advance(30)
    sdk.fine_tuning.jobs.retrieve(job.id)
    fake.run_until_idle()
    done = sdk.fine_tuning.jobs.retrieve(job.id)
    list(sdk.fine_tuning.jobs.list())
    sdk.fine_tuning.jobs.list_events(job.id)
    sdk.fine_tuning.jobs.checkpoints.list(job.id)
    failed = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=valid.id)
    fake.run_until_idle()
    sdk.fine_tuning.jobs.retrieve(failed.id)
    cancelled = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=train.id)
    sdk.fine_tuning.jobs.cancel(cancelled.id)
    assert done.fine_tuned_model is not None
    sdk.models.retrieve(done.fine_tuned_model)
    batch_file = sdk.files.create(file=("b.jsonl", embedding_lines([["a"], [""]])), purpose="batch")
    batch = sdk.batches.create(input_file_id=batch_file.id, endpoint="/v1/embeddings", completion_window="24h")
    fake.run_until_idle()
    sdk.batches.retrieve(batch.id)
    sdk.batches.list()
    up = sdk.uploads.create(bytes=2, filename="u.jsonl", mime_type="text/jsonl", purpose="batch")
    part = sdk.uploads.parts.create(up.id, data=b"{}")
    sdk.uploads.complete(up.id, part_ids=[part.id])
    sdk.files.delete(train.id)
    sdk.chat.completions.create(**CHAT_REQUEST)
    sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], logprobs=True)
    sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
    )
    tuned = sdk.chat.completions.create(
        model=done.fine_tuned_model, messages=[{"role": "user", "content": "q"}], max_completion_tokens=1
    )
    assert tuned.choices[0].finish_reason in ("stop", "length")
    sdk.models.delete(done.fine_tuned_model)
    for bad in (
        lambda: sdk.files.retrieve("file-nope"),
        lambda: sdk.embeddings.create(model="m", input="x"),
        lambda: sdk.chat.completions.create(model=done.fine_tuned_model, messages=[{"role": "user", "content": "q"}]),
    ):
        with pytest.raises(openai.APIStatusError):
            bad()

    error_schema = spec.schema("ErrorResponse")
    checked = 0
    problems: list[str] = []
    for request, response in recorder.seen:
        if not response.headers.get("content-type", "").startswith("application/json"):
            continue
        body = response.json()
        if response.status_code >= 400:
            schema = error_schema
        else:
            op = _operation(spec, request.method, request.url.path)
            schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        errors = list(spec.errors(schema, body, "$", response=True))
        checked += 1
        if errors:
            problems.append(f"{request.method} {request.url.path}: {errors[:3]}")
    assert not problems, "\n".join(problems)
    assert checked >= 25
