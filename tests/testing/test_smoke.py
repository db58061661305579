"""The smallest end-to-end checks: other test suites rely on these paths working."""

from __future__ import annotations

import asyncio

import numpy as np
import openai

from finetune_embed import RetryPolicy
from finetune_embed.testing import FakeClock, FakeOpenAI


def test_sdk_embeddings_roundtrip() -> None:
    fake = FakeOpenAI()
    resp = fake.openai_client().embeddings.create(model="text-embedding-3-small", input=["hello world", "bye"])
    assert isinstance(resp, openai.types.CreateEmbeddingResponse)
    assert [d.index for d in resp.data] == [0, 1]
    got = np.asarray(resp.data[0].embedding, dtype=np.float32)
    assert np.array_equal(got, fake.embedding("hello world"))
    assert resp.usage.prompt_tokens == 3
    assert fake.ledger.embedding_requests == 1
    assert fake.ledger.billed_texts == {"hello world": 1, "bye": 1}


def test_our_client_on_the_fake_with_retries_on_fake_clock() -> None:
    fake = FakeOpenAI(clock=FakeClock(start=0.0))
    fake.inject(503, times=2)
    client = fake.client(retry=RetryPolicy(sleep=fake.sleep, jitter=0.0))
    raw = client.request_raw(
        lambda sdk: sdk.with_raw_response.embeddings.create(model="text-embedding-3-small", input="x")
    )
    assert raw.status_code == 200
    assert fake.ledger.count("/v1/embeddings", status=503) == 2
    assert fake.clock.now() > 0  # the retry waits advanced the fake clock instead of sleeping


def test_async_client_on_the_fake() -> None:
    fake = FakeOpenAI()

    async def go() -> int:
        async with fake.async_client() as client:
            resp = await client.request(lambda sdk: sdk.embeddings.create(model="text-embedding-3-small", input=["a"]))
            return len(resp.data)

    assert asyncio.run(go()) == 1
