"""``POST /v1/chat/completions``: validated like the service, usage counted with tiktoken, rate limits applied, and
answers that are deterministic and explainable.

* **Base models** (the catalog's fine-tunable chat models and their aliases) answer generically: one fixed sentence
  that quotes the start of the last user message. They never know a task's labels, so they score low on any task.
* **Fine-tuned models** (``ft:...`` and their checkpoints, once their job succeeded) answer with the assistant reply
  of their **nearest training example**: the conversation without system messages is embedded with the fake's own
  vectors (:meth:`FakeOpenAI.embedding`, ``text-embedding-3-small``) and compared by cosine with every training
  example's conversation before each of its assistant replies (ties: the earliest). A held-out example is answered
  correctly exactly when its nearest training neighbour carries the same answer, which a test can compute.

Tool calls come back as tool calls (with fresh ids) when the request has ``tools``; ``tool_choice`` ``"required"``
or a named function makes any model call a function with arguments filled from its JSON schema;
``response_format`` ``json_object`` / ``json_schema`` makes the reply a JSON object; ``max_completion_tokens``
cuts the reply (``finish_reason: "length"``); ``stop`` cuts it at a stop sequence; ``n`` repeats the choice.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..catalog import FineTuneModelInfo, default_catalog
from ..chat._request import completion_tokens, prompt_tokens
from ..tokenizer import Tokenizer
from ._errors import ApiError, bad_request, not_found
from ._http import FakeRequest, FakeResponse
from ._validate import (
    check_enum,
    check_int,
    check_metadata,
    check_number,
    check_object,
    check_string,
    json_type,
    require,
)

if TYPE_CHECKING:
    from ._fake import FakeOpenAI
    from ._state import JobRecord

__all__ = ["ChatMemory", "conversation_text", "handle_chat_completions"]

ALLOWED_KEYS = frozenset(
    {
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n", "parallel_tool_calls",
        "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
        "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store",
        "stream", "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
        "verbosity", "web_search_options",
    }
)  # fmt: skip
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
MESSAGE_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset({"role", "content", "name", "refusal", "tool_calls", "function_call", "audio"}),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "content", "name"}),
}
PART_TYPES: dict[str, tuple[str, ...]] = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
}
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority", "fast")
INT64 = 2**63
FINGERPRINT = "fp_fake0000"
_NOT_CHAT = (
    "This is not a chat model and thus not supported in the v1/chat/completions endpoint. Did you mean to use "
    "v1/completions?"
)


# --- validation -------------------------------------------------------------------------------------------------


def _invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _nullable(body: dict[str, Any], key: str) -> Any:
    return body.get(key)


def _content(value: Any, param: str, role: str, *, required: bool) -> None:
    if value is None:
        if required:
            raise _invalid_type(param, "one of a string or array of objects", value)
        return
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise _invalid_type(param, "one of a string or array of objects", value)
    if not value:
        raise bad_request(
            f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param=param,
            code="empty_array",
        )
    for j, part in enumerate(value):
        where = f"{param}[{j}]"
        obj = check_object(part, where)
        require(obj, "type", prefix=f"{where}.")
        kind = check_enum(obj["type"], PART_TYPES[role], f"{where}.type")
        if kind in ("text", "refusal"):
            require(obj, kind, prefix=f"{where}.")
            check_string(obj[kind], f"{where}.{kind}")
        elif kind == "image_url":
            require(obj, "image_url", prefix=f"{where}.")
            image = check_object(obj["image_url"], f"{where}.image_url")
            require(image, "url", prefix=f"{where}.image_url.")
            check_string(image["url"], f"{where}.image_url.url")


def _tool_call(call: Any, param: str) -> str:
    obj = check_object(call, param)
    require(obj, "id", "type", prefix=f"{param}.")
    check_string(obj["id"], f"{param}.id")
    kind = check_enum(obj["type"], ["function", "custom"], f"{param}.type")
    if kind == "function":
        require(obj, "function", prefix=f"{param}.")
        fn = check_object(obj["function"], f"{param}.function")
        require(fn, "name", "arguments", prefix=f"{param}.function.")
        check_string(fn["name"], f"{param}.function.name")
        check_string(fn["arguments"], f"{param}.function.arguments")
    else:
        require(obj, "custom", prefix=f"{param}.")
    return str(obj["id"])


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _invalid_type("messages", "an array", value)
    if not value:
        raise bad_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    open_calls: list[str] = []
    for i, message in enumerate(value):
        param = f"messages[{i}]"
        obj = check_object(message, param)
        require(obj, "role", prefix=f"{param}.")
        role = check_enum(obj["role"], ROLES, f"{param}.role")
        for key in obj:
            if key not in MESSAGE_KEYS[role]:
                raise bad_request(
                    f"Unrecognized request argument supplied: {param}.{key}", param=f"{param}.{key}", code=None
                )
        if role == "tool":
            require(obj, "content", "tool_call_id", prefix=f"{param}.")
            call_id = check_string(obj["tool_call_id"], f"{param}.tool_call_id")
            if call_id not in open_calls:
                raise bad_request(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
                    "'tool_calls'.",
                    param=f"{param}.role",
                )
            open_calls.remove(str(call_id))
        elif open_calls:
            raise bad_request(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(open_calls)}",
                param=f"{param}.role",
            )
        if role == "function":
            require(obj, "content", "name", prefix=f"{param}.")
            check_string(obj["content"], f"{param}.content", nullable=True)
        elif role != "tool":
            if role != "assistant":
                require(obj, "content", prefix=f"{param}.")
            _content(obj.get("content"), f"{param}.content", role, required=role != "assistant")
        else:
            _content(obj.get("content"), f"{param}.content", role, required=True)
        if "name" in obj:
            check_string(obj["name"], f"{param}.name")
        if role == "assistant":
            calls = obj.get("tool_calls")
            if calls is not None:
                if not isinstance(calls, list):
                    raise _invalid_type(f"{param}.tool_calls", "an array", calls)
                open_calls = [_tool_call(c, f"{param}.tool_calls[{j}]") for j, c in enumerate(calls)]
            check_string(obj.get("refusal"), f"{param}.refusal", nullable=True)
            if obj.get("content") is None and not calls and obj.get("function_call") is None:
                raise bad_request(
                    f"Invalid value for '{param}.content': expected a string, got null.",
                    param=f"{param}.content",
                    code="invalid_value",
                )
    return value


def _tools(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _invalid_type("tools", "an array", value)
    names: set[str] = set()
    for i, tool in enumerate(value):
        param = f"tools[{i}]"
        obj = check_object(tool, param)
        require(obj, "type", prefix=f"{param}.")
        kind = check_enum(obj["type"], ["function", "custom"], f"{param}.type")
        require(obj, kind, prefix=f"{param}.")
        spec = check_object(obj[kind], f"{param}.{kind}")
        require(spec, "name", prefix=f"{param}.{kind}.")
        name = check_string(spec["name"], f"{param}.{kind}.name", min_length=1, max_length=64)
        check_string(spec.get("description"), f"{param}.{kind}.description", nullable=True)
        if kind == "function":
            if "parameters" in spec and spec["parameters"] is not None:
                check_object(spec["parameters"], f"{param}.function.parameters")
            strict = spec.get("strict")
            if strict is not None and not isinstance(strict, bool):
                raise _invalid_type(f"{param}.function.strict", "a boolean", strict)
        if name in names:
            raise bad_request(
                f"Invalid 'tools': duplicate function name '{name}'.", param="tools", code="invalid_value"
            )
        names.add(str(name))
    return value


def _tool_choice(value: Any, tools: list[dict[str, Any]] | None) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        choice = check_enum(value, ["none", "auto", "required"], "tool_choice")
    elif isinstance(value, dict):
        require(value, "type", prefix="tool_choice.")
        kind = check_enum(value["type"], ["function", "custom", "allowed_tools"], "tool_choice.type")
        require(value, kind, prefix="tool_choice.")
        inner = check_object(value[kind], f"tool_choice.{kind}")
        if kind != "allowed_tools":
            require(inner, "name", prefix=f"tool_choice.{kind}.")
            check_string(inner["name"], f"tool_choice.{kind}.name")
            known = {t.get(t["type"], {}).get("name") for t in tools or []}
            if inner["name"] not in known:
                raise bad_request(
                    f"Invalid value for 'tool_choice': tool '{inner['name']}' was not found in 'tools'.",
                    param="tool_choice",
                    code="invalid_value",
                )
        choice = kind
    else:
        raise _invalid_type("tool_choice", "one of a string or object", value)
    if choice != "none" and not tools:
        raise bad_request(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            param="tool_choice",
        )
    return value


def _response_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    obj = check_object(value, "response_format")
    require(obj, "type", prefix="response_format.")
    kind = check_enum(obj["type"], ["text", "json_schema", "json_object"], "response_format.type")
    if kind == "json_schema":
        require(obj, "json_schema", prefix="response_format.")
        spec = check_object(obj["json_schema"], "response_format.json_schema")
        require(spec, "name", prefix="response_format.json_schema.")
        check_string(spec["name"], "response_format.json_schema.name", min_length=1, max_length=64)
        check_string(spec.get("description"), "response_format.json_schema.description", nullable=True)
        if spec.get("schema") is not None:
            check_object(spec["schema"], "response_format.json_schema.schema")
        strict = spec.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise _invalid_type("response_format.json_schema.strict", "a boolean", strict)
    return obj


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise _invalid_type("stop", "one of a string or array of strings", value)
    if not 1 <= len(value) <= 4:
        raise bad_request(
            f"Invalid 'stop': array of {len(value)} items. Expected an array with between 1 and 4 items.",
            param="stop",
            code="array_above_max_length" if value else "empty_array",
        )
    for i, item in enumerate(value):
        check_string(item, f"stop[{i}]")
    return list(value)


def _logit_bias(value: Any) -> None:
    if value is None:
        return
    obj = check_object(value, "logit_bias")
    for token, bias in obj.items():
        check_int(bias, f"logit_bias.{token}", minimum=-100, maximum=100)


def _bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _invalid_type(key, "a boolean", value)
    return value


@dataclass
class ChatCall:
    """A validated chat request."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    tool_choice: Any
    response_format: dict[str, Any] | None
    n: int
    max_tokens: int | None
    stop: list[str]
    logprobs: bool
    service_tier: str | None
    parallel_tool_calls: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def parse_chat_request(body: dict[str, Any], *, model_override: str | None = None) -> ChatCall:
    """Validate a chat request the way the service does; raise :class:`ApiError` otherwise."""
    unknown = sorted(k for k in body if k not in ALLOWED_KEYS)
    if unknown:
        raise bad_request(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
    require(body, "model", "messages")
    model = body["model"] if model_override is None else model_override
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    if not model:
        raise bad_request("you must provide a model parameter", param="model")
    messages = _messages(body["messages"])
    for key, low, high in (("temperature", 0, 2), ("top_p", 0, 1), ("frequency_penalty", -2, 2)):
        if body.get(key) is not None:
            check_number(body[key], key, minimum=low, maximum=high)
    if body.get("presence_penalty") is not None:
        check_number(body["presence_penalty"], "presence_penalty", minimum=-2, maximum=2)
    n = check_int(body["n"], "n", minimum=1, maximum=128) if body.get("n") is not None else 1
    max_tokens = None
    for key in ("max_tokens", "max_completion_tokens"):
        if body.get(key) is not None:
            max_tokens = check_int(body[key], key, minimum=1)
    if body.get("seed") is not None:
        check_int(body["seed"], "seed", minimum=-INT64, maximum=INT64 - 1)
    logprobs = bool(_bool(body, "logprobs"))
    if body.get("top_logprobs") is not None:
        top = check_int(body["top_logprobs"], "top_logprobs", minimum=0, maximum=20)
        if top and not logprobs:
            raise bad_request(
                "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is given.",
                param="top_logprobs",
                code="invalid_value",
            )
    for key in ("store", "parallel_tool_calls"):
        _bool(body, key)
    if _bool(body, "stream"):
        raise bad_request(
            "FakeOpenAI does not stream chat completions; send stream=false (or leave it out).", param="stream"
        )
    for key in ("user", "safety_identifier", "prompt_cache_key"):
        if body.get(key) is not None:
            check_string(body[key], key, max_length=64 if key == "safety_identifier" else None)
    check_metadata(body.get("metadata"))
    tier = body.get("service_tier")
    if tier is not None:
        tier = check_enum(tier, SERVICE_TIERS, "service_tier")
    for key, options in (
        ("reasoning_effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"]),
        ("verbosity", ["low", "medium", "high"]),
        ("prompt_cache_retention", ["in_memory", "24h"]),
    ):
        if body.get(key) is not None:
            check_enum(body[key], options, key)
    _logit_bias(body.get("logit_bias"))
    stop = _stop(body.get("stop"))
    tools = _tools(body["tools"]) if body.get("tools") is not None else None
    tool_choice = _tool_choice(body.get("tool_choice"), tools)
    response_format = _response_format(body.get("response_format"))
    assert isinstance(n, int)
    return ChatCall(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        response_format=response_format,
        n=n,
        max_tokens=int(max_tokens) if max_tokens is not None else None,
        stop=stop,
        logprobs=logprobs,
        service_tier=tier,
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
    )


# --- the models ---------------------------------------------------------------------------------------------------


def conversation_text(messages: list[Any]) -> str:
    """What a fine-tuned model compares: every non-system message's text (content, text parts, refusals, tool
    calls as ``name(arguments)``), one per line."""
    lines: list[str] = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") in ("system", "developer"):
            continue
        content = m.get("content")
        if isinstance(content, str):
            lines.append(content)
        elif isinstance(content, list):
            lines.extend(str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict))
        for call in m.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                lines.append(f"{fn.get('name', '')}({fn.get('arguments', '')})")
    return "\n".join(line for line in lines if line)


@dataclass
class ChatMemory:
    """What a fine-tuned model learned: each training conversation's text before an assistant reply, the reply,
    and the fake's unit vectors of the texts (``(n, d)``)."""

    prompts: list[str]
    replies: list[dict[str, Any]]
    vectors: npt.NDArray[np.float32]

    def nearest(self, vector: npt.NDArray[np.float32]) -> int | None:
        """The index of the most similar prompt (the earliest on a tie), or ``None`` without examples."""
        if not self.prompts:
            return None
        return int(np.argmax(self.vectors @ vector))


def _training_pairs(content: bytes) -> list[tuple[list[Any], dict[str, Any]]]:
    pairs: list[tuple[list[Any], dict[str, Any]]] = []
    for line in content.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except ValueError:
            continue
        if not isinstance(example, dict):
            continue
        if isinstance(example.get("messages"), list):
            messages = example["messages"]
            for i, m in enumerate(messages):
                if isinstance(m, dict) and m.get("role") == "assistant" and m.get("weight", 1) != 0:
                    pairs.append((messages[:i], m))
        elif isinstance(example.get("input"), dict) and isinstance(example.get("preferred_output"), list):
            preferred = [m for m in example["preferred_output"] if isinstance(m, dict)]
            if preferred:
                pairs.append((list(example["input"].get("messages") or []), preferred[0]))
        elif isinstance(example.get("prompt"), str) and isinstance(example.get("completion"), str):
            pairs.append(([{"role": "user", "content": example["prompt"]}], {"content": example["completion"]}))
    return pairs


_memory_lock = threading.Lock()


def _memory(fake: FakeOpenAI, job: JobRecord) -> ChatMemory:
    with _memory_lock:
        found: ChatMemory | None = fake._chat_memory.get(job.id)
        if found is not None:
            return found
    pairs = _training_pairs(job.training_content or b"")
    prompts = [conversation_text(p) for p, _ in pairs]
    vectors = (
        np.stack([fake.embedding(t or " ") for t in prompts]) if prompts else np.zeros((0, 1536), dtype=np.float32)
    )
    memory = ChatMemory(prompts, [r for _, r in pairs], vectors)
    with _memory_lock:
        fake._chat_memory[job.id] = memory
    return memory


def _fine_tuned_job(fake: FakeOpenAI, model: str) -> JobRecord | None:
    with fake.store.lock:
        if model not in fake.store.models:
            return None
        for job in fake.store.jobs.values():
            if job.fine_tuned_model == model or any(
                c.get("fine_tuned_model_checkpoint") == model for c in job.checkpoints
            ):
                return job
    return None


def _base_model(fake: FakeOpenAI, model: str) -> FineTuneModelInfo | None:
    info = default_catalog().find_fine_tune_model(model)
    if info is None or model.startswith("ft:"):
        return None
    return info


# --- answers ------------------------------------------------------------------------------------------------------


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return conversation_text([m])
    return conversation_text(messages)


def generic_reply(messages: list[dict[str, Any]]) -> str:
    """A base model's answer: the same helpful-sounding sentence for every task, quoting the question's start."""
    words = _last_user_text(messages).split()
    quoted = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
    if not quoted:
        return "Hello! How can I help you today?"
    return f'Thanks for your message. Here is a general answer to "{quoted}": it depends on the details of your case.'


def _placeholder(schema: Any, depth: int = 0) -> Any:
    """A value that fits a JSON schema: required properties filled, the first enum value, zeros and empty text."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _placeholder(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        props: dict[str, Any] = schema["properties"] if isinstance(schema.get("properties"), dict) else {}
        required: list[Any] = schema["required"] if isinstance(schema.get("required"), list) else list(props)
        return {k: _placeholder(props.get(k), depth + 1) for k in required if k in props}
    if kind == "array":
        return []
    if kind == "string":
        return "example"
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return None


def _call_id(seed: str, i: int) -> str:
    return "call_" + hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()[:24]


def _forced_function(call: ChatCall) -> dict[str, Any] | None:
    """The function ``tool_choice`` forces (named, or the first one for ``"required"``), else ``None``."""
    choice = call.tool_choice
    tools = [t for t in call.tools or [] if t.get("type") == "function"]
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice["function"]["name"]
        return next((t["function"] for t in tools if t["function"].get("name") == name), None)
    if choice == "required" and tools:
        return dict(tools[0]["function"])
    return None


def _json_reply(call: ChatCall, text: str) -> str:
    fmt = call.response_format or {}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return text
        value = _placeholder(schema) if schema else {}
        return json.dumps(value if isinstance(value, dict) else {"response": text})
    try:
        if isinstance(json.loads(text), dict):
            return text
    except ValueError:
        pass
    return json.dumps({"response": text})


def answer(fake: FakeOpenAI, call: ChatCall, job: JobRecord | None) -> tuple[dict[str, Any], str]:
    """The assistant message and finish reason for a validated call."""
    seed = hashlib.sha256(json.dumps([call.model, call.messages], sort_keys=True).encode()).hexdigest()
    forced = _forced_function(call)
    if forced is not None:
        params = forced.get("parameters") if isinstance(forced.get("parameters"), dict) else {}
        arguments = json.dumps(_placeholder(params) or {})
        learned = _learned_reply(fake, call, job)
        if learned is not None:  # a fine-tuned model that learned to call this function keeps its arguments
            for c in learned.get("tool_calls") or []:
                fn = c.get("function") if isinstance(c, dict) else None
                if isinstance(fn, dict) and fn.get("name") == forced.get("name"):
                    arguments = str(fn.get("arguments"))
                    break
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": _call_id(seed, 0),
                    "type": "function",
                    "function": {"name": forced["name"], "arguments": arguments},
                }
            ],
        }
        return message, "tool_calls" if call.tool_choice == "required" else "stop"
    learned = _learned_reply(fake, call, job)
    if learned is not None and learned.get("tool_calls") and call.tools and call.tool_choice != "none":
        known = {t.get("function", {}).get("name") for t in call.tools if t.get("type") == "function"}
        calls = [
            {
                "id": _call_id(seed, i),
                "type": "function",
                "function": {"name": c["function"]["name"], "arguments": c["function"].get("arguments", "{}")},
            }
            for i, c in enumerate(learned["tool_calls"])
            if isinstance(c, dict) and isinstance(c.get("function"), dict) and c["function"].get("name") in known
        ]
        if not call.parallel_tool_calls:
            calls = calls[:1]
        if calls:
            return {"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"
    text: str
    if learned is not None and isinstance(learned.get("content"), str):
        text = learned["content"]
    elif learned is not None and isinstance(learned.get("content"), list):
        text = "".join(str(p.get("text", "")) for p in learned["content"] if isinstance(p, dict))
    else:
        text = generic_reply(call.messages)
    if (call.response_format or {}).get("type") in ("json_object", "json_schema"):
        text = _json_reply(call, text)
    return {"role": "assistant", "content": text}, "stop"


def _learned_reply(fake: FakeOpenAI, call: ChatCall, job: JobRecord | None) -> dict[str, Any] | None:
    if job is None:
        return None
    memory = _memory(fake, job)
    index = memory.nearest(fake.embedding(conversation_text(call.messages) or " "))
    return memory.replies[index] if index is not None else None


def _limit(message: dict[str, Any], finish: str, call: ChatCall, tokenizer: Tokenizer) -> tuple[dict[str, Any], str]:
    text = message.get("content")
    if not isinstance(text, str):
        return message, finish
    for stop in call.stop:
        if stop and stop in text:
            text = text[: text.index(stop)]
            finish = "stop"
    if call.max_tokens is not None:
        tokens = tokenizer.encode(text)
        if len(tokens) > call.max_tokens:
            text = tokenizer.decode(tokens[: call.max_tokens])
            finish = "length"
    return {**message, "content": text}, finish


def _logprobs(text: str | None, tokenizer: Tokenizer) -> dict[str, Any]:
    tokens = tokenizer.encode(text or "")
    content = []
    for t in tokens:
        piece = tokenizer.encoding.decode_single_token_bytes(t)
        content.append(
            {
                "token": piece.decode("utf-8", "replace"),
                "logprob": 0.0,
                "bytes": list(piece),
                "top_logprobs": [],
            }
        )
    return {"content": content, "refusal": None}


# --- the handler ----------------------------------------------------------------------------------------------------


def _resolve(fake: FakeOpenAI, model: str) -> tuple[str, FineTuneModelInfo, JobRecord | None]:
    missing = not_found(
        f"The model `{model}` does not exist or you do not have access to it.", param="model", code="model_not_found"
    )
    if model.startswith("ft:"):
        job = _fine_tuned_job(fake, model)
        if job is None:
            raise missing
        return model, default_catalog().fine_tune_model(job.base_model, warn=False), job
    extra = fake._chat_models.get(model)
    if extra is not None:
        return model, extra, None
    base = _base_model(fake, model)
    if base is None:
        raise missing
    if base.prompt_completion:
        raise ApiError(404, _NOT_CHAT, param="model", code=None)
    return base.name, base, None


def handle_chat_completions(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/chat/completions`` (and Azure's ``/openai/deployments/{name}/chat/completions``)."""
    body = req.json_object()
    override = None
    if req.layout == "azure":
        override = fake.deployment_model(req.params["deployment"])
    call = parse_chat_request(body, model_override=override)
    name, info, job = _resolve(fake, call.model)
    req.meta["model"] = call.model
    req.meta["n_inputs"] = 1
    tokenizer = Tokenizer(info.encoding)
    prompt = prompt_tokens(call.messages, call.tools, tokenizer.count)
    reserved = prompt + (call.max_tokens or 0) * call.n
    headers = fake.rate_limiter.acquire(call.model, reserved, fake.clock.now())
    message, finish = answer(fake, call, job)
    message, finish = _limit(message, finish, call, tokenizer)
    completion = completion_tokens(message, tokenizer.count)
    out_message: dict[str, Any] = {
        "role": "assistant",
        "content": message.get("content"),
        "refusal": None,
        "annotations": [],
    }
    if message.get("tool_calls"):
        out_message["tool_calls"] = message["tool_calls"]
    choices = [
        {
            "index": i,
            "message": json.loads(json.dumps(out_message)),
            "logprobs": _logprobs(message.get("content"), tokenizer) if call.logprobs else None,
            "finish_reason": finish,
        }
        for i in range(call.n)
    ]
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion * call.n,
        "total_tokens": prompt + completion * call.n,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    result = {
        "id": fake.new_id("chatcmpl-", 29),
        "object": "chat.completion",
        "created": int(fake.clock.now()),
        "model": name,
        "choices": choices,
        "usage": usage,
        "service_tier": "default" if call.service_tier in (None, "auto", "default") else call.service_tier,
        "system_fingerprint": FINGERPRINT,
    }
    req.meta["tokens"] = usage["total_tokens"]
    fake.ledger.bill_chat(prompt, completion * call.n)
    headers["openai-model"] = name
    return FakeResponse.json(result, headers=headers)
