"""Chat completions through the library's client: one retry layer, rate pacing, concurrency and a response cache.

* :class:`ChatCompletions` (``client.chat``) and :class:`AsyncChatCompletions` (``async_client.chat``):
  ``create(model, messages, **params)`` for one answer, ``create_many(requests)`` for many, concurrently.
* :class:`ChatCache`: the persistent SQLite cache keyed by (server, model, messages, tools, sampling parameters),
  a checksum per row: asking again costs nothing; an interrupted run resumes without paying twice.
* :class:`ChatResult`, :class:`ChatUsage`, :class:`ToolCallResult`, :class:`ChatRequest`.

>>> from finetune_embed.testing import FakeOpenAI
>>> client = FakeOpenAI().client()
>>> result = client.chat.create("gpt-4o-mini", [{"role": "user", "content": "Hi"}], cache=False)
>>> result.usage.prompt_tokens > 0, result.cached
(True, False)
"""

from __future__ import annotations

from ._async import AsyncChatCompletions
from ._cache import ChatCache, default_chat_cache_path
from ._completions import ChatCompletions
from ._request import ChatRequest
from ._types import ChatResult, ChatUsage, ToolCallResult

__all__ = [
    "AsyncChatCompletions",
    "ChatCache",
    "ChatCompletions",
    "ChatRequest",
    "ChatResult",
    "ChatUsage",
    "ToolCallResult",
    "default_chat_cache_path",
]
