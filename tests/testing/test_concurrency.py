"""The fake is shared by threads (the Embedder's workers, the threaded loopback server): nothing is lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import openai

from finetune_embed.testing import FakeOpenAI

from ._data import chat_file


def test_threads_share_one_fake() -> None:
    fake = FakeOpenAI(rpm=150)
    sdk = fake.openai_client()

    def work(worker: int) -> int:
        limited = 0
        for i in range(25):
            try:
                sdk.embeddings.create(model="text-embedding-3-small", input=[f"w{worker} t{i}"])
            except openai.RateLimitError:
                limited += 1
        sdk.files.create(file=(f"{worker}.jsonl", chat_file(1)), purpose="fine-tune")
        return limited

    with ThreadPoolExecutor(8) as pool:
        limited = sum(pool.map(work, range(8)))
    assert fake.ledger.embedding_requests == 150  # exactly the bucket, no more, no less
    assert limited == fake.ledger.rate_limited == 200 - 150
    assert sum(fake.ledger.billed_texts.values()) == 150
    assert len(fake.ledger.requests) == 200 + 8
    assert len({f.id for f in sdk.files.list()}) == 8
    assert len({r.request_id for r in fake.ledger.requests}) == len(fake.ledger.requests) == 209
