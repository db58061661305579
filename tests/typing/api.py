"""Type-checked usage examples of the public API (``mypy --strict tests/typing``); never executed.

If a public signature changes in a way users would notice, this file stops type-checking.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from finetune_embed import (
    AsyncChatCompletions,
    AsyncClient,
    BatchMatches,
    Candidate,
    ChatCache,
    ChatCompletions,
    ChatResult,
    Client,
    Dataset,
    DatasetAnalysis,
    Embedder,
    EmbeddingIndex,
    Evaluation,
    EvaluationReport,
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


def vector_stores() -> None:
    from finetune_embed.stores import ChromaIndex, QdrantIndex, TypesenseIndex

    chroma: VectorIndex = ChromaIndex("docs", path="chroma-data", dim=3, metric="dot")
    hits: Matches = chroma.search([0.1, 0.2, 0.3], k=2, where={"lang": "en"})
    qdrant: VectorIndex = QdrantIndex("docs", url="http://localhost:6333", api_key="key", exact=True)
    batch: BatchMatches = qdrant.search([[0.1, 0.2, 0.3]], k=2)
    typesense: VectorIndex = TypesenseIndex(["http://10.0.0.1:8108", "http://10.0.0.2:8108"], "docs", api_key="k")
    del hits, batch, typesense


def moving_data() -> None:
    from finetune_embed.stores import ChromaIndex, CopyResult, copy

    target = ChromaIndex("docs", path="chroma-data")
    result: CopyResult = copy(EmbeddingIndex(3), target, batch_size=500, progress=False)
    moved: int = result.copied + result.skipped
    total: int = copy(EmbeddingIndex(3), EmbeddingIndex(3), overwrite=True).total
    del moved, total


def chat_completions() -> None:
    client = Client()
    result: ChatResult = client.chat.create("gpt-4o-mini", [{"role": "user", "content": "Hi"}], temperature=0)
    text: str = result.text
    content: str | None = result.content
    names: list[str] = [call.name for call in result.tool_calls]
    latency: float = result.latency
    prompt_tokens: int = result.usage.prompt_tokens
    del text, content, names, latency, prompt_tokens
    chat = ChatCompletions(client, cache=ChatCache("chat.sqlite"), max_concurrency=8, tpm=200_000)
    many = chat.create_many(
        [{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}], return_exceptions=True
    )
    answers: list[str] = [r.text for r in many if isinstance(r, ChatResult)]
    del answers
    achat: AsyncChatCompletions = AsyncClient().chat
    del achat


def evaluation() -> None:
    client = Client()
    train, test = Dataset.from_json("data.jsonl").train_test_split(test_size=0.1, seed=0)
    embedder = Embedder(client)
    run = Evaluation(
        test,
        ["gpt-4.1-mini", Candidate("ft:gpt-4.1-mini-2025-04-14:org:x:abc", name="tuned", system="Be brief.")],
        client=client,
        embedder=embedder,
        scorers=["exact", "normalized", "embedding", "regex:^(yes|no)$", lambda p, r: p == r],
        params={"temperature": 0},
        max_concurrency=8,
    )
    report: EvaluationReport = run.run()
    exact: float = report.mean("tuned", "exact")
    low: float = report.ci("tuned", "exact").low
    wins: int = report.compare("gpt-4.1-mini", "tuned", scorer="exact")[0].wins
    lines: list[int] = [row.line for row in report.worst("exact", "tuned", n=5)]
    cost: float | None = report.usage["tuned"].cost_usd
    del exact, low, wins, lines, cost, train


def data_quality() -> None:
    embedder = Embedder(Client(), model="text-embedding-3-small")
    analysis: DatasetAnalysis = Dataset.from_json("train.jsonl").analyze(embedder, validation="valid.jsonl")
    conflicting: list[list[int]] = [group.lines for group in analysis.conflicts]
    sizes: list[int] = [cluster.size for cluster in analysis.clusters]
    refusals: list[float] = [cluster.refusal_share for cluster in analysis.clusters]
    leaked: list[int] = [leak.validation_line for leak in analysis.leaks or []]
    odd: list[int] = [outlier.line for outlier in analysis.outliers]
    del conflicting, sizes, refusals, leaked, odd
