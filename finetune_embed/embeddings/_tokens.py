"""Counting tokens for planning: exact (a tiktoken encoding, or the model's own tokenizer given as a callable) or
estimated from characters for models nobody said how to count.

Every counter offers ``count_batch(texts)`` and ``split(text, limit)`` (consecutive pieces of at most ``limit``
tokens, as ``(start, end, tokens)`` character offsets), which is all the planner needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from .._exceptions import ConfigError, TokenizerUnavailableError
from ..tokenizer import Tokenizer

__all__ = [
    "BYTES_PER_TOKEN",
    "CallableCounter",
    "CharEstimate",
    "TiktokenCounter",
    "TokenCounter",
    "TokenizerArg",
    "counter_for",
    "utf8_lengths",
]

#: the character-based estimate: one token per this many bytes of UTF-8 (cl100k_base averages about 4 on English,
#: BERT-style tokenizers about 3.5; one CJK character is one token and 3 bytes), so it rarely counts too few
BYTES_PER_TOKEN = 3

TokenizerArg = str | Tokenizer | Callable[[str], Any] | None


def utf8_lengths(texts: Sequence[str]) -> list[int]:
    """The UTF-8 length of each text: an upper bound of its tokens in any byte-level BPE (every token is at least
    one byte), found without tokenizing (``str.isascii`` is free; only other texts are encoded)."""
    return [len(t) if t.isascii() else len(t.encode("utf-8", "surrogatepass")) for t in texts]


@runtime_checkable
class TokenCounter(Protocol):
    """What the planner needs from a tokenizer."""

    name: str
    exact: bool

    def count_batch(self, texts: Sequence[str]) -> list[int]: ...

    def split(self, text: str, limit: int) -> list[tuple[int, int, int]]: ...


class TiktokenCounter:
    """Exact counts with a tiktoken encoding (OpenAI's models)."""

    exact = True

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.name = tokenizer.encoding_name

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        # one call per text on this thread: tiktoken's batch call hands every text to a thread pool, which costs
        # more than counting a short text (3x the CPU at 20 words), and this runs beside the senders anyway
        encode = self.tokenizer.encoding.encode_ordinary
        return [len(encode(text)) for text in texts]

    def split(self, text: str, limit: int) -> list[tuple[int, int, int]]:
        from ._plan import split_by_tokens

        return split_by_tokens(text, self.tokenizer, limit)


def _cut_near(text: str, start: int, end: int) -> int:
    """A cut point in ``(start, end]``: after the last line break, else before the last space, in the last eighth
    of the piece; else ``end``."""
    window_start = max(start + 1, end - max(1, (end - start) // 8))
    newline = text.rfind("\n", window_start - 1, end)
    if newline >= window_start - 1 and newline + 1 > start:
        return newline + 1
    space = text.rfind(" ", window_start, end)
    if space > start:
        return space
    return end


class _SplitByCount:
    """``split`` for any counter: the longest prefix within the limit, found by bisection on characters."""

    def count_one(self, text: str) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def split(self, text: str, limit: int) -> list[tuple[int, int, int]]:
        if limit < 1:
            raise ConfigError(f"split: limit must be at least 1, got {limit}")
        total = self.count_one(text)
        if total <= limit:
            return [(0, len(text), total)]
        pieces: list[tuple[int, int, int]] = []
        start = 0
        while start < len(text):
            rest = self.count_one(text[start:])
            if rest <= limit:
                pieces.append((start, len(text), rest))
                break
            lo, hi = start + 1, len(text)  # the longest end with count(text[start:end]) <= limit
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.count_one(text[start:mid]) <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            end = _cut_near(text, start, lo)
            if end <= start:
                end = start + 1
            pieces.append((start, end, self.count_one(text[start:end])))
            start = end
        return pieces


class CharEstimate(_SplitByCount):
    """An estimate from the text's length: one token per :data:`BYTES_PER_TOKEN` bytes of UTF-8."""

    exact = False
    name = f"an estimate of 1 token per {BYTES_PER_TOKEN} bytes of UTF-8"

    def count_one(self, text: str) -> int:
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        return math.ceil(size / BYTES_PER_TOKEN)

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        count = self.count_one
        return [count(t) for t in texts]

    def split(self, text: str, limit: int) -> list[tuple[int, int, int]]:
        if text.isascii():  # no bisection needed: the count is linear in the length
            if limit < 1:
                raise ConfigError(f"split: limit must be at least 1, got {limit}")
            size = limit * BYTES_PER_TOKEN
            pieces = []
            start = 0
            while start < len(text):
                end = len(text) if len(text) - start <= size else _cut_near(text, start, start + size)
                pieces.append((start, end, self.count_one(text[start:end])))
                start = end
            return pieces
        return super().split(text, limit)


class CallableCounter(_SplitByCount):
    """The model's own tokenizer, given as a callable: ``text -> token count`` or ``text -> token ids``."""

    exact = True

    def __init__(self, fn: Callable[[str], Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__qualname__", None) or type(fn).__name__

    def count_one(self, text: str) -> int:
        result = self.fn(text)
        if isinstance(result, bool | str | bytes):
            raise ConfigError(f"tokenizer {self.name} returned {result!r}; it must return a count or token ids")
        if isinstance(result, int):
            return result
        ids = getattr(result, "ids", result)  # a tokenizers.Encoding
        try:
            return len(ids)
        except TypeError:
            raise ConfigError(
                f"tokenizer {self.name} returned {type(result).__name__}; it must return a token count (int) or a "
                "sequence of token ids"
            ) from None

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        count = self.count_one
        return [count(t) for t in texts]


def counter_for(tokenizer: TokenizerArg, *, encoding: str | None) -> TokenCounter:
    """The counter for a ``tokenizer=`` setting: ``None`` (the catalog's ``encoding``, or the character estimate
    when the model is unknown), a tiktoken encoding name, ``"chars"``, a :class:`~finetune_embed.Tokenizer`, or a
    callable."""
    if tokenizer is None:
        return CharEstimate() if encoding is None else TiktokenCounter(Tokenizer(encoding))
    if isinstance(tokenizer, Tokenizer):
        return TiktokenCounter(tokenizer)
    if isinstance(tokenizer, str):
        if tokenizer in ("chars", "estimate"):
            return CharEstimate()
        try:
            from ..tokenizer import get_encoding

            get_encoding(tokenizer)
        except TokenizerUnavailableError as exc:
            raise ConfigError(
                f"tokenizer={tokenizer!r} is not a tiktoken encoding that can be loaded here ({exc}). Pass a tiktoken "
                "encoding name (cl100k_base, o200k_base), 'chars' for the character estimate, or a callable that "
                "counts tokens with the model's own tokenizer, e.g. lambda s: len(hf_tokenizer.encode(s).ids)."
            ) from exc
        return TiktokenCounter(Tokenizer(tokenizer))
    if callable(tokenizer):
        return CallableCounter(tokenizer)
    raise ConfigError(
        "tokenizer must be a tiktoken encoding name, 'chars', a Tokenizer or a callable, got "
        f"{type(tokenizer).__name__}"
    )
