"""Planning one embedding call: check the inputs, apply the empty and long-input policies, de-duplicate.

The plan turns ``n`` input texts into *units*: the distinct strings that are actually sent to the API (a whole
text, a truncated text, or one piece of a long text). Identical texts share one unit, so they are embedded
(and paid for) once. Nothing here does I/O; the tokenizer gives exact counts in the model's encoding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigError, EmptyInputError, InputTooLongError, InvalidInputError
from ..tokenizer import Tokenizer
from ._tokens import CharEstimate, TiktokenCounter, TokenCounter

__all__ = ["EmptyPolicy", "LongPolicy", "PieceRef", "Plan", "plan_inputs", "split_by_tokens"]

LongPolicy = Literal["error", "truncate", "chunk", "pieces"]
EmptyPolicy = Literal["error", "zero", "nan", "skip"]
LONG_POLICIES: tuple[str, ...] = ("error", "truncate", "chunk", "pieces")
EMPTY_POLICIES: tuple[str, ...] = ("error", "zero", "nan", "skip")

_COUNT_CHUNK = 2048  # texts tokenised at once (bounds the memory of token lists)
_SHOWN = 10  # indices listed in an error message


@dataclass(frozen=True)
class PieceRef:
    """One piece of an input: the unit that holds its text, its token count and its span in the input."""

    unit: int
    tokens: int
    start: int
    end: int


@dataclass
class Plan:
    """What to send for ``n`` inputs (see the module docstring)."""

    n: int
    empty: npt.NDArray[np.bool_]
    #: unit of each input whose text is sent whole (or truncated); -1 for empty or multi-piece inputs
    input_unit: npt.NDArray[np.int64]
    #: pieces of each input that is cut into several (chunk / pieces policy)
    multi: dict[int, list[PieceRef]] = field(default_factory=dict)
    unit_texts: list[str] = field(default_factory=list)
    #: exact token count of each unit; -1 where not counted yet (``plan_inputs(count_all=False)``)
    unit_tokens: list[int] = field(default_factory=list)
    #: inputs over the per-input token limit, and of those the ones that were truncated
    long: list[int] = field(default_factory=list)
    truncated: list[int] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        """Number of distinct strings to embed."""
        return len(self.unit_texts)

    def pieces_of(self, index: int) -> list[PieceRef]:
        """The pieces of input ``index`` (a single whole piece for an input that was not cut)."""
        if index in self.multi:
            return self.multi[index]
        unit = int(self.input_unit[index])
        if unit < 0:
            return []
        return [PieceRef(unit, self.unit_tokens[unit], 0, len(self.unit_texts[unit]))]


def _describe(indices: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:_SHOWN])
    more = f" and {len(indices) - _SHOWN} more" if len(indices) > _SHOWN else ""
    return shown + more


def _type_error(index: int, value: object) -> InvalidInputError:
    hint = ""
    if isinstance(value, float):
        hint = " (a missing value? drop or fill NaN rows first, e.g. df['text'].fillna(''))"
    elif value is None:
        hint = " (drop or fill missing values first)"
    else:
        hint = "; pass a list of strings"
    try:
        shown = f"{value!r:.60}"
    except Exception:  # a hostile __repr__
        shown = f"<{type(value).__name__}>"
    return InvalidInputError(f"input {index} is {type(value).__name__} {shown}, not str{hint}", index=index)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate_error(index: int, text: str) -> InvalidInputError:
    m = _SURROGATE.search(text)
    at = m.start() if m else 0
    return InvalidInputError(
        f"input {index} holds a lone surrogate ({text[at]!r} at character {at}), which is not valid text and "
        "cannot be sent as UTF-8 (often a badly decoded file or a JSON escape such as \"\\ud83d\" cut in half). "
        "Repair it, e.g. text.encode('utf-8', 'replace').decode('utf-8'), or drop the input.",
        index=index,
    )


def _is_blank(text: str) -> bool:
    return not text or text.isspace()


def _boundary(tokenizer: Tokenizer, ids: Sequence[int], lo: int, hi: int) -> int:
    """A token index in ``(lo, hi]`` to cut before: after the last line break, else before the last space,
    else ``hi`` (searching the last eighth of the piece only)."""
    enc = tokenizer.encoding
    lookback = max(1, (hi - lo) // 8)
    space = -1
    for k in range(hi, max(lo, hi - lookback), -1):
        if enc.decode_single_token_bytes(ids[k - 1]).endswith(b"\n"):
            return k
        if space < 0 and enc.decode_single_token_bytes(ids[k])[:1] in (b" ", b"\t"):
            space = k
    return space if space > 0 else hi


def split_by_tokens(text: str, tokenizer: Tokenizer, limit: int) -> list[tuple[int, int, int]]:
    """Cut ``text`` into consecutive pieces of at most ``limit`` tokens each.

    Returns ``(start, end, tokens)`` per piece, as character offsets into ``text`` (pieces cover the text
    exactly, in order) and the piece's own token count when encoded alone. Cuts fall on character boundaries
    and prefer a line break, then a space, in the last eighth of a piece.

    >>> text = "one two three four"
    >>> [text[s:e] for s, e, _ in split_by_tokens(text, Tokenizer("cl100k_base"), 2)]
    ['one two', ' three four']
    """
    if limit < 1:
        raise ConfigError(f"split_by_tokens: limit must be at least 1, got {limit}")
    ids = tokenizer.encode(text)
    if len(ids) <= limit:
        return [(0, len(text), len(ids))]
    _, offsets = tokenizer.encoding.decode_with_offsets(ids)
    pieces: list[tuple[int, int, int]] = []
    tok_start = 0
    char_start = 0
    while tok_start < len(ids):
        tok_end = min(len(ids), tok_start + limit)
        if tok_end < len(ids):
            tok_end = _boundary(tokenizer, ids, tok_start, tok_end)
        while True:
            char_end = len(text) if tok_end >= len(ids) else offsets[tok_end]
            if char_end <= char_start:  # a cut inside one character: take the smallest piece that advances
                tok_end = tok_start + 1
                while tok_end < len(ids) and offsets[tok_end] <= char_start:
                    tok_end += 1
                char_end = len(text) if tok_end >= len(ids) else offsets[tok_end]
                count = tokenizer.count(text[char_start:char_end])
                break
            count = tokenizer.count(text[char_start:char_end])
            if count <= limit or tok_end - tok_start <= 1:
                break
            tok_end = max(tok_start + 1, tok_end - max(1, count - limit))
        pieces.append((char_start, char_end, count))
        char_start = char_end
        # continue from the first token that starts at or after the cut
        tok_start = tok_end
        while tok_start < len(ids) and offsets[tok_start] < char_end:
            tok_start += 1
    return pieces


def plan_inputs(
    texts: Sequence[str],
    *,
    tokenizer: Tokenizer | TokenCounter,
    max_input_tokens: int,
    long_inputs: LongPolicy = "error",
    empty_inputs: EmptyPolicy = "error",
    count_all: bool = True,
) -> Plan:
    """Check ``texts`` and plan the distinct strings to send.

    Raises :class:`~finetune_embed.InvalidInputError` for a non-string input or a lone surrogate,
    :class:`~finetune_embed.EmptyInputError` for empty inputs
    under ``empty_inputs="error"`` and :class:`~finetune_embed.InputTooLongError` for inputs over
    ``max_input_tokens`` under ``long_inputs="error"``; both name the first offending index and count the rest.

    Every error is found here, before anything is sent, even with ``count_all=False``: a token is at least one
    UTF-8 byte, so only texts longer than ``max_input_tokens`` bytes are counted up front to find the long ones;
    the others are counted later, while the first requests are already on their way (``unit_tokens`` is -1
    for them).
    """
    if long_inputs not in LONG_POLICIES:
        raise ConfigError(f"long_inputs must be one of {', '.join(LONG_POLICIES)}; got {long_inputs!r}")
    if empty_inputs not in EMPTY_POLICIES:
        raise ConfigError(f"empty_inputs must be one of {', '.join(EMPTY_POLICIES)}; got {empty_inputs!r}")
    counter: TokenCounter = tokenizer if isinstance(tokenizer, TokenCounter) else TiktokenCounter(tokenizer)
    if not isinstance(counter, TiktokenCounter | CharEstimate):
        count_all = True  # another tokenizer may count more tokens than bytes (special tokens): count everything
    n = len(texts)
    empty = np.zeros(n, dtype=bool)
    input_unit = np.full(n, -1, dtype=np.int64)
    # distinct non-empty texts, in order of first appearance
    first_of: dict[str, int] = {}
    distinct: list[str] = []
    distinct_of_input = np.full(n, -1, dtype=np.int64)
    empties: list[int] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise _type_error(i, text)
        if _is_blank(text):
            empty[i] = True
            empties.append(i)
            continue
        d = first_of.get(text)
        if d is None:
            if not text.isascii() and _SURROGATE.search(text):
                raise _surrogate_error(i, text)
            d = len(distinct)
            first_of[text] = d
            distinct.append(text)
        distinct_of_input[i] = d
    del first_of
    if empties and empty_inputs == "error":
        raise EmptyInputError(
            f"{len(empties)} input(s) are empty or whitespace only, which the API refuses: index "
            f"{_describe(empties)}. Remove them, or pass empty_inputs='skip' (leave them out, with a mask), "
            "'zero' or 'nan' (a placeholder row).",
            index=empties[0],
        )

    counts = [-1] * len(distinct)
    if count_all:
        to_count = list(range(len(distinct)))
    else:  # only a text of more than `max_input_tokens` UTF-8 bytes can have more tokens than that
        quarter = max_input_tokens // 4
        to_count = [
            d
            for d, t in enumerate(distinct)
            if len(t) > quarter and len(t.encode("utf-8", "surrogatepass")) > max_input_tokens
        ]
    for start in range(0, len(to_count), _COUNT_CHUNK):
        part = to_count[start : start + _COUNT_CHUNK]
        for d, c in zip(part, counter.count_batch([distinct[d] for d in part]), strict=True):
            counts[d] = c

    plan = Plan(n=n, empty=empty, input_unit=input_unit)
    long_distinct = [d for d, c in enumerate(counts) if c > max_input_tokens]
    if long_distinct:
        long_set = set(long_distinct)
        plan.long = [i for i in range(n) if distinct_of_input[i] in long_set]
        if long_inputs == "error":
            first = plan.long[0]
            d0 = int(distinct_of_input[first])
            others = (
                f" ({len(plan.long) - 1} more input(s) too: index {_describe(plan.long[1:])})"
                if len(plan.long) > 1
                else ""
            )
            raise InputTooLongError(
                f"input {first} has {counts[d0]} tokens, over the {max_input_tokens}-token limit of the model"
                + others
                + ". Shorten it, or pass long_inputs='truncate' (keep the first tokens), 'chunk' (embed "
                "the pieces and average them) or 'pieces' (return every piece with its offsets).",
                index=first,
                tokens=counts[d0],
                limit=max_input_tokens,
            )

    unit_of: dict[str, int] = {}

    def unit_for(text: str, tokens: int) -> int:
        u = unit_of.get(text)
        if u is None:
            u = len(plan.unit_texts)
            unit_of[text] = u
            plan.unit_texts.append(text)
            plan.unit_tokens.append(tokens)
        elif plan.unit_tokens[u] < 0 <= tokens:
            plan.unit_tokens[u] = tokens
        return u

    # whole texts first, so a piece equal to some whole text shares its unit
    distinct_unit = np.full(len(distinct), -1, dtype=np.int64)
    for d, text in enumerate(distinct):
        if counts[d] <= max_input_tokens:
            distinct_unit[d] = unit_for(text, counts[d])
    distinct_pieces: dict[int, list[PieceRef]] = {}
    for d in long_distinct:
        text = distinct[d]
        spans = counter.split(text, max_input_tokens)
        if long_inputs == "truncate":
            s, e, c = spans[0]
            distinct_unit[d] = unit_for(text[s:e], c)
        else:
            distinct_pieces[d] = [PieceRef(unit_for(text[s:e], c), c, s, e) for s, e, c in spans]

    for i in range(n):
        d = int(distinct_of_input[i])
        if d < 0:
            continue
        if d in distinct_pieces:
            plan.multi[i] = distinct_pieces[d]
        else:
            input_unit[i] = distinct_unit[d]
    if long_inputs == "truncate":
        plan.truncated = list(plan.long)
    return plan
