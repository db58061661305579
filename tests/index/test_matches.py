"""Result objects: Match, Matches, BatchMatches."""

from __future__ import annotations

import numpy as np
import pytest

from finetune_embed.index import BatchMatches, Match, Matches


def _m() -> Matches:
    return Matches(["a", "b"], np.array([0.9, 0.5], dtype=np.float32), [{"x": 1}, {"id": "clash"}])


def test_matches_protocols() -> None:
    m = _m()
    assert len(m) == 2
    assert repr(m) == "Matches(k=2)"
    assert m[1] == Match("b", 0.5, {"id": "clash"})
    assert [x.id for x in m] == ["a", "b"]
    assert m.to_list()[0] == {"id": "a", "score": pytest.approx(0.9), "metadata": {"x": 1}}
    assert m == _m()
    assert m != Matches()
    with pytest.raises(ValueError, match="as many"):
        Matches(["a"], np.zeros(2, dtype=np.float32), [{}])


def test_matches_to_pandas() -> None:
    df = _m().to_pandas()
    assert list(df.columns) == ["rank", "id", "score", "x", "metadata.id"]
    assert df["id"].tolist() == ["a", "b"]
    assert list(Matches().to_pandas().columns) == ["rank", "id", "score"]


def test_batch_matches() -> None:
    b = BatchMatches([_m(), Matches()])
    assert len(b) == 2
    assert repr(b) == "BatchMatches(queries=2, k=0..2)"
    assert b[0] == _m()
    assert b[1:].ids == [[]]
    assert b.ids == [["a", "b"], []]
    assert [s.tolist() for s in b.scores] == [[pytest.approx(0.9), 0.5], []]
    assert b.metadata[0][0] == {"x": 1}
    assert b.to_list()[1] == []
    df = b.to_pandas()
    assert df["query"].tolist() == [0, 0]
    assert list(BatchMatches().to_pandas().columns) == ["query", "rank", "id", "score"]
    assert repr(BatchMatches()) == "BatchMatches(queries=0, k=0)"
