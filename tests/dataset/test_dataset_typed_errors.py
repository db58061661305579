"""Every error a caller can cause in the dataset package, the tokenizer, batching and the catalog is a
FinetuneEmbedError subclass saying what, where and how to fix: deep nesting, lone surrogates, NaN, values JSON
cannot hold, bad arguments, a malformed catalog file, a missing optional package."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from dataset_helpers import good_rows, write_jsonl

from finetune_embed import (
    ConfigError,
    DatasetFormatError,
    FinetuneEmbedError,
    InvalidArgumentError,
    MissingDependencyError,
    Tokenizer,
)
from finetune_embed.batching import batched, pack_by_tokens
from finetune_embed.dataset import Dataset, IssueCode, fix_file


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


def deep_row(levels: int) -> dict[str, Any]:
    row = good_rows(1)[0]
    row["tools"] = deep(levels)
    return row


@pytest.mark.parametrize("levels", [101, 400, 2000])
def test_deep_nesting_in_memory_is_typed(levels: int, tmp_path: Path) -> None:
    """validate() reports an example nested over 100 levels; every other operation either works or, once the
    nesting exhausts Python's recursion, raises a typed DatasetFormatError (never RecursionError)."""
    ds = Dataset.from_list([*good_rows(11), deep_row(levels)])
    report = ds.validate()
    assert [(i.code, i.line) for i in report.errors] == [(IssueCode.INVALID_JSON, 12)]
    assert "more than 100 levels deep" in report.errors[0].message
    ops = {
        "to_json": lambda: ds.to_json(tmp_path / "out.jsonl"),
        "to_list": ds.to_list,
        "map": lambda: ds.map(lambda r: r),
        "dedupe": ds.dedupe,
        "example": lambda: ds.example(11),
        "token_counts": ds.token_counts,
        "stats": ds.stats,
        "split": lambda: ds.train_test_split(0.25, seed=1),
    }
    raised = {}
    for name, op in ops.items():
        try:
            op()
        except FinetuneEmbedError as exc:
            raised[name] = type(exc).__name__
    assert {"token_counts": "DatasetFormatError"}.items() <= raised.items()
    if levels == 2000:
        for name in ("to_json", "to_list", "map", "dedupe"):
            assert raised[name] == "DatasetFormatError", name
    assert [p.name for p in tmp_path.iterdir()] in ([], ["out.jsonl"])


def test_nesting_up_to_the_limit_is_fine(tmp_path: Path) -> None:
    ds = Dataset.from_list([*good_rows(11), deep_row(98)])
    assert IssueCode.INVALID_JSON not in ds.validate().counts
    ds.to_json(tmp_path / "ok.jsonl")
    assert len(Dataset.from_json(tmp_path / "ok.jsonl")) == 12


@pytest.mark.parametrize("levels", [101, 500, 990, 5000])
def test_deep_nesting_in_files_is_typed(levels: int, tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    lines = [json.dumps(r) for r in good_rows(11)]
    lines.insert(2, '{"messages": [{"role": "user", "content": ' + "[" * levels + "]" * levels + "}]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = Dataset.validate_file(path, model="gpt-4o-mini", stats=True)
    assert [(i.code, i.line) for i in report.errors] == [(IssueCode.INVALID_JSON, 3)]
    with pytest.raises(DatasetFormatError) as info:
        Dataset.from_json(path)
    assert info.value.line == 3
    result = fix_file(path)
    assert result.n_rejected == 1
    assert json.loads(result.rejected_path.read_text().splitlines()[0])["reasons"][0]["code"] == "invalid_json"


def test_deeply_nested_tool_arguments_are_an_issue(tmp_path: Path) -> None:
    row = {
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[" * 5000 + "]" * 5000}}
                ],
            },
        ]
    }
    path = write_jsonl(tmp_path / "t.jsonl", [*good_rows(10), row])
    report = Dataset.validate_file(path)
    assert (IssueCode.INVALID_ARGUMENTS, 11) in [(i.code, i.line) for i in report.errors]
    fix_file(path)  # the double-encoding fix must not recurse either


def test_a_lone_surrogate_cannot_be_written(tmp_path: Path) -> None:
    rows = good_rows(12)
    rows[4]["messages"][1]["content"] = "broken \ud83d emoji"
    ds = Dataset.from_list(rows)
    assert (IssueCode.LONE_SURROGATE, 5) in [(i.code, i.line) for i in ds.validate().errors]
    with pytest.raises(DatasetFormatError, match=r"example 4 holds text that is not valid Unicode") as info:
        ds.to_json(tmp_path / "out.jsonl")
    assert "\\ud83d" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(value: float, tmp_path: Path) -> None:
    rows = good_rows(12)
    rows[2]["messages"][1]["weight"] = value
    with pytest.raises(DatasetFormatError, match="example 2 holds NaN or Infinity"):
        Dataset.from_list(rows).to_json(tmp_path / "out.jsonl")
    path = tmp_path / "nan.jsonl"
    path.write_text(json.dumps(rows[2]) + "\n", encoding="utf-8")  # json.dumps writes NaN / Infinity
    with pytest.raises(DatasetFormatError, match="not valid JSON"):
        Dataset.from_json(path)
    assert Dataset.validate_file(path).counts.get("invalid_json") == 1


def test_values_json_cannot_hold_are_refused(tmp_path: Path) -> None:
    rows = good_rows(3)
    rows[1]["metadata"] = {1, 2}
    with pytest.raises(DatasetFormatError, match="example 1 holds a value JSON cannot represent"):
        Dataset.from_list(rows).to_json(tmp_path / "out.jsonl")


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda ds: ds.validate(max_issues=-1), "max_issues"),
        (lambda ds: ds.validate(max_issues="10"), "max_issues"),
        (lambda ds: ds.validate(min_examples=-1), "min_examples"),
        (lambda ds: ds.validate(provider="aws"), "provider"),
        (lambda ds: ds.validate(on="2026-12-01"), "on"),
        (lambda ds: ds.validate(model=4), "model"),
        (lambda ds: ds.validate(method="sft"), "method"),
        (lambda ds: ds.validate(max_example_tokens=0), "max_example_tokens"),
        (lambda ds: ds.stats(n_epochs=0), "n_epochs"),
        (lambda ds: ds.stats(n_epochs=51), "n_epochs"),
        (lambda ds: ds.stats(counting="exact"), "counting"),
        (lambda ds: ds.train_test_split(1.5), "test_size"),
        (lambda ds: ds.train_test_split(100), "test_size"),
        (lambda ds: ds.train_test_split(len(ds)), "test_size"),  # every example in test: an empty training set
        (lambda ds: ds.train_test_split(None), "test_size"),
        (lambda ds: ds.convert("dpo"), "to"),
        (lambda ds: Dataset(5), "rows"),
        (lambda ds: Dataset(good_rows(2), lines=[1]), "lines"),
        (lambda ds: Dataset.from_pairs(["a"], ["b", "c"]), "completions"),
        (lambda ds: Dataset.from_pandas(None), "df"),
        (lambda ds: Dataset.from_json(ds.source, max_line_bytes=0), "max_line_bytes"),
        (lambda ds: Dataset.validate_file(ds.source, workers=0), "workers"),
        (lambda ds: Dataset.validate_file(ds.source, workers="2"), "workers"),
        (lambda ds: Dataset.validate_file(ds.source, max_line_bytes=-1), "max_line_bytes"),
        (lambda ds: Dataset.validate_file(ds.source, n_epochs=True), "n_epochs"),
        (lambda ds: fix_file(ds.source, max_line_bytes=0), "max_line_bytes"),
        (lambda ds: Tokenizer().count(b"bytes"), "text"),
        (lambda ds: Tokenizer().encode(None), "text"),
        (lambda ds: Tokenizer().encode_batch("one string"), "texts"),
        (lambda ds: Tokenizer().count_batch(["ok", 3]), "texts[1]"),
        (lambda ds: list(batched([1], 0)), "n"),
        (lambda ds: pack_by_tokens([1], max_inputs=1, max_tokens=0), "max_tokens"),
    ],
)
def test_bad_arguments_are_invalid_argument_errors(call: Any, argument: str, good_file: Path) -> None:
    ds = Dataset.from_json(good_file)
    with pytest.raises(InvalidArgumentError) as info:
        call(ds)
    assert info.value.argument == argument
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TypeError)
    assert len(str(info.value)) > 20


def test_to_pandas_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'finetune-embed\[pandas\]'") as info:
        Dataset.from_list(good_rows(1)).to_pandas()
    assert (info.value.package, info.value.extra) == ("pandas", "pandas")
    assert isinstance(info.value, ImportError)


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"fine_tune_models": [{"encoding": "o200k_base"}]}',
        b'{"fine_tune_models": [{"name": "m", "shutdown": "next week"}]}',
        b'{"fine_tune_models": 5}',
        b'{"embedding_request_limits": {"max_inputs": "many"}}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_a_malformed_catalog_file_is_a_config_error(
    content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finetune_embed.catalog import ModelCatalog

    path = tmp_path / "catalog.json"
    path.write_bytes(content)
    monkeypatch.setenv("FINETUNE_EMBED_CATALOG", str(path))
    with pytest.raises(ConfigError, match="FINETUNE_EMBED_CATALOG"):
        ModelCatalog.load_default()


def test_update_from_dict_changes_nothing_on_bad_data() -> None:
    from finetune_embed.catalog import ModelCatalog

    cat = ModelCatalog.load_default()
    before = dict(cat.fine_tune_models)
    with pytest.raises(ConfigError, match="missing key 'name'"):
        cat.update_from_dict({"fine_tune_models": [{"name": "new-model"}, {"encoding": "x"}]})
    assert cat.fine_tune_models == before


def test_errors_are_finetune_embed_errors() -> None:
    for cls in (InvalidArgumentError, MissingDependencyError, DatasetFormatError, ConfigError):
        assert issubclass(cls, FinetuneEmbedError)
