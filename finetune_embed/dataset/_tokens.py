"""Token counting for fine-tuning examples: the model's own encoding, with a bounded cache of repeated texts.

Two ways of counting an example:

* ``"model"`` (the default): the model's encoding (o200k_base for gpt-4o / gpt-4.1, cl100k_base for
  gpt-3.5-turbo); per message 3 tokens of framing + the role + the content (text parts; images estimated)
  + the name (+1) + tool calls (function name and arguments) + tool_call_id; +3 per example for the reply's
  priming; plus the tool (or function) definitions, counted as their compact JSON (an approximation: the service
  renders them in its own syntax).
* ``"cookbook"``: exactly the OpenAI cookbook's ``Chat_finetuning_data_prep.ipynb`` formula, for comparison with
  published figures: cl100k_base whatever the model, 3 per message + every field value encoded (the role too)
  + 1 per name + 3 per example; tools and images not counted. Non-string values (which crash the notebook) are
  counted as their JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

__all__ = ["COOKBOOK_ENCODING", "Counting", "TokenCounter", "cookbook_example_tokens"]

Counting = Literal["model", "cookbook"]
COOKBOOK_ENCODING = "cl100k_base"
_CACHE_CHARS = 4_000_000  # per generation; two generations are kept (at most ~8M characters referenced)


class TokenCounter:
    """Counts tokens of texts with one encoding, remembering recent texts (system prompts, tool definitions and
    stock replies repeat across examples). Memory is bounded: the cache holds at most two generations of
    ``cache_chars`` characters."""

    __slots__ = ("_encode", "_old", "_young", "_young_chars", "cache_chars", "encoding_name", "misses")

    def __init__(self, encoding_name: str, *, cache_chars: int = _CACHE_CHARS) -> None:
        from ..tokenizer import get_encoding

        self.encoding_name = encoding_name
        enc = get_encoding(encoding_name)
        self._encode: Callable[[str], list[int]] = enc.encode_ordinary
        self._young: dict[str, int] = {}
        self._old: dict[str, int] = {}
        self._young_chars = 0
        self.cache_chars = cache_chars
        self.misses = 0

    def count(self, text: str) -> int:
        """Number of tokens of ``text`` (special-token text counts as ordinary text)."""
        n = self._young.get(text)
        if n is not None:
            return n
        n = self._old.get(text)
        if n is None:
            self.misses += 1
            try:
                n = len(self._encode(text))
            except UnicodeEncodeError:  # lone surrogates: count what can be encoded (the line is an error anyway)
                n = len(self._encode(text.encode("utf-8", "replace").decode("utf-8")))
        self._young[text] = n
        self._young_chars += len(text)
        if self._young_chars > self.cache_chars:
            self._old = self._young
            self._young = {}
            self._young_chars = 0
        return n


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def cookbook_example_tokens(example: Mapping[str, Any], count: Callable[[str], int]) -> tuple[int, int, int]:
    """The cookbook's count of a chat example: ``(total, assistant_content, n_messages)``.

    ``total = 3 + Σ_messages (3 + Σ_fields len(encode(value)) + [field == "name"])``; assistant tokens count
    only string ``content`` of assistant messages. Preference and completion examples are counted on their
    messages (input + outputs) or their two texts, the same way.
    """
    messages: list[Any]
    if "messages" in example:
        messages = example.get("messages") or []
    elif "input" in example:
        inp = example.get("input")
        messages = list(inp.get("messages") or []) if isinstance(inp, dict) else []
        for side in ("preferred_output", "non_preferred_output"):
            out = example.get(side)
            if isinstance(out, list):
                messages.extend(out)
    else:
        total = sum(count(_value_text(v)) for k, v in example.items() if k in ("prompt", "completion"))
        completion = example.get("completion")
        return total, count(completion) if isinstance(completion, str) else 0, 1
    total = 3
    assistant = 0
    n = 0
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        n += 1
        total += 3
        for key, value in message.items():
            total += count(_value_text(value))
            if key == "name":
                total += 1
        if message.get("role") == "assistant" and isinstance(message.get("content"), str):
            assistant += count(message["content"])
    return total, assistant, n
