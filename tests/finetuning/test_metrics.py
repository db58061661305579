"""TrainingMetrics: the result file (base64 CSV) parsed into typed numpy columns."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import numpy as np
import pytest

from finetune_embed import APIResponseValidationError, MissingDependencyError, ResultsUnavailableError
from finetune_embed.finetuning import TrainingMetrics
from finetune_embed.finetuning._metrics import decode_result_file

CSV = (
    "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
    "1,1.8173,0.4285,,\n"
    "2,1.5202,0.5,1.6011,0.4717\n"
    "3,1.2,0.61,,\n"
    "4,0.9,0.7,1.1,0.66\n"
)


def test_parses_base64_csv_as_openai_serves_it() -> None:
    metrics = TrainingMetrics.from_csv(base64.b64encode(CSV.encode()), job_id="ftjob-1", file_id="file-r")
    assert len(metrics) == 4
    assert metrics.column_names == ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]
    assert metrics.step.dtype == np.int64
    assert metrics.step.tolist() == [1, 2, 3, 4]
    assert metrics.train_loss.dtype == np.float64
    np.testing.assert_allclose(metrics.train_loss, [1.8173, 1.5202, 1.2, 0.9])
    assert np.isnan(metrics.valid_loss[[0, 2]]).all()
    np.testing.assert_allclose(metrics.valid_loss[[1, 3]], [1.6011, 1.1])
    assert metrics.last("valid_loss") == 1.1
    assert metrics.summary()["valid_mean_token_accuracy"] == 0.66
    assert (metrics.job_id, metrics.file_id) == ("ftjob-1", "file-r")
    assert "valid_loss" in metrics
    assert "full_valid_loss" not in metrics
    assert np.isnan(metrics.full_valid_loss).all()
    assert len(metrics.full_valid_loss) == 4


def test_base64_with_line_breaks_and_plain_text_both_work() -> None:
    wrapped = base64.encodebytes(CSV.encode())  # 76-char lines
    assert b"\n" in wrapped.strip()
    assert decode_result_file(wrapped) == CSV
    assert decode_result_file(CSV) == CSV
    assert decode_result_file(b"\xef\xbb\xbf" + CSV.encode()) == CSV


def test_rows_and_dict_export() -> None:
    metrics = TrainingMetrics.from_csv(CSV)
    rows = list(metrics)
    assert rows[0] == {"step": 1, "train_loss": 1.8173, "train_accuracy": 0.4285, "valid_loss": None,
                       "valid_mean_token_accuracy": None}
    assert metrics.to_dict()["valid_loss"] == [None, 1.6011, None, 1.1]


def test_to_pandas() -> None:
    df = TrainingMetrics.from_csv(CSV).to_pandas()
    assert list(df.columns)[:2] == ["step", "train_loss"]
    assert df["step"].dtype == np.int64
    assert df["valid_loss"].isna().sum() == 2


def test_to_csv_roundtrip(tmp_path: Path) -> None:
    metrics = TrainingMetrics.from_csv(CSV)
    out = metrics.to_csv(tmp_path / "metrics.csv")
    again = TrainingMetrics.from_csv(out.read_bytes())
    np.testing.assert_array_equal(again.step, metrics.step)
    np.testing.assert_allclose(again.valid_loss, metrics.valid_loss, equal_nan=True)
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_unknown_and_text_columns_are_kept() -> None:
    metrics = TrainingMetrics.from_csv("step,train_loss,full_valid_loss,phase\n1,2.0,,warmup\n2,1.0,0.8,main\n")
    assert metrics["phase"].dtype == object
    assert metrics["phase"].tolist() == ["warmup", "main"]
    assert metrics.last("full_valid_loss") == 0.8
    assert "phase" not in metrics.summary()
    with pytest.raises(ResultsUnavailableError, match=r"no column 'nope'; the result file has step, train") as info:
        metrics["nope"]
    assert isinstance(info.value, KeyError)  # a mapping's missing key, still


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"!!!not base64 and no comma!!!", "neither CSV nor base64"),
        (b"step,train_loss\n1,2,3\n", "line 2: 3 fields where the header has 2"),
        (b"step,train_loss\nx,2\n", "non-integer 'step'"),
        (b"step,train_loss\n" + b"9" * 400 + b",2\n", "non-integer 'step'"),  # inf: was a raw OverflowError
        (b"step,train_loss\n1e30,2\n", "beyond int64"),
        (b"step,step\n1,2\n", "repeated column name"),
    ],
)
def test_malformed_result_files(content: bytes, message: str) -> None:
    with pytest.raises(APIResponseValidationError, match=message):
        TrainingMetrics.from_csv(content, file_id="file-bad")


def test_columns_must_have_equal_length() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        TrainingMetrics(columns={"step": np.arange(2), "train_loss": np.zeros(3)})


def test_plot_without_matplotlib_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'finetune-embed\[plot\]'") as info:
        TrainingMetrics.from_csv(CSV).plot()
    assert isinstance(info.value, ImportError)
    assert (info.value.package, info.value.extra) == ("matplotlib", "plot")


def test_plot_draws_the_loss_curves() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = TrainingMetrics.from_csv(CSV, job_id="ftjob-1").plot()
    try:
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["train_loss", "valid_loss"]
        valid = ax.get_lines()[1]
        assert list(valid.get_xdata()) == [2, 4]  # NaN steps bridged
        assert "ftjob-1" in ax.get_title()
    finally:
        plt.close("all")
