"""PgVectorIndex on a psycopg_pool.ConnectionPool, and AsyncPgVectorIndex."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from finetune_embed import ConfigError, DuplicateIdError
from finetune_embed.index import EmbeddingIndex, Matches

from .conftest import IN_CI

if IN_CI:
    import psycopg_pool
else:
    psycopg_pool = pytest.importorskip("psycopg_pool")

from finetune_embed.index.pgvector import AsyncPgVectorIndex, PgVectorIndex

N, DIM = 400, 12


@pytest.fixture
def pool(conninfo: str) -> Iterator[Any]:
    with psycopg_pool.ConnectionPool(conninfo, min_size=1, max_size=4, open=True) as opened:
        yield opened


def data() -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    x = np.random.default_rng(0).standard_normal((N, DIM)).astype(np.float32)
    return [f"i{i}" for i in range(N)], x, [{"g": i % 4} for i in range(N)]


def test_a_pooled_index_borrows_a_connection_per_operation(pool: Any, table: str) -> None:
    ids, x, meta = data()
    reference = EmbeddingIndex(DIM)
    reference.add(ids, x, meta)
    index = PgVectorIndex(pool, table, dim=DIM)
    index.add(ids, x, meta)
    before = pool.get_stats().get("requests_num", 0)
    with ThreadPoolExecutor(4) as workers:  # threads share the index; each query borrows its own connection
        got = list(workers.map(lambda q: index.search(q, k=5, where={"g": 1}), x[:40]))
    assert [m.ids for m in got] == [reference.search(q, k=5, where={"g": 1}).ids for q in x[:40]]
    assert pool.get_stats()["requests_num"] - before >= 40
    with pytest.raises(ConfigError, match="borrows a connection"):
        _ = index.connection
    index.create_hnsw_index(concurrently=True)  # autocommit for that statement only, on a borrowed connection
    assert index.has_hnsw_index
    index.close()
    assert not pool.closed  # the pool stays the caller's


def test_from_index_on_a_pool_is_one_transaction(pool: Any, table: str) -> None:
    ids, x, meta = data()
    local = EmbeddingIndex(DIM)
    local.add(ids, x, meta)
    copied = PgVectorIndex.from_index(local, pool, table, batch_size=100)
    assert len(copied) == N
    again = EmbeddingIndex(DIM)
    again.add(["new", *ids[:1]], x[:2])  # "i0" is already there: the whole copy rolls back
    with pytest.raises(DuplicateIdError):
        PgVectorIndex.from_index(again, pool, table, batch_size=1)
    assert "new" not in copied
    assert len(copied) == N


def test_async_index_runs_the_api_concurrently(pool: Any, table: str) -> None:
    ids, x, meta = data()
    reference = EmbeddingIndex(DIM, model="m")
    reference.add(ids, x, meta)

    class Embedder:
        model = "m"

        async def embed(self, texts: list[str]) -> np.ndarray:
            return x[[int(t) for t in texts]]

    async def run() -> None:
        async with await AsyncPgVectorIndex.open(pool, table, dim=DIM, model="m") as index:
            await index.add(ids[:200], x[:200], meta[:200])
            await index.upsert(ids[200:], x[200:], meta[200:])
            found = await asyncio.gather(*(index.search(q, k=3) for q in x[:20]))
            assert [m.ids for m in found] == [reference.search(q, k=3).ids for q in x[:20]]
            batch = await index.search(x[:4], k=2)
            assert batch.ids == reference.search(x[:4], k=2).ids
            assert (await index.search_text("7", Embedder(), k=1)).ids == ["i7"]
            assert (await index.search_by_id("i3", k=2)).ids == reference.search_by_id("i3", k=2).ids
            assert await index.count() == N
            assert await index.contains("i5")
            assert await index.delete(["i5", "nope"]) == 1
            assert not await index.contains("i5")
            assert (await index.get("i6")).metadata == {"g": 2}
            pages = [len(page[0]) async for page in index.iter_items(batch_size=150)]
            assert pages == [150, 150, 99]
            await index.create_hnsw_index()
            hit = await index.search(x[9], k=1)
            assert isinstance(hit, Matches)
            assert hit.ids == ["i9"]
            assert index.dim == DIM
            assert index.metric == "cosine"

    asyncio.run(run())


def test_async_index_checks_the_embedder_model(pool: Any, table: str) -> None:
    class Other:
        model = "other"

        async def embed(self, texts: list[str]) -> np.ndarray:
            return np.ones((1, DIM), dtype=np.float32)

    async def run() -> None:
        index = await AsyncPgVectorIndex.open(pool, table, dim=DIM, model="m")
        with pytest.raises(ConfigError, match="cannot be compared"):
            await index.search_text("q", Other())
        await index.aclose()

    asyncio.run(run())
    with pytest.raises(ConfigError, match="wraps a PgVectorIndex"):
        AsyncPgVectorIndex(object())  # type: ignore[arg-type]
