"""What a chat completion returns: :class:`ChatResult` (the first choice made convenient, the whole body kept)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion

__all__ = ["ChatResult", "ChatUsage", "ToolCallResult"]


@dataclass(frozen=True)
class ToolCallResult:
    """One function call the model made: ``name`` and ``arguments`` (a JSON string, as the model wrote it)."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> Any:
        """``arguments`` parsed as JSON (``json.JSONDecodeError`` when the model wrote invalid JSON)."""
        return json.loads(self.arguments)

    def to_dict(self) -> dict[str, Any]:
        """The call in the API's shape (``{"id", "type": "function", "function": {"name", "arguments"}}``)."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class ChatUsage:
    """Tokens of one completion as the server counted them (``cached_tokens``: prompt tokens served from the
    provider's prompt cache, billed at a discount)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def from_api(cls, usage: Any) -> ChatUsage:
        """From the response's ``usage`` object (missing fields count as 0)."""
        if not isinstance(usage, dict):
            return cls()

        def number(value: Any) -> int:
            return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0

        details = usage.get("prompt_tokens_details")
        cached = number(details.get("cached_tokens")) if isinstance(details, dict) else 0
        prompt = number(usage.get("prompt_tokens"))
        completion = number(usage.get("completion_tokens"))
        total = number(usage.get("total_tokens")) or prompt + completion
        return cls(prompt, completion, total, cached)


def _tool_calls(message: dict[str, Any]) -> tuple[ToolCallResult, ...]:
    calls = message.get("tool_calls")
    out: list[ToolCallResult] = []
    if isinstance(calls, list):
        for call in calls:
            if not isinstance(call, dict):
                continue
            fn: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
            arguments = fn.get("arguments")
            out.append(
                ToolCallResult(
                    id=str(call.get("id") or ""),
                    name=str(fn.get("name") or ""),
                    arguments=arguments if isinstance(arguments, str) else json.dumps(arguments),
                )
            )
    legacy = message.get("function_call")
    if not out and isinstance(legacy, dict):
        out.append(ToolCallResult(id="", name=str(legacy.get("name") or ""), arguments=str(legacy.get("arguments"))))
    return tuple(out)


@dataclass(frozen=True)
class ChatResult:
    """One chat completion.

    ``content``, ``tool_calls``, ``refusal`` and ``finish_reason`` are those of the first choice (``choices``
    has them all, as the API's dicts); ``usage`` the server's token counts; ``latency`` the seconds the request
    took when it was sent (kept in the cache, so a cached result reports the original latency); ``cached``
    whether this call was answered from the response cache (nothing sent, nothing paid); ``raw`` the whole
    response body.
    """

    model: str
    content: str | None
    tool_calls: tuple[ToolCallResult, ...]
    finish_reason: str | None
    refusal: str | None
    usage: ChatUsage
    latency: float
    cached: bool
    raw: dict[str, Any] = field(repr=False)
    request_id: str | None = None

    @classmethod
    def from_response(
        cls, body: dict[str, Any], *, latency: float, cached: bool, request_id: str | None = None
    ) -> ChatResult:
        """Build from a response body (already checked to have at least one choice with a message)."""
        choice = body["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, list):  # some compatible servers answer with content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        refusal = message.get("refusal")
        return cls(
            model=str(body.get("model") or ""),
            content=content if isinstance(content, str) else None,
            tool_calls=_tool_calls(message),
            finish_reason=choice.get("finish_reason"),
            refusal=refusal if isinstance(refusal, str) else None,
            usage=ChatUsage.from_api(body.get("usage")),
            latency=float(latency),
            cached=cached,
            raw=body,
            request_id=request_id,
        )

    @property
    def choices(self) -> list[dict[str, Any]]:
        """Every choice of the response (``n`` > 1 asks for several), as the API's dicts."""
        choices = self.raw.get("choices")
        return list(choices) if isinstance(choices, list) else []

    @property
    def message(self) -> dict[str, Any]:
        """The first choice's message as a dict, ready to append to a conversation."""
        out: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        return out

    @property
    def text(self) -> str:
        """The reply as text: ``content``, else the refusal, else the tool calls as JSON (``""`` when empty)."""
        if self.content:
            return self.content
        if self.refusal:
            return self.refusal
        if self.tool_calls:
            return json.dumps([{"name": c.name, "arguments": c.arguments} for c in self.tool_calls])
        return self.content or ""

    def to_openai(self) -> ChatCompletion:
        """The response as the ``openai`` SDK's ``ChatCompletion`` model."""
        from openai.types.chat import ChatCompletion

        return ChatCompletion.model_validate(self.raw)
