"""One chat request: its body, checked locally; its cache key; its token estimate for rate pacing."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .._exceptions import ConfigError

__all__ = ["NOT_KEYED", "ChatRequest", "completion_tokens", "prompt_tokens"]

# request fields that do not change the answer: left out of the cache key
NOT_KEYED = frozenset(
    {
        "user",
        "metadata",
        "store",
        "stream",
        "stream_options",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "service_tier",
    }
)
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


#: How deep a request's JSON may nest (the API's own limit is far lower; this keeps Python's recursion safe).
MAX_DEPTH = 100


def _plain(value: Any, where: str, depth: int = 0) -> Any:
    """``value`` as plain JSON data (pydantic models dumped), or a :class:`ConfigError` naming ``where``."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"{where[:200]} is nested more than {MAX_DEPTH} levels deep; flatten it.")
    if isinstance(value, BaseModel):
        to_dict = getattr(value, "to_dict", None)
        return to_dict() if callable(to_dict) else value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} is {value}, which JSON cannot carry; pass a finite number.")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ConfigError(f"{where} is a {type(value).__name__}, which cannot be sent as JSON.")


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise ConfigError('messages must be a non-empty list of messages such as [{"role": "user", "content": "Hi"}].')
    out = _plain(list(messages), "messages")
    for i, message in enumerate(out):
        if not isinstance(message, dict):
            raise ConfigError(f"messages[{i}] is a {type(message).__name__}, not a message object (a dict).")
        role = message.get("role")
        if role not in _ROLES:
            raise ConfigError(f"messages[{i}].role is {role!r}; it must be one of {', '.join(_ROLES)}.")
    return list(out)


@dataclass(frozen=True)
class ChatRequest:
    """A chat completion request: ``model``, ``messages`` and every other body field in ``params``
    (``tools``, ``tool_choice``, ``temperature``, ``max_completion_tokens``, ``response_format``, ...).

    >>> req = ChatRequest.build("gpt-4o-mini", [{"role": "user", "content": "Hi"}], temperature=0)
    >>> req.body()["temperature"], len(req.key("https://api.openai.com/v1"))
    (0, 32)
    """

    model: str
    messages: tuple[Any, ...]
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def build(cls, model: str, messages: Sequence[Any], **params: Any) -> ChatRequest:
        """Check and normalise the arguments (typed :class:`~finetune_embed.ConfigError` when wrong)."""
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"model must be a non-empty string (a model name or an Azure deployment), got {model!r}")
        checked = _check_messages(messages)
        if params.get("stream"):
            raise ConfigError("stream=True is not supported here; use client.openai for streaming.")
        if (
            "n" in params
            and params["n"] is not None
            and (isinstance(params["n"], bool) or not isinstance(params["n"], int) or params["n"] < 1)
        ):
            raise ConfigError(f"n must be a positive integer, got {params['n']!r}")
        clean = {k: _plain(v, k) for k, v in params.items() if v is not None and k not in ("model", "messages")}
        return cls(model, tuple(checked), tuple(sorted(clean.items())))

    def body(self) -> dict[str, Any]:
        """The JSON body to send."""
        return {"model": self.model, "messages": list(self.messages), **dict(self.params)}

    def key(self, namespace: str) -> bytes:
        """The cache key: the SHA-256 of ``namespace`` (the server) and the canonical JSON of every field that
        shapes the answer (model, messages, tools, sampling parameters; not ``user``, ``metadata``, ...)."""
        keyed = {k: v for k, v in self.body().items() if k not in NOT_KEYED}
        text = json.dumps(keyed, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(f"{namespace}\n{text}".encode("utf-8", "surrogatepass")).digest()

    @property
    def tools(self) -> list[Any] | None:
        """The request's ``tools``, if any."""
        tools = dict(self.params).get("tools")
        return tools if isinstance(tools, list) else None

    def max_output_tokens(self) -> int:
        """The completion tokens the request may produce in all (``max_completion_tokens`` or the deprecated
        ``max_tokens``, times ``n``); 0 when unbounded."""
        p = dict(self.params)
        limit = p.get("max_completion_tokens") or p.get("max_tokens") or 0
        n = p.get("n") or 1
        return int(limit) * int(n) if isinstance(limit, int) and isinstance(n, int) else 0


def prompt_tokens(messages: Sequence[Any], tools: Sequence[Any] | None, count: Any) -> int:
    """The prompt's tokens as the OpenAI cookbook counts them: 3 per message, the tokens of each field (non-text
    values as JSON), 1 more for a ``name``, 3 to prime the reply; plus the tools' JSON when there are tools."""
    from ..dataset._tokens import cookbook_example_tokens

    total, _assistant, _n = cookbook_example_tokens({"messages": list(messages)}, count)
    if tools:
        total += int(count(json.dumps(list(tools), ensure_ascii=False, separators=(",", ":"))))
    return int(total)


def completion_tokens(message: Mapping[str, Any], count: Any) -> int:
    """Tokens of a reply: its content, or each tool call's name and arguments (with 3 tokens of framing)."""
    content = message.get("content")
    total = int(count(content)) if isinstance(content, str) else 0
    for call in message.get("tool_calls") or []:
        fn = (call.get("function") or {}) if isinstance(call, dict) else {}
        total += 3 + int(count(str(fn.get("name", "")))) + int(count(str(fn.get("arguments", ""))))
    return total
