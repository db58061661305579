"""Answers (a reference from the data or a model's reply) and the examples an evaluation runs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..chat._types import ChatResult, ToolCallResult

__all__ = ["Answer", "EvalExample", "conversation_text", "examples_from_rows"]


@dataclass(frozen=True)
class Answer:
    """What an assistant said: ``content`` (text or ``None``) and/or ``tool_calls``."""

    content: str | None = None
    tool_calls: tuple[ToolCallResult, ...] = ()
    refusal: str | None = None

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> Answer:
        """From an assistant message of the data (``content`` may be text parts; ``tool_calls`` / legacy
        ``function_call`` become :class:`~finetune_embed.chat.ToolCallResult`)."""
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        calls: list[ToolCallResult] = []
        for call in message.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                args = fn.get("arguments")
                calls.append(
                    ToolCallResult(
                        id=str(call.get("id") or ""),
                        name=str(fn.get("name") or ""),
                        arguments=args if isinstance(args, str) else json.dumps(args),
                    )
                )
        legacy = message.get("function_call")
        if not calls and isinstance(legacy, dict):
            args = legacy.get("arguments")
            calls.append(
                ToolCallResult(
                    id="",
                    name=str(legacy.get("name") or ""),
                    arguments=args if isinstance(args, str) else json.dumps(args),
                )
            )
        refusal = message.get("refusal")
        return cls(
            content if isinstance(content, str) else None,
            tuple(calls),
            refusal if isinstance(refusal, str) else None,
        )

    @classmethod
    def from_result(cls, result: ChatResult | None) -> Answer:
        """A model's reply (an empty answer when the request failed)."""
        if result is None:
            return cls()
        return cls(result.content, result.tool_calls, result.refusal)

    @property
    def text(self) -> str:
        """The answer as one text: the content, else the refusal, else the tool calls as JSON."""
        if self.content:
            return self.content
        if self.refusal:
            return self.refusal
        if self.tool_calls:
            return json.dumps([{"name": c.name, "arguments": c.arguments} for c in self.tool_calls], ensure_ascii=False)
        return ""

    @property
    def empty(self) -> bool:
        """No content, refusal or tool call."""
        return not (self.content or self.refusal or self.tool_calls)


def conversation_text(messages: Sequence[Any]) -> str:
    """The text of a conversation without its system / developer messages: contents, text parts and tool calls
    (``name(arguments)``), one per line. What embeddings compare to find similar prompts."""
    lines: list[str] = []
    for m in messages:
        if not isinstance(m, Mapping) or m.get("role") in ("system", "developer"):
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


@dataclass(frozen=True)
class EvalExample:
    """One example to evaluate: the conversation up to the reference reply, the reply, the tools and where it came
    from (``index`` in the data, 1-based source ``line``)."""

    index: int
    line: int
    messages: tuple[Mapping[str, Any], ...]
    reference: Answer
    tools: tuple[Mapping[str, Any], ...] | None = None
    parallel_tool_calls: bool | None = None
    row: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def prompt(self) -> str:
        """The last user message (or the conversation's text), for tables."""
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return conversation_text([m])
        return conversation_text(self.messages)


def examples_from_rows(
    rows: Sequence[Mapping[str, Any]], lines: Sequence[int | None]
) -> tuple[list[EvalExample], list[int]]:
    """Chat rows → examples, each ending at its **last** assistant message (the reference); earlier turns are
    context. Returns the examples and the lines of rows without an assistant reply (skipped)."""
    examples: list[EvalExample] = []
    skipped: list[int] = []
    for i, row in enumerate(rows):
        line = lines[i] or i + 1
        messages = row.get("messages") if isinstance(row, Mapping) else None
        last = None
        if isinstance(messages, list):
            for j in range(len(messages) - 1, -1, -1):
                m = messages[j]
                if isinstance(m, Mapping) and m.get("role") == "assistant":
                    last = j
                    break
        if last is None or not isinstance(messages, list) or last == 0:
            skipped.append(line)
            continue
        tools = row.get("tools")
        parallel = row.get("parallel_tool_calls")
        examples.append(
            EvalExample(
                index=i,
                line=line,
                messages=tuple(messages[:last]),
                reference=Answer.from_message(messages[last]),
                tools=tuple(tools) if isinstance(tools, list) and tools else None,
                parallel_tool_calls=parallel if isinstance(parallel, bool) else None,
                row=row,
            )
        )
    return examples, skipped
