"""Type-checked usage examples of the public API (``mypy --strict tests/typing``); never executed.

If a public signature changes in a way users would notice, this file stops type-checking.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from finetune_embed import (
    AsyncClient,
    BatchMatches,
    Client,
    Dataset,
    Embedder,
    EmbeddingIndex,
    FinetuneEmbedError,
    JobManager,
    Matches,
    RateLimits,
    RetryPolicy,
    Tokenizer,
    ValidationReport,
    VectorIndex,
)


def client_layer() -> None:
    client: Client = Client(api_key="sk-...", timeout=30.0, retry=RetryPolicy(max_attempts=4, max_elapsed=120.0))
    azure: Client = Client.azure(endpoint="https://x.openai.azure.com", api_version="2025-04-01-preview")
    raw = client.request_raw(lambda sdk: sdk.with_raw_response.files.list())
    limits: RateLimits = raw.rate_limits
    remaining: int | None = limits.remaining_requests
    jobs: JobManager = azure.jobs
    del remaining, jobs
    aclient: AsyncClient = AsyncClient()
    del aclient


def datasets() -> None:
    report: ValidationReport = Dataset.validate_file("train.jsonl", model="gpt-4o-mini")
    ok: bool = report.ok
    ds = Dataset.from_json("train.jsonl")
    train, test = ds.train_test_split(test_size=0.1, seed=0)
    n: int = len(train) + len(test)
    del ok, n
    try:
        report.raise_for_issues()
    except FinetuneEmbedError as exc:
        print(exc.docs)


def embeddings_and_search() -> None:
    embedder = Embedder(Client(), model="text-embedding-3-small", dimensions=256)
    vectors: npt.NDArray[np.float32] = embedder.embed(["a", "b"])
    index = EmbeddingIndex(dim=256, metric="cosine")
    index.add(["a", "b"], vectors, [{"lang": "en"}, {"lang": "de"}])
    one = index.search(vectors[0], k=5, where={"lang": "en"})
    assert isinstance(one, Matches)
    many = index.search(vectors, k=5)
    assert isinstance(many, BatchMatches)
    first_ids: list[str] = one.ids
    del first_ids
    store: VectorIndex = index  # every backend implements the one protocol
    batch: BatchMatches = store.search(vectors, k=3)  # a matrix: BatchMatches, no isinstance needed
    single: Matches = store.search([0.1] * 256, k=3, where={"$or": [{"lang": "en"}, {"lang": {"$exists": False}}]})
    by_vector: Matches = store.search(store.get("a").vector, k=3)
    dense_ids: npt.NDArray[np.str_] = batch.dense().ids
    with store:
        for ids, block, metas in store.iter_items(batch_size=100):
            del ids, block, metas
    del single, by_vector, dense_ids
    tokens: int = Tokenizer.for_model("gpt-4o-mini").count("hello")
    del tokens
