"""Token-aware batching: split work into requests that respect an API's per-request limits.

Two small, pure utilities that any capability can reuse (embeddings, Batch API files, uploads):

* :func:`batched` cuts any iterable into tuples of at most ``n`` items (``itertools.batched`` for Python 3.11).
* :func:`pack_by_tokens` groups consecutive items, given their token counts, into as few batches as possible
  such that no batch holds more than ``max_inputs`` items or more than ``max_tokens`` tokens in all.
* :func:`pack_stream` does the same lazily over an iterable of ``(item, tokens)`` pairs, so work can start on
  the first batches while later items are still being counted.

Order is always kept: batches are consecutive ``range`` objects covering ``0 .. len(token_counts) - 1`` in
order, so a caller maps them back onto its own lists by position. Greedy packing of consecutive items is
optimal here: no other split into consecutive batches uses fewer batches.

>>> list(batched("abcde", 2))
[('a', 'b'), ('c', 'd'), ('e',)]
>>> pack_by_tokens([5, 5, 5, 9, 1], max_inputs=2, max_tokens=10)
[range(0, 2), range(2, 3), range(3, 5)]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from ._exceptions import InvalidArgumentError, ItemTooLargeError

__all__ = ["ItemTooLargeError", "batched", "next_batch_end", "pack_by_tokens", "pack_stream"]

T = TypeVar("T")




def batched(iterable: Iterable[T], n: int) -> Iterator[tuple[T, ...]]:
    """Yield tuples of ``n`` consecutive items (the last one may be shorter); lazy, any iterable.

    >>> list(batched(range(5), 3))
    [(0, 1, 2), (3, 4)]
    """
    if n < 1:
        raise InvalidArgumentError(f"batched(): n must be at least 1, got {n}", argument="n")
    it = iter(iterable)
    while chunk := tuple(itertools.islice(it, n)):
        yield chunk


def _check_limits(max_inputs: int, max_tokens: int) -> None:
    if max_inputs < 1:
        raise InvalidArgumentError(f"max_inputs must be at least 1, got {max_inputs}", argument="max_inputs")
    if max_tokens < 1:
        raise InvalidArgumentError(f"max_tokens must be at least 1, got {max_tokens}", argument="max_tokens")


def _check_item(index: int, count: int, max_tokens: int) -> None:
    """Refuse a negative token count, and an item that no batch can hold."""
    if count < 0:
        raise InvalidArgumentError(f"token count of item {index} is negative ({count})", argument="token_counts")
    if count > max_tokens:
        raise ItemTooLargeError(
            f"item {index} has {count} tokens, more than the {max_tokens} allowed in one batch",
            index=index,
            tokens=count,
            max_tokens=max_tokens,
        )


def next_batch_end(
    token_counts: Sequence[int], start: int, *, max_inputs: int, max_tokens: int
) -> int:
    """The end (exclusive) of the largest batch that starts at ``start`` and fits both limits.

    Raises :class:`ItemTooLargeError` if the item at ``start`` alone has more than ``max_tokens`` tokens.
    Token counts must be non-negative.
    """
    _check_limits(max_inputs, max_tokens)
    n = len(token_counts)
    if not 0 <= start < n:
        raise InvalidArgumentError(f"start {start} is outside 0..{n - 1}", argument="start")
    first = token_counts[start]
    _check_item(start, first, max_tokens)
    total = first
    end = start + 1
    stop = min(n, start + max_inputs)
    while end < stop:
        count = token_counts[end]
        if count < 0:
            raise InvalidArgumentError(f"token count of item {end} is negative ({count})", argument="token_counts")
        if total + count > max_tokens:
            break
        total += count
        end += 1
    return end


def pack_by_tokens(token_counts: Sequence[int], *, max_inputs: int, max_tokens: int) -> list[range]:
    """Split items with the given token counts into consecutive batches within both limits.

    Returns ``range`` objects of positions into ``token_counts``; together they cover every position once,
    in order. Each batch has at most ``max_inputs`` items and at most ``max_tokens`` tokens in all, and the
    number of batches is the smallest possible for consecutive batches. An item with more than
    ``max_tokens`` tokens raises :class:`ItemTooLargeError` (cut such items first).

    >>> pack_by_tokens([], max_inputs=2048, max_tokens=300_000)
    []
    >>> pack_by_tokens([100] * 5, max_inputs=2048, max_tokens=250)
    [range(0, 2), range(2, 4), range(4, 5)]
    """
    _check_limits(max_inputs, max_tokens)
    batches: list[range] = []
    start = 0
    n = len(token_counts)
    while start < n:
        end = next_batch_end(token_counts, start, max_inputs=max_inputs, max_tokens=max_tokens)
        batches.append(range(start, end))
        start = end
    return batches


def pack_stream(
    items: Iterable[tuple[T, int]], *, max_inputs: int, max_tokens: int
) -> Iterator[list[T]]:
    """Lazily group ``(item, token_count)`` pairs into consecutive batches within both limits.

    Yields the same batches as :func:`pack_by_tokens` would for the same counts (greedy, in order), each as
    soon as it is full, so the first batch is ready after reading only as many items as it holds. An item
    with more than ``max_tokens`` tokens raises :class:`ItemTooLargeError` (``index`` is its position).

    >>> list(pack_stream(zip("abcde", [5, 5, 5, 9, 1]), max_inputs=2, max_tokens=10))
    [['a', 'b'], ['c'], ['d', 'e']]
    """
    _check_limits(max_inputs, max_tokens)
    batch: list[T] = []
    total = 0
    for position, (item, count) in enumerate(items):
        _check_item(position, count, max_tokens)
        if batch and (len(batch) >= max_inputs or total + count > max_tokens):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += count
    if batch:
        yield batch
