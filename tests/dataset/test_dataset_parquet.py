"""Dataset.to_parquet / from_parquet (pyarrow) and Dataset.from_hf (Hugging Face datasets, never the hub)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tqdm.std
from dataset_helpers import good_rows

from finetune_embed import DatasetFormatError, FileAccessError, InvalidArgumentError, MissingDependencyError
from finetune_embed.dataset import Dataset

COOKBOOK = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cookbook"

TOOL_ROW: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C"},
        {"role": "assistant", "content": "It is 21 C.", "weight": 1},
    ],
    "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
    "parallel_tool_calls": False,
}


def _schema_json_columns(path: Path) -> list[str]:
    meta = pq.read_schema(path).metadata
    return list(json.loads(meta[b"finetune_embed.json_columns"]))


def test_round_trip_of_uniform_chat_is_native(tmp_path: Path) -> None:
    rows = good_rows(12)
    rows[3]["messages"][-1]["weight"] = 0  # a field only some messages have: Arrow fills it with null elsewhere
    path = tmp_path / "train.parquet"
    assert Dataset.from_list(rows).to_parquet(path) == 12
    schema = pq.read_schema(path)
    assert pa.types.is_list(schema.field("messages").type)  # structs, not JSON text: other tools read it as is
    assert _schema_json_columns(path) == []
    back = Dataset.from_parquet(path)
    assert back.to_list() == rows
    assert back.lines == list(range(1, 13))
    assert back.source == str(path)
    assert back.validate().ok


def test_round_trip_of_mixed_values_uses_json_text_and_is_exact(tmp_path: Path) -> None:
    rows = [*good_rows(3), TOOL_ROW, {"messages": [{"role": "user", "content": "x", "name": None}], "meta": 1.0}]
    rows.append({"messages": rows[0]["messages"], "meta": 2})  # 1.0 and 2: Arrow would make 2 a float
    path = tmp_path / "mixed.parquet"
    Dataset.from_list(rows).to_parquet(path)
    assert set(_schema_json_columns(path)) == {"messages", "tools", "meta"}
    back = Dataset.from_parquet(path).to_list()
    assert json.dumps(back, sort_keys=True) == json.dumps(rows, sort_keys=True)
    assert type(back[-1]["meta"]) is int
    assert type(back[-2]["meta"]) is float


def test_explicit_null_survives_a_round_trip(tmp_path: Path) -> None:
    rows = [{"prompt": "a", "completion": None}, {"prompt": "b", "completion": "c"}, {"prompt": "d"}]
    path = tmp_path / "nulls.parquet"
    Dataset.from_list(rows).to_parquet(path)
    assert Dataset.from_parquet(path).to_list() == rows


def test_cookbook_file_round_trips(tmp_path: Path) -> None:
    source = COOKBOOK / "toy_chat_fine_tuning.jsonl"
    ds = Dataset.from_json(source)
    path = tmp_path / "toy.parquet"
    ds.to_parquet(path)
    assert Dataset.from_parquet(path).to_list() == ds.to_list()


def test_foreign_file_with_null_filled_struct_fields(tmp_path: Path) -> None:
    """What pandas / DuckDB / HF write: every message struct has every field, null where absent."""
    messages = pa.array(
        [
            [
                {"role": "user", "content": "hi", "weight": None},
                {"role": "assistant", "content": "hello", "weight": 1},
            ]
        ]
        * 10
    )
    path = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"messages": messages, "source": ["web"] * 10}), path)
    ds = Dataset.from_parquet(path, columns=["messages"])
    assert ds[0] == {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello", "weight": 1}]
    }
    assert ds.validate().ok
    assert Dataset.from_parquet(path)[0]["source"] == "web"


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    Dataset.from_list(good_rows(2)).to_parquet(path)
    before = path.read_bytes()
    # mixed types: not one Arrow type; NaN: not JSON either
    bad = Dataset.from_list([*good_rows(1), {"messages": [{"role": "user", "content": "x"}], "w": [float("nan"), "a"]}])
    with pytest.raises(DatasetFormatError, match=r"example 1: the value of 'w' cannot be stored .*NaN"):
        bad.to_parquet(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]


def test_not_parquet_missing_and_folder(tmp_path: Path) -> None:
    text = tmp_path / "train.jsonl"
    text.write_text('{"messages": []}\n')
    with pytest.raises(DatasetFormatError, match="not a Parquet file") as info:
        Dataset.from_parquet(text)
    assert info.value.path == str(text)
    with pytest.raises(FileAccessError, match="check the path"):
        Dataset.from_parquet(tmp_path / "missing.parquet")
    with pytest.raises(FileAccessError, match="folder"):
        Dataset.from_parquet(tmp_path)


def test_unknown_column_names_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    Dataset.from_list(good_rows(1)).to_parquet(path)
    with pytest.raises(DatasetFormatError, match=r"no column 'text' \(columns: messages\)"):
        Dataset.from_parquet(path, columns=["text"])
    with pytest.raises(InvalidArgumentError, match="list of column names"):
        Dataset.from_parquet(path, columns="messages")


def test_without_pyarrow_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match=r"finetune-embed\[parquet\]") as info:
        Dataset.from_list(good_rows(1)).to_parquet(tmp_path / "x.parquet")
    assert (info.value.package, info.value.extra) == ("pyarrow", "parquet")
    with pytest.raises(MissingDependencyError, match=r"Dataset\.from_parquet"):
        Dataset.from_parquet(tmp_path / "x.parquet")


# --- Hugging Face datasets -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_tqdm_monitor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """datasets draws tqdm bars (save_to_disk, load_dataset), and tqdm's monitor thread would outlive the test,
    which other tests (workers must start with no thread running) would see: no monitor, no bars here."""
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    yield
    if was_enabled:
        datasets.enable_progress_bars()


def _hf_rows() -> list[dict[str, Any]]:
    rows = good_rows(11)
    rows[0]["messages"][-1]["weight"] = 1
    return rows


def test_from_hf_in_memory_dataset() -> None:
    hf = datasets.Dataset.from_list(_hf_rows())
    ds = Dataset.from_hf(hf)
    assert ds.to_list() == _hf_rows()  # the null "weight" that Arrow gave the other messages is gone again
    assert ds.source is None
    assert ds.validate().ok


def test_from_hf_keeps_order_after_select_and_shuffle() -> None:
    hf = datasets.Dataset.from_list(_hf_rows()).shuffle(seed=3).select(range(5))
    expected = list(hf)
    got = Dataset.from_hf(hf).to_list()
    assert [r["messages"][1]["content"] for r in got] == [r["messages"][1]["content"] for r in expected]


def test_from_hf_saved_to_disk_and_splits(tmp_path: Path) -> None:
    rows = _hf_rows()
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:8]), "test": datasets.Dataset.from_list(rows[8:])}
    )
    folder = tmp_path / "saved"
    dd.save_to_disk(str(folder))
    test = Dataset.from_hf(folder, split="test")
    assert test.to_list() == rows[8:]
    assert test.source == str(folder)
    with pytest.raises(InvalidArgumentError, match="splits train, test; pick one with split="):
        Dataset.from_hf(str(folder))
    with pytest.raises(InvalidArgumentError, match="no split 'validation'"):
        Dataset.from_hf(dd, split="validation")
    single = tmp_path / "single"
    datasets.Dataset.from_list(rows[:2]).save_to_disk(str(single))
    assert Dataset.from_hf(single).to_list() == rows[:2]


def test_from_hf_iterable_and_columns() -> None:
    rows = [{**r, "id": str(i)} for i, r in enumerate(_hf_rows())]
    iterable = datasets.Dataset.from_list(rows).to_iterable_dataset()
    assert Dataset.from_hf(iterable).to_list() == rows
    assert Dataset.from_hf(datasets.Dataset.from_list(rows), columns=["messages"]).to_list() == _hf_rows()
    with pytest.raises(DatasetFormatError, match="no column 'text'"):
        Dataset.from_hf(datasets.Dataset.from_list(rows), columns=["text"])


def test_from_hf_load_dataset_on_local_files_and_failure(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    Dataset.from_list(_hf_rows()).to_json(folder / "train.jsonl")
    loaded = datasets.load_dataset(str(folder), split="train")
    assert Dataset.from_hf(loaded).to_list() == _hf_rows()
    assert Dataset.from_hf(str(folder), split="train").to_list() == _hf_rows()
    # datasets stores messages whose keys vary as Arrow's JSON extension type; its Parquet export keeps it
    exported = tmp_path / "hf.parquet"
    loaded.to_parquet(str(exported))
    assert Dataset.from_parquet(exported).to_list() == _hf_rows()
    with pytest.raises(DatasetFormatError, match=r"load_dataset\(.*failed") as info:
        Dataset.from_hf(str(tmp_path / "no-such-folder"), split="train")
    assert info.value.path == str(tmp_path / "no-such-folder")


def test_from_hf_refuses_other_objects_and_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgumentError, match="not list"):
        Dataset.from_hf(_hf_rows())
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingDependencyError, match=r"finetune-embed\[hf\]") as info:
        Dataset.from_hf("org/name")
    assert (info.value.package, info.value.extra) == ("datasets", "hf")
