"""The ledger: every request the fake answered, the 429s it sent and the tokens it billed, per text."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Ledger", "RequestRecord"]


@dataclass(frozen=True)
class RequestRecord:
    """One request: what was asked and what the fake answered.

    ``endpoint`` is the canonical OpenAI path (``/v1/embeddings`` for Azure's
    ``/openai/deployments/{name}/embeddings`` too); ``tokens`` is what the request billed (0 unless a
    successful embeddings or chat request); ``fault`` is ``"timeout"``/``"disconnect"`` when no response was sent.
    """

    time: float
    method: str
    path: str
    endpoint: str
    status: int | None
    request_id: str
    tokens: int = 0
    model: str | None = None
    n_inputs: int = 0
    fault: str | None = None
    injected: bool = False
    layout: str = "openai"


@dataclass
class Ledger:
    """Thread-safe accounting of what the fake did; read it in tests.

    >>> from finetune_embed.testing import FakeOpenAI
    >>> fake = FakeOpenAI()
    >>> _ = fake.openai_client().embeddings.create(model="text-embedding-3-small", input=["a b", "c"])
    >>> fake.ledger.embedding_requests, fake.ledger.billed_texts["a b"]
    (1, 1)
    """

    _records: list[RequestRecord] = field(default_factory=list)
    _billed_texts: Counter[str] = field(default_factory=Counter)
    _tokens_billed: int = 0
    _batch_tokens_billed: int = 0
    _chat_prompt_tokens: int = 0
    _chat_completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, rec: RequestRecord) -> None:
        """Add one request."""
        with self._lock:
            self._records.append(rec)

    def bill(self, texts: Sequence[str], tokens: int, *, batch: bool = False) -> None:
        """Bill ``tokens`` for embedding ``texts`` (sync requests and batch lines alike)."""
        with self._lock:
            self._billed_texts.update(texts)
            self._tokens_billed += tokens
            if batch:
                self._batch_tokens_billed += tokens

    def bill_chat(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Bill one chat completion's prompt and completion tokens."""
        with self._lock:
            self._chat_prompt_tokens += prompt_tokens
            self._chat_completion_tokens += completion_tokens

    @property
    def chat_requests(self) -> int:
        """Number of successful (200) chat completion requests."""
        return self.count("/v1/chat/completions", status=200)

    @property
    def chat_tokens_billed(self) -> tuple[int, int]:
        """``(prompt, completion)`` tokens billed by successful chat completions."""
        with self._lock:
            return self._chat_prompt_tokens, self._chat_completion_tokens

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._records)

    @property
    def rate_limited(self) -> int:
        """How many 429 responses were sent (rate limits and injected 429s alike)."""
        return self.count(status=429)

    @property
    def tokens_billed(self) -> int:
        """Total tokens billed: successful embeddings requests plus completed batch lines."""
        with self._lock:
            return self._tokens_billed

    @property
    def batch_tokens_billed(self) -> int:
        """The part of :attr:`tokens_billed` that came from batch lines."""
        with self._lock:
            return self._batch_tokens_billed

    @property
    def billed_texts(self) -> Counter[str]:
        """How many times each input text was billed (token-array inputs count as their decoded text)."""
        with self._lock:
            return Counter(self._billed_texts)

    @property
    def embedding_requests(self) -> int:
        """Number of successful (200) embeddings requests."""
        return self.count("/v1/embeddings", status=200)

    def count(self, endpoint: str | None = None, *, status: int | None = None, method: str | None = None) -> int:
        """How many requests matched (``endpoint`` canonical, e.g. ``"/v1/files"``)."""
        with self._lock:
            return sum(
                1
                for r in self._records
                if (endpoint is None or r.endpoint == endpoint)
                and (status is None or r.status == status)
                and (method is None or r.method == method.upper())
            )

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self._records.clear()
            self._billed_texts.clear()
            self._tokens_billed = 0
            self._batch_tokens_billed = 0
            self._chat_prompt_tokens = 0
            self._chat_completion_tokens = 0
