"""The hostile-input report (``benchmarks/fuzz_report.py``, #11): a small run finds no silent wrong result and no
crash, and its oracles can fail (a loader that drops a row or accepts garbage is caught)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from finetune_embed import EmbeddingIndex
from finetune_embed.dataset import Dataset

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_report.py"


@pytest.fixture(scope="module")
def report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_report", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_small_run_is_clean(report: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(["--quick", "--scale", "0.3", "--manifest-bit-step", "401"]) == 0
    out = capsys.readouterr().out
    assert "| **all** |" in out
    assert "load average" in out


def test_the_jsonl_oracle_catches_a_dropped_row(
    report: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b'{"a": 1}\n{"b": [2, 3]}\n'
    assert report.jsonl_case(tmp_path / "x.jsonl", data, "valid") == ("ok", "ok")
    original = Dataset.to_list
    monkeypatch.setattr(Dataset, "to_list", lambda self: original(self)[:-1])
    assert report.jsonl_case(tmp_path / "x.jsonl", data, "valid")[0] == "silent"


def test_the_jsonl_oracle_catches_accepted_garbage(
    report: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Dataset, "from_json", classmethod(lambda cls, path: cls([{"a": 1}])))
    assert report.jsonl_case(tmp_path / "x.jsonl", b'{"a": 1}\n{"a": NaN}\n', "nan")[0] == "silent"


def test_the_csv_oracle_catches_a_changed_vector(
    report: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b'id,embedding,text\nr0,"[1.5, -2.0]",hi\nr1,"[0.25, 4.0]",yo\n'
    assert report.csv_case(tmp_path / "x.csv", data, "valid") == "ok"
    original = EmbeddingIndex.from_csv.__func__  # type: ignore[attr-defined]

    def off_by_a_bit(cls: type[EmbeddingIndex], path: Path, **kwargs: object) -> EmbeddingIndex:
        index: EmbeddingIndex = original(cls, path, **kwargs)
        changed = EmbeddingIndex(index.dim, metric="dot")
        changed.add(index.ids, np.asarray(index.vectors) * 1.0001)
        return changed

    monkeypatch.setattr(EmbeddingIndex, "from_csv", classmethod(off_by_a_bit))
    assert report.csv_case(tmp_path / "x.csv", data, "valid") == "silent"


def test_untyped_errors_count_as_crashes(report: ModuleType) -> None:
    def boom() -> bool:
        raise KeyError("dim")

    assert report.classify(boom, "a probe") == "crash"
