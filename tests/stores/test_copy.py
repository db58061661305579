"""copy(): any backend to any other, on the real engines; an interrupted copy resumed gives exactly the source."""

from __future__ import annotations

import csv
import doctest
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from finetune_embed import ConfigError, DimensionMismatchError, DuplicateIdError, InvalidArgumentError
from finetune_embed.index import EmbeddingIndex, VectorIndex
from finetune_embed.stores import CopyResult, copy
from finetune_embed.testing import FakeOpenAI

from ._data import metadata, vectors
from .conftest import Backend, unique_name

N, DIM = 450, 16
RESUME_BACKENDS = [
    "memory", "pgvector", "pgvector-halfvec-hnsw", "chroma", "chroma-server", "qdrant", "redis", "redis-cluster",
    "typesense",
]


def _source(n: int = N, metric: str = "cosine") -> EmbeddingIndex:
    """Items with metadata of every JSON type (nesting, null, lists, ints and floats, look-alike strings)."""
    src = EmbeddingIndex(DIM, metric=metric)  # type: ignore[arg-type]
    src.add([f"doc-{i}" for i in range(n)], vectors(n, DIM, seed=3), metadata(n, seed=3))
    return src


def _contents(store: VectorIndex) -> tuple[list[str], npt.NDArray[np.float32], list[dict[str, Any]]]:
    ids: list[str] = []
    parts: list[npt.NDArray[np.float32]] = []
    metas: list[dict[str, Any]] = []
    for batch_ids, batch_vectors, batch_meta in store.iter_items(97):
        ids += batch_ids
        parts.append(batch_vectors)
        metas += batch_meta
    return ids, np.concatenate(parts) if parts else np.zeros((0, 0), np.float32), metas


def assert_same_items(dst: VectorIndex, src: VectorIndex, atol: float = 1e-6) -> None:
    """``dst`` holds exactly ``src``'s items: the same ids in the same order, vectors and metadata."""
    got_ids, got_vectors, got_meta = _contents(dst)
    want_ids, want_vectors, want_meta = _contents(src)
    assert got_ids == want_ids
    assert len(dst) == len(src)
    np.testing.assert_allclose(got_vectors, want_vectors, atol=atol, rtol=0)
    assert got_meta == want_meta
    for one, other in zip(got_meta, want_meta, strict=True):  # == calls 1 and True equal: compare the JSON types
        assert repr(one) == repr(other) or _json_types(one) == _json_types(other)


def _json_types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_types(v) for v in value]
    return "bool" if isinstance(value, bool) else "number" if isinstance(value, int | float) else type(value).__name__


class Crash(Exception):
    """What the process dying in the middle of a write looks like to the copy."""


class CrashingStore:
    """A real store whose ``fail_at``-th ``add`` writes the first ``written`` items of its batch, then dies."""

    def __init__(self, inner: VectorIndex, fail_at: int, written: int) -> None:
        self.inner, self.fail_at, self.written, self.calls = inner, fail_at, written, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __len__(self) -> int:
        return len(self.inner)

    def add(self, ids: list[str], vectors: Any, metadata: Any = None) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            if self.written:
                self.inner.add(ids[: self.written], vectors[: self.written], metadata[: self.written])
            raise Crash(f"killed during add #{self.calls}")
        self.inner.add(ids, vectors, metadata)


# --- resuming, on every engine as the destination ----------------------------------------------------------------


@pytest.mark.parametrize("backend", RESUME_BACKENDS, indirect=True)
def test_an_interrupted_copy_resumed_gives_exactly_the_source(backend: Backend) -> None:
    src = _source()
    dst = backend.create(None, "cosine")
    with pytest.raises(Crash):
        copy(src, CrashingStore(dst, fail_at=3, written=40), batch_size=100)  # type: ignore[arg-type]
    assert len(dst) == 240  # two whole batches and 40 items of the third
    result = copy(src, dst, batch_size=100)
    assert result == CopyResult(copied=N - 240, skipped=240)
    assert result.total == N
    assert_same_items(dst, src, atol=backend.vector_atol)
    again = copy(src, dst, batch_size=64)  # a finished copy run again writes nothing
    assert again == CopyResult(copied=0, skipped=N)
    assert_same_items(dst, src, atol=backend.vector_atol)


@pytest.mark.parametrize("backend", ["memory", "pgvector", "chroma", "redis"], indirect=True)
def test_different_content_under_a_copied_id_stops_before_the_batch_is_written(backend: Backend) -> None:
    src = _source(120)
    dst = backend.create(DIM, "cosine")
    original = src.get("doc-70")
    dst.add("doc-70", original.vector, {**original.metadata, "edited": True})
    with pytest.raises(DuplicateIdError, match=r"different vector or metadata: .doc-70.") as caught:
        copy(src, dst, batch_size=50)
    assert caught.value.ids == ["doc-70"]
    assert len(dst) == 1 + 50  # the first batch went in; nothing of the batch holding doc-70
    assert dst.get("doc-70").metadata["edited"] is True
    replaced = copy(src, dst, batch_size=50, overwrite=True)
    assert replaced == CopyResult(copied=120, skipped=0)
    assert dst.get("doc-70").metadata == original.metadata
    assert sorted(_contents(dst)[0]) == sorted(_contents(src)[0])


# --- the pairs of the issue ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["pgvector"], indirect=True)
def test_memory_to_pgvector(backend: Backend) -> None:
    src = _source(metric="dot")
    dst = backend.create(None, "dot")
    assert copy(src, dst, batch_size=128) == CopyResult(copied=N, skipped=0)
    assert_same_items(dst, src)
    query = vectors(1, DIM, seed=9)[0]
    assert dst.search(query, k=10).ids == src.search(query, k=10).ids


@pytest.mark.parametrize("backend", ["chroma"], indirect=True)
def test_pgvector_to_chroma(backend: Backend, pg_conninfo: str) -> None:
    from finetune_embed.index.pgvector import PgVectorIndex

    with PgVectorIndex(pg_conninfo, unique_name("copy"), dim=DIM) as pg:
        reference = _source()
        copy(reference, pg)
        chroma = backend.create(None, "cosine")
        result = copy(pg, chroma, batch_size=200, progress=False)
        assert result == CopyResult(copied=N, skipped=0)
        assert_same_items(chroma, pg)
        assert chroma.dim == DIM
        query = vectors(1, DIM, seed=11)[0]
        assert chroma.search(query, k=5, where={"lang": "fr"}).ids == pg.search(query, k=5, where={"lang": "fr"}).ids


def _cookbook_csv(cookbook: Path, out: Path, dim: int = 64) -> Path:
    """fine_food_reviews_1k.csv with an ``embedding`` column as the cookbook writes it (a stringified list), the
    vectors of "Title: <Summary>; Content: <Text>" from FakeOpenAI's text-embedding-3-small."""
    fake = FakeOpenAI()
    with open(cookbook / "fine_food_reviews_1k.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["ProductId", "UserId", "Score", "Summary", "embedding"])
        for row in rows:
            text = f"Title: {row['Summary'].strip()}; Content: {row['Text'].strip()}"
            vector = fake.embedding(text, model="text-embedding-3-small", dimensions=dim)
            writer.writerow([row["ProductId"], row["UserId"], row["Score"], row["Summary"], str(vector.tolist())])
    return out


@pytest.mark.parametrize("backend", ["chroma", "qdrant", "redis"], indirect=True)
def test_cookbook_csv_to_index_to_engine(backend: Backend, cookbook: Path, tmp_path: Path) -> None:
    path = _cookbook_csv(cookbook, tmp_path / "reviews_with_embeddings.csv")
    index = EmbeddingIndex.from_csv(path, metadata_columns=["ProductId", "Score", "Summary"],
                                    model="text-embedding-3-small")
    assert len(index) == 1000
    store = backend.create(None, "cosine")
    assert copy(index, store, batch_size=250) == CopyResult(copied=1000, skipped=0)
    assert_same_items(store, index)
    query = index.get("17").vector
    got = store.search(query, k=10, where={"Score": {"$gte": 4}})
    want = index.search(query, k=10, where={"Score": {"$gte": 4}})
    # the file repeats review texts (762 distinct of 1,000): equal vectors tie, and engines order ties their own way,
    # so check that the engine's hits are a true top 10: their exact scores are the reference's, rank by rank
    exact = [float(index.get(item_id).vector @ query) for item_id in got.ids]
    np.testing.assert_allclose(exact, want.scores, atol=1e-5)
    assert len(set(got.ids)) == 10
    assert all(index.get(item_id).metadata["Score"] >= 4 for item_id in got.ids)


# --- refused before anything is written ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "pgvector"], indirect=True)
def test_mismatches_are_refused_before_anything_is_written(backend: Backend) -> None:
    src = _source(30)
    other_dim = backend.create(DIM + 1, "cosine")
    with pytest.raises(DimensionMismatchError, match=r"16-dimensional.*17-dimensional") as caught:
        copy(src, other_dim)
    assert (caught.value.expected, caught.value.got) == (DIM + 1, DIM)
    assert len(other_dim) == 0
    dot = backend.create(None, "dot")
    with pytest.raises(ConfigError, match=r"metric='cosine'.*metric='dot'"):
        copy(src, dot)
    assert len(dot) == 0


def test_models_self_and_batch_size_are_checked() -> None:
    src = EmbeddingIndex(2, model="text-embedding-3-small")
    src.add("a", [1, 0])
    with pytest.raises(ConfigError, match="different models"):
        copy(src, EmbeddingIndex(2, model="text-embedding-3-large"))
    with pytest.raises(ConfigError, match="same object"):
        copy(src, src)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="batch_size"):
            copy(src, EmbeddingIndex(2), batch_size=bad)  # type: ignore[arg-type]
    empty = EmbeddingIndex(None)
    assert copy(empty, EmbeddingIndex(None)) == CopyResult(0, 0)


def test_json_types_decide_what_is_the_same(capfd: pytest.CaptureFixture[str]) -> None:
    """``true`` is not ``1`` (a rerun must not take one for the other), ``3`` is ``3.0``; no bar off a terminal."""
    src = EmbeddingIndex(2)
    src.add(["a", "b"], [[1, 0], [0, 1]], [{"flag": True}, {"n": 3}])
    dst = EmbeddingIndex(2)
    dst.add("b", [0, 1], {"n": 3.0})
    assert copy(src, dst) == CopyResult(copied=1, skipped=1)
    other = EmbeddingIndex(2)
    other.add("a", [1, 0], {"flag": 1})
    with pytest.raises(DuplicateIdError):
        copy(src, other)
    moved = EmbeddingIndex(2)
    moved.add("a", [1, 0.01], {"flag": True})  # another vector under the same id
    with pytest.raises(DuplicateIdError, match="different vector"):
        copy(src, moved)
    assert capfd.readouterr().err == ""


def test_the_docstring_example_runs() -> None:
    from finetune_embed.stores import _copy

    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(_copy.copy, "copy", module=False, globs=dict(vars(_copy))):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert (result.failed, result.attempted >= 4) == (0, True)
