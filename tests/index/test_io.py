"""from_csv (the cookbook's stringified embeddings), pandas interchange, build / search_text with an embedder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finetune_embed import _exceptions as exc
from finetune_embed.index import EmbeddingIndex, SupportsEmbed
from finetune_embed.index._io import convert_cell, parse_vector


def _write_csv(path: Path, rows: list[list[str]], header: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _cookbook_like(tmp_path: Path, n: int = 50, d: int = 8) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, d))
    rows = [
        [str(i), f"B00{i}", str(1 + i % 5), f"Summary, with a comma {i}", f"Text\nline two {i}", str(v.tolist())]
        for i, v in enumerate(vectors)
    ]
    header = ["", "ProductId", "Score", "Summary", "Text", "ada_embedding"]
    return _write_csv(tmp_path / "emb.csv", rows, header), vectors


def test_from_csv_reads_the_cookbook_format(tmp_path: Path) -> None:
    path, vectors = _cookbook_like(tmp_path)
    index = EmbeddingIndex.from_csv(path, embedding_column="ada_embedding")
    assert len(index) == 50
    assert index.dim == 8
    assert index.ids[:3] == ["0", "1", "2"]
    assert index.get("3").metadata == {
        "ProductId": "B003",
        "Score": 4,
        "Summary": "Summary, with a comma 3",
        "Text": "Text\nline two 3",
    }
    np.testing.assert_allclose(index.get("7").vector, vectors[7] / np.linalg.norm(vectors[7]), rtol=1e-6)
    by_product = EmbeddingIndex.from_csv(
        path, embedding_column="ada_embedding", id_column="ProductId", metadata_columns=["Score"]
    )
    assert by_product.ids[0] == "B000"
    assert by_product.get("B001").metadata == {"Score": 2}
    assert len(by_product.search(vectors[0], k=5, where={"Score": {"$gte": 4}})) == 5
    raw = EmbeddingIndex.from_csv(path, embedding_column="ada_embedding", metadata_columns=["Score"], infer_types=False)
    assert raw.get("0").metadata == {"Score": "1"}


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("0.1, 0.2", "expected a list of numbers"),
        ("[0.1, 0.2", "expected a list of numbers"),
        ("[0.1, oops]", "not a valid list of numbers"),
        ('[0.1, "0.2"]', "item 1 of the vector in column 'ada_embedding' is '0.2', not a number"),
        ("[0.1, NaN]", "item 1 of the vector in column 'ada_embedding' is nan"),
        ("[]", "is empty"),
        ("[0.1, 0.2, 0.3]", "has 3 numbers; earlier rows have 2"),
        ("__import__('os').system('echo pwned')", "expected a list of numbers"),
    ],
)
def test_from_csv_errors_name_the_line(tmp_path: Path, cell: str, message: str) -> None:
    path = _write_csv(tmp_path / "bad.csv", [["a", "[1, 2]"], ["b", "[3, 4]"], ["c", cell]], ["id", "ada_embedding"])
    with pytest.raises(exc.DatasetFormatError, match=message) as info:
        EmbeddingIndex.from_csv(path, embedding_column="ada_embedding", id_column="id")
    assert info.value.line == 4
    assert str(info.value).startswith(f"{path}:4: ")


def test_from_csv_other_errors(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "d.csv", [["a", "[1, 2]"], ["a", "[3, 4]"]], ["id", "embedding"])
    with pytest.raises(exc.DuplicateIdError, match=r"d\.csv:3: id 'a' already appeared on line 2"):
        EmbeddingIndex.from_csv(path, id_column="id")
    with pytest.raises(exc.DatasetFormatError, match=r"no column 'vec'.*embedding_column"):
        EmbeddingIndex.from_csv(path, embedding_column="vec")
    with pytest.raises(exc.DatasetFormatError, match="no id column"):
        EmbeddingIndex.from_csv(path, id_column="nope")
    with pytest.raises(exc.DatasetFormatError, match="no metadata columns"):
        EmbeddingIndex.from_csv(path, metadata_columns=["nope"])
    zero = _write_csv(tmp_path / "z.csv", [["a", "[1, 2]"], ["b", "[0, 0]"]], ["id", "embedding"])
    with pytest.raises(exc.InvalidVectorError, match=r"z\.csv:3: .*all zeros") as info:
        EmbeddingIndex.from_csv(zero, id_column="id")
    assert info.value.ids == ["b"]
    short = tmp_path / "s.csv"
    short.write_text("id,embedding\na,\"[1, 2]\"\nb\n", encoding="utf-8")
    with pytest.raises(exc.DatasetFormatError, match="1 fields but the header has 2"):
        EmbeddingIndex.from_csv(short, id_column="id")
    empty = tmp_path / "e.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(exc.DatasetFormatError, match="empty"):
        EmbeddingIndex.from_csv(empty)
    latin = tmp_path / "l.csv"
    latin.write_bytes("id,embedding\ncaf\xe9,\"[1, 2]\"\n".encode("latin-1"))
    with pytest.raises(exc.DatasetFormatError, match="not utf-8"):
        EmbeddingIndex.from_csv(latin, id_column="id")
    assert len(EmbeddingIndex.from_csv(latin, id_column="id", encoding="latin-1")) == 1


def test_from_csv_streams_in_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rows = [[f"r{i}", str(rng.standard_normal(4).tolist())] for i in range(9000)]  # more than one chunk
    index = EmbeddingIndex.from_csv(_write_csv(tmp_path / "big.csv", rows, ["id", "embedding"]), id_column="id")
    assert len(index) == 9000
    assert index.ids[-1] == "r8999"


def test_cells() -> None:
    assert [convert_cell(c) for c in ["", "5", "-3", "007", "1.5", "1e3", "nan", " 5", "abc", "2.50"]] == [
        None, 5, -3, "007", 1.5, "1e3", "nan", " 5", "abc", "2.50",
    ]
    assert parse_vector("  [1, 2.5e-3]\n") == [1, 0.0025]


def test_pandas_round_trip() -> None:
    rng = np.random.default_rng(2)
    df = pd.DataFrame(
        {
            "doc": ["a", "b", "c"],
            "embedding": list(rng.standard_normal((3, 4)).astype(np.float32)),
            "score": [1.0, np.nan, 3.0],
            "n": np.array([1, 2, 3], dtype=np.int64),
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
        }
    )
    index = EmbeddingIndex.from_pandas(df, id_column="doc", metric="dot")
    assert index.ids == ["a", "b", "c"]
    assert index.get("b").metadata == {"score": None, "n": 2, "when": "2024-01-02T00:00:00"}
    assert index.get("c").metadata["when"] is None
    out = index.to_pandas()
    assert list(out.columns) == ["id", "embedding", "score", "n", "when"]
    np.testing.assert_array_equal(np.stack(out["embedding"].to_list()), np.stack(df["embedding"].to_list()))
    strings = pd.DataFrame({"embedding": ["[1, 0]", "[0, 1]"]}, index=[10, 11])
    assert EmbeddingIndex.from_pandas(strings).ids == ["10", "11"]
    with pytest.raises(exc.ConfigError, match="no column"):
        EmbeddingIndex.from_pandas(strings, embedding_column="vec")
    with pytest.raises(exc.DimensionMismatchError):
        EmbeddingIndex.from_pandas(pd.DataFrame({"embedding": [[1, 0], [1, 2, 3]]}))


class WordEmbedder:
    """A tiny deterministic embedder: one dimension per known word."""

    model = "toy-words"
    words = ("coffee", "tea", "dog", "cat", "sweet", "bitter")

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.words)), dtype=np.float32)
        for i, t in enumerate(texts):
            for j, w in enumerate(self.words):
                out[i, j] = t.lower().count(w)
            out[i, -1] += 0.01  # never a zero vector
        return out


def test_build_and_search_text() -> None:
    embedder = WordEmbedder()
    assert isinstance(embedder, SupportsEmbed)
    texts = ["Great coffee", "Bitter tea", "My dog loves it", "Sweet tea and coffee", "cat food"]
    index = EmbeddingIndex.build(texts, embedder, metadata=[{"n": i} for i in range(5)])
    assert index.model == "toy-words"
    assert index.get("1").metadata == {"n": 1, "text": "Bitter tea"}
    hits = index.search_text("coffee please", embedder, k=2)
    assert hits.ids == ["0", "3"]
    assert hits.metadata[0]["text"] == "Great coffee"

    class Other(WordEmbedder):
        model = "another-model"

    with pytest.raises(exc.ConfigError, match="cannot be compared"):
        index.search_text("coffee", Other())
    bare = EmbeddingIndex.build(texts, embedder, ids=list("abcde"), text_field=None)
    assert bare.get("a").metadata == {}
    with pytest.raises(exc.ConfigError, match="5 texts but 2 ids"):
        EmbeddingIndex.build(texts, embedder, ids=["a", "b"])


def test_build_with_the_embedder_and_fake_openai() -> None:
    from finetune_embed.embeddings import Embedder
    from finetune_embed.testing import FakeOpenAI

    embedder = Embedder(FakeOpenAI().client(), model="text-embedding-3-small", cache=False)
    texts = ["the coffee was great", "terrible tea", "my dog loves these treats", "coffee beans, great aroma"]
    index = EmbeddingIndex.build(texts, embedder)
    assert (index.dim, index.model) == (1536, "text-embedding-3-small")
    assert index.search_text("great coffee", embedder, k=2).ids == ["0", "3"]
