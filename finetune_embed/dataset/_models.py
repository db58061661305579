"""Typed example models (pydantic v2) for building and reading fine-tuning data.

They mirror the service's line schemas: :class:`ChatExample` (supervised and reinforcement),
:class:`PreferenceExample` (DPO) and :class:`CompletionExample` (legacy babbage-002 / davinci-002). Building
with them gives a valid shape by construction; :meth:`to_dict` gives the JSON object to write (``None`` fields
are left out). Validating a file does not go through these models: the streaming validator checks plain dicts
and reports every problem with its line and path.

>>> ex = ChatExample(messages=[UserMessage(content="Hi"), AssistantMessage(content="Hello!")])
>>> ex.to_dict()
{'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AssistantMessage",
    "ChatExample",
    "CompletionExample",
    "ContentPart",
    "DeveloperMessage",
    "Example",
    "FunctionCall",
    "FunctionDefinition",
    "FunctionMessage",
    "ImagePart",
    "ImageURL",
    "Message",
    "PreferenceExample",
    "PreferenceInput",
    "SystemMessage",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolMessage",
    "UserMessage",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this model (``None`` fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class TextPart(_Model):
    """``{"type": "text", "text": ...}``."""

    type: Literal["text"] = "text"
    text: str


class ImageURL(_Model):
    """An image: an ``https://`` URL or a ``data:image/...;base64,...`` URL; ``detail`` low/high/auto."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Model):
    """``{"type": "image_url", "image_url": {"url": ...}}`` (user messages only)."""

    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(_Model):
    """A function name and its arguments as the JSON text of an object."""

    name: str
    arguments: str


class ToolCall(_Model):
    """One tool call of an assistant message."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Model):
    """A system message."""

    role: Literal["system"] = "system"
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(_Model):
    """A developer message (chat completions' newer name for system; see the ``developer_role`` warning)."""

    role: Literal["developer"] = "developer"
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Model):
    """A user message: text, or text and image parts."""

    role: Literal["user"] = "user"
    content: str | list[ContentPart]
    name: str | None = None


class AssistantMessage(_Model):
    """An assistant message: the reply to train on. ``weight`` 0 excludes it from training."""

    role: Literal["assistant"] = "assistant"
    content: str | list[TextPart] | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    weight: Annotated[int, Field(strict=True, ge=0, le=1)] | None = None


class ToolMessage(_Model):
    """The result of a tool call."""

    role: Literal["tool"] = "tool"
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(_Model):
    """The result of a legacy function call."""

    role: Literal["function"] = "function"
    name: str
    content: str | None


Message = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage,
    Field(discriminator="role"),
]


class FunctionDefinition(_Model):
    """A function the model may call: name, description and JSON-Schema parameters."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Model):
    """``{"type": "function", "function": {...}}``."""

    type: Literal["function"] = "function"
    function: FunctionDefinition


class ChatExample(_Model):
    """A chat example (supervised fine-tuning; reinforcement fine-tuning adds reference keys, hence extras are
    kept)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    functions: list[FunctionDefinition] | None = None
    parallel_tool_calls: bool | None = None


class PreferenceInput(_Model):
    """The prompt side of a preference pair."""

    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    parallel_tool_calls: bool | None = None


class PreferenceExample(_Model):
    """A preference (DPO) example: an input and a preferred and a non-preferred assistant reply."""

    input: PreferenceInput
    preferred_output: list[AssistantMessage] = Field(min_length=1, max_length=1)
    non_preferred_output: list[AssistantMessage] = Field(min_length=1, max_length=1)


class CompletionExample(_Model):
    """A legacy prompt/completion example (babbage-002, davinci-002)."""

    prompt: str
    completion: str


Example = ChatExample | PreferenceExample | CompletionExample
