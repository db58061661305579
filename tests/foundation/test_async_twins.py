"""Every public method of a sync class has an async twin with the same parameters (names, kinds, defaults) and
the same types, modulo ``Awaitable`` / ``AsyncIterator`` and the sync/async class names (#15)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

from finetune_embed import AsyncClient, Client
from finetune_embed.chat import AsyncChatCompletions, ChatCompletions
from finetune_embed.embeddings import AsyncEmbedder, Embedder
from finetune_embed.finetuning import AsyncFileManager, AsyncJobManager, FileManager, JobManager

PAIRS = [
    (Client, AsyncClient),
    (JobManager, AsyncJobManager),
    (FileManager, AsyncFileManager),
    (Embedder, AsyncEmbedder),
    (ChatCompletions, AsyncChatCompletions),
]

#: sync name -> async name where the async twin is spelled differently (as httpx and the openai SDK spell them)
RENAMED = {"close": "aclose"}

#: Methods without an async twin yet, each with the reason; the test fails once a twin exists (drop the entry).
MISSING: dict[tuple[str, str], str] = {}

#: Methods that do no I/O: the same plain method (or property) on both sides.
IO_FREE = {"with_options"}

_NAMES = [("AsyncOpenAI", "OpenAI"), ("AsyncClient", "Client"), ("AsyncJobManager", "JobManager"),
          ("AsyncFileManager", "FileManager"), ("AsyncEmbedder", "Embedder"),
          ("AsyncChatCompletions", "ChatCompletions"), ("AsyncIterator", "Iterator")]


def _unwrap_awaitable(text: str) -> str:
    """``Awaitable[X]`` -> ``X``, brackets matched."""
    while (start := text.find("Awaitable[")) >= 0:
        depth, end = 0, start + len("Awaitable[")
        for end in range(start + len("Awaitable["), len(text)):
            if text[end] == "[":
                depth += 1
            elif text[end] == "]":
                if depth == 0:
                    break
                depth -= 1
        text = text[:start] + text[start + len("Awaitable[") : end] + text[end + 1 :]
    return text


def _norm(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    for a, b in _NAMES:
        text = text.replace(a, b)
    return _unwrap_awaitable(re.sub(r"\s+", "", text))


def _public(cls: type) -> dict[str, Any]:
    return {name: inspect.getattr_static(cls, name) for name in dir(cls) if not name.startswith("_")}


def _cases() -> list[tuple[type, type, str]]:
    return [(s, a, name) for s, a in PAIRS for name in sorted(_public(s))]


@pytest.mark.parametrize(("sync", "twin", "name"), _cases(), ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_the_async_twin_matches(sync: type, twin: type, name: str) -> None:
    async_name = RENAMED.get(name, name)
    if (sync.__name__, name) in MISSING:
        assert not hasattr(twin, async_name), f"{twin.__name__}.{async_name} exists now: drop it from MISSING"
        return
    assert hasattr(twin, async_name), f"{twin.__name__} lacks {async_name} (the twin of {sync.__name__}.{name})"
    a = inspect.getattr_static(sync, name)
    b = inspect.getattr_static(twin, async_name)
    if a is b:
        return  # one implementation, in the shared (I/O-free) base class
    if isinstance(a, property):
        assert isinstance(b, property), name
        assert a.fget is not None
        assert b.fget is not None
        assert _norm(inspect.signature(a.fget).return_annotation) == _norm(
            inspect.signature(b.fget).return_annotation
        ), name
        return
    fa: Callable[..., Any] = a.__func__ if isinstance(a, classmethod | staticmethod) else a
    fb: Callable[..., Any] = b.__func__ if isinstance(b, classmethod | staticmethod) else b
    assert type(a) is type(b), f"{name}: {type(a).__name__} vs {type(b).__name__}"
    sa, sb = inspect.signature(fa), inspect.signature(fb)
    pa = [(p.name, p.kind, p.default, _norm(p.annotation)) for p in sa.parameters.values()]
    pb = [(p.name, p.kind, p.default, _norm(p.annotation)) for p in sb.parameters.values()]
    assert pa == pb, f"{sync.__name__}.{name} and {twin.__name__}.{async_name} take different parameters"
    assert _norm(sa.return_annotation) == _norm(sb.return_annotation), f"{name}: return types differ"
    sync_returns_iterator = _norm(sa.return_annotation).startswith("Iterator[")
    if sync_returns_iterator:  # the twin yields asynchronously
        assert str(sb.return_annotation).startswith("AsyncIterator["), name
    elif name not in IO_FREE:
        assert inspect.iscoroutinefunction(fb), f"{twin.__name__}.{async_name} must be a coroutine function"
        assert not inspect.iscoroutinefunction(fa), name


def test_the_pairs_cover_every_exported_async_class() -> None:
    import finetune_embed

    exported = {n for n in finetune_embed.__all__ if n.startswith("Async")}
    assert exported == {twin.__name__ for _, twin in PAIRS}
