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

__all__ = ["COOKBOOK_ENCODING", "LONG_TEXT_CHARS", "Counting", "TokenCounter", "cookbook_example_tokens", "count_long"]

Counting = Literal["model", "cookbook"]
COOKBOOK_ENCODING = "cl100k_base"
_CACHE_CHARS = 4_000_000  # per generation; two generations are kept (at most ~8M characters referenced)


LONG_TEXT_CHARS = 1 << 20  # texts longer than this are counted in slices, never in one call
_SLICE_CHARS = 1 << 18
_SEARCH_CHARS = 1 << 20
_HARD_CUT_CHARS = 1 << 16
_boundary: Any = None


def _boundary_pattern() -> Any:
    """Where a letter is followed by a character that cannot continue a word (not a letter, a combining mark or
    an apostrophe): every tiktoken encoding we use ends a pre-tokenizer piece there, and the piece that ends is a
    word, which no lookahead of the pattern depends on."""
    global _boundary
    if _boundary is None:
        import importlib

        try:
            regex = importlib.import_module("regex")  # tiktoken's own dependency: the same Unicode classes
        except ImportError:  # pragma: no cover
            import re

            _boundary = re.compile(r"(?<=[^\W\d_])(?=[^\w'])")
        else:
            _boundary = regex.compile(r"(?<=\p{L})(?=[^\p{L}\p{M}'])")
    return _boundary


def count_long(encode: Callable[[str], list[int]], text: str) -> int:
    """Tokens of a long ``text``, encoded in slices of about 256 k characters so that memory stays bounded
    (tiktoken needs tens of bytes per byte of one call's text) and a single huge "word" cannot take ever longer.

    Slices end only where a word ends (see :func:`_boundary_pattern`), where the encoder's pre-tokenizer splits
    anyway, so the sum is exactly the count of the whole text. Where 1 M characters hold no such boundary (one
    giant "word": CJK text without punctuation, a run of one letter), the slice is cut after 64 k characters, and
    the count may then differ from the whole text's by a token or two per cut.
    """
    pattern = _boundary_pattern()
    total = 0
    start = 0
    n = len(text)
    while start < n:
        if n - start <= _SLICE_CHARS:
            end = n
        else:
            found = pattern.search(text, start + _SLICE_CHARS, min(n, start + _SLICE_CHARS + _SEARCH_CHARS))
            end = found.start() if found is not None else start + _HARD_CUT_CHARS  # (BPE time grows with a piece)
        piece = text[start:end]
        try:
            total += len(encode(piece))
        except UnicodeEncodeError:  # lone surrogates (the line is an error anyway)
            total += len(encode(piece.encode("utf-8", "replace").decode("utf-8")))
        start = end
    return total


class TokenCounter:
    """Counts tokens of texts with one encoding, remembering recent texts (system prompts, tool definitions and
    stock replies repeat across examples). Memory is bounded: the cache holds at most two generations of
    ``cache_chars`` characters."""

    __slots__ = (
        "_buffer",
        "_core",
        "_encode",
        "_old",
        "_young",
        "_young_chars",
        "cache_chars",
        "encoding_name",
        "misses",
    )

    def __init__(self, encoding_name: str, *, cache_chars: int = _CACHE_CHARS) -> None:
        from ..tokenizer import get_encoding

        self.encoding_name = encoding_name
        enc = get_encoding(encoding_name)
        self._encode: Callable[[str], list[int]] = enc.encode_ordinary
        # the Rust encoder itself: one Python frame less per text on the hot path (tiktoken's wrapper only adds
        # the lone-surrogate fallback, which count() repeats)
        core = getattr(getattr(enc, "_core_bpe", None), "encode_ordinary", None)
        self._core: Callable[[str], list[int]] = core if callable(core) else enc.encode_ordinary
        # the encoder's buffer output (4 bytes a token), counted without building a list of Python ints
        self._buffer = _buffer_encoder(enc)
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
            if len(text) > LONG_TEXT_CHARS:  # counted in slices; not cached (it would pin the text)
                return count_long(self._encode, text)
            try:
                buffer = self._buffer
                n = memoryview(buffer(text, _NO_SPECIAL)).nbytes >> 2 if buffer is not None else len(self._core(text))
            except UnicodeEncodeError:  # lone surrogates: replaced as tiktoken does (the line is an error anyway)
                n = len(self._encode(text))
        self._young[text] = n
        self._young_chars += len(text)
        if self._young_chars > self.cache_chars:
            self._old = self._young
            self._young = {}
            self._young_chars = 0
        return n


_NO_SPECIAL: frozenset[str] = frozenset()  # no special tokens: their text counts as ordinary text
_PROBE = "Probe: héllo wörld, <|endoftext|> 12345 \U0001f600 日本語のテキスト\n\t  end"


def _buffer_encoder(enc: Any) -> Callable[[str, frozenset[str]], Any] | None:
    """tiktoken's ``encode_to_tiktoken_buffer`` (its Rust encoder's tokens as a 4-byte-per-token buffer, so no list
    of Python ints is built: measured 4% less counting time than ``encode_ordinary``, 3% less validation CPU), if
    this tiktoken has it and it counts the probe text exactly as ``encode_ordinary`` does; else ``None``."""
    fn = getattr(getattr(enc, "_core_bpe", None), "encode_to_tiktoken_buffer", None)
    if not callable(fn):
        return None
    try:
        same = memoryview(fn(_PROBE, _NO_SPECIAL)).nbytes >> 2 == len(enc.encode_ordinary(_PROBE))
    except Exception:  # another signature in another tiktoken version
        return None
    return fn if same else None


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
