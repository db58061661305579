"""#11 items 7, 9, 13: huge k, vectors whose 1/norm overflows float32, deep JSON, 400-digit integers, and no
process-wide settings changed by reading a CSV."""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from finetune_embed import _exceptions as exc
from finetune_embed.cli import main
from finetune_embed.index import EmbeddingIndex, mmr, outlier_scores, recommend
from finetune_embed.index._vectors import normalize_rows


def _index(kind: str = "float32", n: int = 300, metric: str = "cosine") -> EmbeddingIndex:
    rng = np.random.default_rng(1)
    index = EmbeddingIndex(8, dtype=kind, metric=metric)  # type: ignore[arg-type]
    index.add([f"i{j}" for j in range(n)], rng.standard_normal((n, 8)), [{"g": j % 3} for j in range(n)])
    return index


@pytest.mark.parametrize("kind", ["float32", "float16", "int8"])
@pytest.mark.parametrize("k", [10**9, 10**30, np.int64(2**62)])
def test_a_huge_k_is_capped_at_the_candidates(kind: str, k: int) -> None:
    """k=10**9 used to allocate k-sized buffers (7.45 GiB)."""
    index = _index(kind)
    index.delete(["i0"])
    q = np.random.default_rng(2).standard_normal((3, 8))
    tracemalloc.start()
    try:
        one = index.search(q[0], k=k)
        batch = index.search(q, k=k)
        filtered = index.search(q[0], k=k, where={"g": 1})
        by_id = index.search_by_id("i1", k=k)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 << 20
    assert len(one) == 299
    assert [len(m) for m in batch] == [299] * 3
    assert len(filtered) == 100
    assert len(by_id) == 298
    assert one.ids == index.search(q[0], k=299).ids


def test_the_use_cases_with_a_huge_k() -> None:
    index = _index()
    assert len(mmr(index, np.ones(8), k=10**9)) == 300
    assert len(recommend(index, "i3", k=10**9)) == 299
    assert outlier_scores(index, k=10**9).shape == (300,)


def test_the_cli_search_with_a_huge_k(tmp_path: Path) -> None:
    path = _index().save(tmp_path / "idx")
    np.save(tmp_path / "q.npy", np.ones(8, dtype=np.float32))
    r = CliRunner().invoke(main, ["index", "search", str(path), "--vector-file", str(tmp_path / "q.npy"), "-k",
                                  str(10**12), "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)[0]) == 300


@pytest.mark.parametrize("kind", ["float32", "float16", "int8"])
@pytest.mark.parametrize("tiny", [[1e-40, 0, 0], [0, -3e-42, 1e-45], [3e38, -3e38, 3e38]])
def test_vectors_whose_reciprocal_norm_overflows_float32(kind: str, tiny: list[float]) -> None:
    """[1e-40, 0, 0] used to be stored as NaN; searches then returned [] with a RuntimeWarning (an error here)."""
    index = EmbeddingIndex(3, dtype=kind)  # type: ignore[arg-type]
    index.add(["tiny", "x", "y"], [tiny, [1, 0, 0], [0, 1, 0]])
    stored = index.get("tiny").vector
    tol = 1e-3 if kind == "float16" else 1e-6
    assert np.isfinite(stored).all()
    assert abs(float(np.linalg.norm(stored)) - 1) < tol
    as32 = np.asarray(tiny, dtype=np.float32).astype(np.float64)  # what the index holds before normalising
    expected = as32 / np.linalg.norm(as32)
    np.testing.assert_allclose(stored, expected, atol=tol)
    hits = index.search(tiny, k=3)  # the query is just as small
    assert hits.ids[0] == "tiny"
    assert abs(hits.scores[0] - 1) < 1e-3
    assert len(index.search([1e-40, 1e-40, 0], k=3)) == 3


def test_both_backends_normalise_tiny_vectors_to_the_same_bits() -> None:
    rows = np.array([[1e-40, 0, 0], [3e-39, 1e-39, 0], [1, 2, 3]], dtype=np.float32)
    index = EmbeddingIndex(3)
    index.add(["a", "b", "c"], rows)
    normalized = normalize_rows(rows.copy(), ["a", "b", "c"], normalize=True)  # what PgVectorIndex stores
    assert normalized.tobytes() == index.vectors.tobytes()


def test_float16_refuses_vectors_it_would_store_as_zeros() -> None:
    index = EmbeddingIndex(3, metric="dot", dtype=np.float16)
    with pytest.raises(exc.InvalidVectorError, match="float16 would store them as zeros") as info:
        index.add(["small", "fine"], [[1e-9, 0, 0], [1, 0, 0]])
    assert info.value.ids == ["small"]
    assert len(index) == 0


def test_vectors_with_400_digit_integers_are_refused() -> None:
    index = EmbeddingIndex(2)
    with pytest.raises(exc.InvalidVectorError, match="too large for a float"):
        index.add(["a"], [[10**400, 1]])
    with pytest.raises(exc.InvalidVectorError, match="too large for a float"):
        index.search([10**400, 1])


def test_deep_or_cyclic_metadata_is_refused_and_100_levels_round_trip(tmp_path: Path) -> None:
    index = EmbeddingIndex(2)
    deep: object = 1
    for _ in range(150):
        deep = {"a": deep}
    with pytest.raises(exc.ConfigError, match="nests deeper than 100 levels"):
        index.add(["x"], [[1, 0]], [{"m": deep}])
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    with pytest.raises(exc.ConfigError, match="nests deeper"):
        index.add(["x"], [[1, 0]], [cyclic])
    ok: object = "leaf"
    for _ in range(99):
        ok = [ok]
    index.add(["x"], [[1, 0]], [{"m": ok}])
    loaded = EmbeddingIndex.load(index.save(tmp_path / "idx"))
    assert loaded.get("x").metadata == {"m": ok}


def _csv(tmp_path: Path, cell: str, meta: str = "x") -> Path:
    path = tmp_path / "e.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["embedding", "note"])
        w.writerow(["[1, 0]", "first"])
        w.writerow([cell, meta])
    return path


@pytest.mark.parametrize(
    ("cell", "pattern"),
    [
        ("[" * 60_000 + "]" * 60_000, "nests lists too deeply"),
        ("[" + "9" * 400 + ", 1]", "integer of 400 digits, too large for a float"),
        ('[1, "x' + "y" * 100 + '"]', r"item 1 of the vector in column 'embedding' is 'xyyy.*\.\.\., not a number"),
    ],
)
def test_hostile_csv_cells_are_typed_errors_with_the_line(tmp_path: Path, cell: str, pattern: str) -> None:
    with pytest.raises(exc.DatasetFormatError, match=pattern) as info:
        EmbeddingIndex.from_csv(_csv(tmp_path, cell))
    assert info.value.line == 3


def test_a_400_digit_integer_in_a_metadata_cell_is_kept(tmp_path: Path) -> None:
    big = "9" * 400
    index = EmbeddingIndex.from_csv(_csv(tmp_path, "[0, 1]", big))
    assert index.get("1").metadata["note"] == int(big)
    assert index.search([0, 1], k=1, where={"note": {"$gt": 10**399}}).ids == ["1"]
    assert EmbeddingIndex.load(index.save(tmp_path / "idx")).get("1").metadata["note"] == int(big)


def test_reading_a_csv_restores_the_process_wide_field_size_limit(tmp_path: Path) -> None:
    before = csv.field_size_limit()
    widest = "[" + ", ".join(["-0.0123456789012345678"] * 3072) + "]"  # text-embedding-3-large, float64 reprs
    text = "word " * 40_000  # a 200 kB text column: over csv's default limit
    path = tmp_path / "wide.csv"
    path.write_text(f'embedding,text\n"{widest}","{text}"\n')
    index = EmbeddingIndex.from_csv(path)
    assert index.dim == 3072
    assert index.get("0").metadata["text"] == text
    assert csv.field_size_limit() == before
    with pytest.raises(exc.DatasetFormatError):
        EmbeddingIndex.from_csv(_csv(tmp_path, "[" + "1, " * 40_000 + "x]"))
    assert csv.field_size_limit() == before  # restored on errors too


def test_unreadable_csv_paths_are_typed(tmp_path: Path) -> None:
    with pytest.raises(exc.FileAccessError, match=r"Cannot read .*missing\.csv: No such file"):
        EmbeddingIndex.from_csv(tmp_path / "missing.csv")
    with pytest.raises(exc.FileAccessError, match=r"Cannot read .*: it is a folder"):
        EmbeddingIndex.from_csv(tmp_path)
    with pytest.raises(exc.ConfigError, match="unknown encoding"):
        EmbeddingIndex.from_csv(_csv(tmp_path, "[0, 1]"), encoding="klingon")


def test_the_cli_never_prints_a_traceback_for_deep_json(tmp_path: Path) -> None:
    path = _index().save(tmp_path / "idx")
    (tmp_path / "q.json").write_text("[" * 100_000 + "]" * 100_000)
    runner = CliRunner()
    r = runner.invoke(main, ["index", "search", str(path), "--vector-file", str(tmp_path / "q.json")])
    assert r.exit_code == 2
    assert "nests lists too deeply" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(main, ["index", "search", str(path), "--id", "i1", "--where", "[" * 100_000])
    assert r.exit_code == 2
    assert "Traceback" not in r.output
