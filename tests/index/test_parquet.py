"""EmbeddingIndex.to_parquet / from_parquet: vectors as Arrow fixed-size lists, metadata, atomic write."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finetune_embed import (
    DatasetFormatError,
    DuplicateIdError,
    FileAccessError,
    InvalidArgumentError,
    MissingDependencyError,
)
from finetune_embed.index import EmbeddingIndex
from finetune_embed.index._parquet import vectors_from_arrow


def _index(metric: str = "cosine", dtype: str = "float32", n: int = 50, dim: int = 8) -> EmbeddingIndex:
    rng = np.random.default_rng(7)
    index = EmbeddingIndex(dim, metric=metric, dtype=dtype, model="text-embedding-3-small")  # type: ignore[arg-type]
    metas = [{"n": i, "tags": ["a", "b"][: i % 3], "nested": {"x": 1.5}} if i % 4 else {} for i in range(n)]
    index.add([f"doc-{i}" for i in range(n)], rng.normal(size=(n, dim)), metas)
    return index


def test_round_trip_keeps_ids_vectors_metadata_and_settings(tmp_path: Path) -> None:
    index = _index(metric="dot")
    path = tmp_path / "index.parquet"
    assert index.to_parquet(path) == 50
    schema = pq.read_schema(path)
    assert schema.field("embedding").type == pa.list_(pa.float32(), 8)  # fixed-size list of float32
    assert schema.names == ["id", "embedding", "metadata"]
    back = EmbeddingIndex.from_parquet(path)
    assert (back.metric, back.dtype, back.model, back.dim) == ("dot", "float32", "text-embedding-3-small", 8)
    assert back.ids == index.ids
    assert np.array_equal(back.vectors, index.vectors)  # dot: stored as given, bit for bit
    assert back.metadata == index.metadata
    query = np.linspace(-1, 1, 8)
    where = {"n": {"$gte": 10}}
    assert back.search(query, k=5, where=where).ids == index.search(query, k=5, where=where).ids


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_round_trip_cosine_per_dtype(tmp_path: Path, dtype: str) -> None:
    index = _index(dtype=dtype)
    path = tmp_path / "index.parquet"
    index.to_parquet(path)
    back = EmbeddingIndex.from_parquet(path)
    assert back.dtype == dtype
    np.testing.assert_allclose(back.vectors, index.vectors, rtol=0, atol=2e-7 if dtype != "float16" else 1e-3)
    query = np.arange(8.0)
    assert back.search(query, k=10).ids == index.search(query, k=10).ids
    other = EmbeddingIndex.from_parquet(path, dtype="float32", metric="dot", model="m2")
    assert (other.dtype, other.metric, other.model) == ("float32", "dot", "m2")


def test_no_metadata_column_when_no_item_has_metadata_and_empty_index(tmp_path: Path) -> None:
    index = EmbeddingIndex(3)
    index.add(["a", "b"], [[1, 0, 0], [0, 1, 0]])
    path = tmp_path / "plain.parquet"
    index.to_parquet(path)
    assert pq.read_schema(path).names == ["id", "embedding"]
    assert EmbeddingIndex.from_parquet(path).metadata == [{}, {}]
    empty = tmp_path / "empty.parquet"
    assert EmbeddingIndex(4).to_parquet(empty) == 0
    back = EmbeddingIndex.from_parquet(empty)
    assert (len(back), back.dim) == (0, 4)


def test_deleted_items_are_not_written(tmp_path: Path) -> None:
    index = _index()
    index.delete(["doc-0", "doc-7"])
    path = tmp_path / "index.parquet"
    assert index.to_parquet(path) == 48
    assert EmbeddingIndex.from_parquet(path).ids == index.ids


def test_foreign_file_from_pandas(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "title": ["a", "b", "c"],
            "emb": [np.array([1, 2, 3], dtype=np.float64), np.array([3, 2, 1.0]), np.array([0, 0, 1.0])],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
            "score": [1, None, 3],
        }
    )
    path = tmp_path / "frame.parquet"
    frame.to_parquet(path)
    index = EmbeddingIndex.from_parquet(path, embedding_column="emb")
    assert index.ids == ["0", "1", "2"]  # no id column: row numbers
    assert (index.metric, index.dtype, index.model) == ("cosine", "float32", None)
    assert index.metadata[0] == {"title": "a", "when": "2024-01-01T00:00:00", "score": 1.0}
    assert index.metadata[1]["score"] is None
    assert index.search([1, 2, 3], k=1).ids == ["0"]
    only = EmbeddingIndex.from_parquet(path, embedding_column="emb", id_column="title", metadata_columns=["score"])
    assert only.ids == ["a", "b", "c"]
    assert only.metadata[2] == {"score": 3.0}


def test_vectors_are_taken_from_arrow_without_a_copy() -> None:
    flat = pa.array(np.arange(24, dtype=np.float32))
    column = pa.FixedSizeListArray.from_arrays(flat, 4).slice(2, 3)  # rows 2..4: the offset must be honoured
    matrix = vectors_from_arrow(pa, column, name="v", path="p", first_row=1)
    assert matrix.shape == (3, 4)
    assert matrix[0, 0] == 8.0
    assert matrix.__array_interface__["data"][0] == flat.buffers()[1].address + 8 * 4  # a view of Arrow's buffer
    ragged = pa.array([[1.0, 2.0], [3.0]], type=pa.list_(pa.float32()))
    with pytest.raises(DatasetFormatError, match="row 2: the vector in column 'v' has 1 numbers; row 1 has 2"):
        vectors_from_arrow(pa, ragged, name="v", path="p", first_row=1)


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (pa.array([[1.0, 2.0], None], type=pa.list_(pa.float32(), 2)), "row 2: the vector in column 'v' is null"),
        (pa.array([[1.0, 2.0], [None, 1.0]], type=pa.list_(pa.float32(), 2)), "row 2: .* holds a null number"),
        (pa.array([["a", "b"]]), "lists of string, not of numbers"),
        (pa.array(["[1, 2]"]), "holds string, not lists of numbers"),
    ],
)
def test_bad_vector_columns_say_which_row(tmp_path: Path, column: pa.Array, message: str) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"v": column}), path)
    with pytest.raises(DatasetFormatError, match=message) as info:
        EmbeddingIndex.from_parquet(path, embedding_column="v")
    assert info.value.path == str(path)


def test_missing_columns_duplicates_and_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table({"id": ["a", "a"], "embedding": [[1.0, 0.0], [0.0, 1.0]]}), path)
    with pytest.raises(DuplicateIdError):
        EmbeddingIndex.from_parquet(path)
    with pytest.raises(DatasetFormatError, match=r"no column 'vec' \(columns: id, embedding\)"):
        EmbeddingIndex.from_parquet(path, embedding_column="vec")
    with pytest.raises(DatasetFormatError, match="no id column 'key'"):
        EmbeddingIndex.from_parquet(path, id_column="key")
    with pytest.raises(DatasetFormatError, match=r"no metadata columns \['x'\]"):
        EmbeddingIndex.from_parquet(path, metadata_columns=["x"])
    text = tmp_path / "vectors.csv"
    text.write_text("id,embedding\n")
    with pytest.raises(DatasetFormatError, match="not a Parquet file"):
        EmbeddingIndex.from_parquet(text)
    with pytest.raises(FileAccessError):
        EmbeddingIndex.from_parquet(tmp_path / "missing.parquet")


def test_tampered_schema_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "index.parquet"
    _index().to_parquet(path)
    table = pq.read_table(path)
    info = json.loads(table.schema.metadata[b"finetune_embed.index"])
    table = table.replace_schema_metadata({b"finetune_embed.index": json.dumps({**info, "format": 99}).encode()})
    pq.write_table(table, path)
    with pytest.raises(DatasetFormatError, match="format 1"):
        EmbeddingIndex.from_parquet(path)


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "index.parquet"
    _index(n=5).to_parquet(path)
    before = path.read_bytes()
    with pytest.raises(InvalidArgumentError, match="vector_column"):
        _index().to_parquet(path, vector_column="id")

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk went away")

    monkeypatch.setattr(pq.ParquetWriter, "write_batch", fail)
    with pytest.raises(RuntimeError, match="disk went away"):
        _index().to_parquet(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["index.parquet"]


def test_without_pyarrow_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match=r"EmbeddingIndex\.to_parquet needs pyarrow") as info:
        _index().to_parquet(tmp_path / "x.parquet")
    assert info.value.extra == "parquet"
    with pytest.raises(MissingDependencyError, match=r"EmbeddingIndex\.from_parquet"):
        EmbeddingIndex.from_parquet(tmp_path / "x.parquet")
