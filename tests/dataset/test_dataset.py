"""Building, reading, writing and transforming datasets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dataset_helpers import EXAMPLES, TODAY, good_rows, write_jsonl

from finetune_embed import DatasetFormatError, DatasetValidationError, FileAccessError, InvalidArgumentError
from finetune_embed.dataset import (
    AssistantMessage,
    ChatExample,
    CompletionExample,
    Dataset,
    DatasetSplits,
    IssueCode,
    PreferenceExample,
    SystemMessage,
    ToolCall,
    UserMessage,
)


def test_from_json_keeps_source_lines(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    rows = good_rows(3)
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n" + json.dumps(rows[2]) + "\n")
    ds = Dataset.from_json(path)
    assert len(ds) == 3
    assert ds.lines == [1, 3, 4]
    assert ds.format == "chat"
    assert ds[1] == rows[1]
    assert ds.source == str(path)
    assert repr(ds) == f"Dataset(n=3, format='chat', source={str(path)!r})"
    sub = ds[1:]
    assert isinstance(sub, Dataset)
    assert sub.lines == [3, 4]


def test_from_json_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(good_rows(1)[0]) + "\n[1, 2]\n")
    with pytest.raises(DatasetFormatError) as info:
        Dataset.from_json(path)
    assert info.value.line == 2
    assert f"{path}:2" in str(info.value)
    with pytest.raises(FileAccessError, match=r"Cannot read .*missing\.jsonl: No such file") as missing:
        Dataset.from_json(tmp_path / "missing.jsonl")
    assert missing.value.path == str(tmp_path / "missing.jsonl")


def test_to_json_is_atomic_and_round_trips(tmp_path: Path) -> None:
    ds = Dataset.from_list(good_rows(4))
    out = tmp_path / "sub" / "out.jsonl"
    assert ds.to_json(out) == 4
    assert Dataset.from_json(out).to_list() == ds.to_list()
    assert out.read_bytes().count(b"\n") == 4
    assert b"\r" not in out.read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["out.jsonl"]  # no temp file left behind

    class Boom(Exception):
        pass

    def rows():  # a failure half-way leaves the old file intact and no temp file
        yield "{}"
        raise Boom

    from finetune_embed.dataset._io import atomic_write_lines

    with pytest.raises(Boom):
        atomic_write_lines(out, rows())
    assert Dataset.from_json(out).to_list() == ds.to_list()
    assert [p.name for p in out.parent.iterdir()] == ["out.jsonl"]


def test_from_list_accepts_typed_models_and_rejects_others() -> None:
    ex = ChatExample(messages=[SystemMessage(content="S"), UserMessage(content="Q"), AssistantMessage(content="A")])
    ds = Dataset.from_list([ex, good_rows(1)[0]])
    assert ds[0] == {
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": "A"},
        ]
    }
    with pytest.raises(DatasetFormatError, match="row 0 is str"):
        Dataset.from_list(["not a row"])  # type: ignore[list-item]


def test_typed_example_access() -> None:
    tool_row = {
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
            },
        ]
    }
    ds = Dataset.from_list([tool_row])
    ex = ds.example(0)
    assert isinstance(ex, ChatExample)
    call = ex.messages[1].tool_calls[0]  # type: ignore[union-attr]
    assert isinstance(call, ToolCall)
    assert call.function.name == "w"
    bad = Dataset.from_list(
        [{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 2}]}]
    )
    with pytest.raises(DatasetValidationError) as info:
        bad.example(0)
    assert info.value.report.by_code(IssueCode.INVALID_WEIGHT)
    pref = Dataset.from_list(
        [
            {
                "input": {"messages": [{"role": "user", "content": "q"}]},
                "preferred_output": [{"role": "assistant", "content": "a"}],
                "non_preferred_output": [{"role": "assistant", "content": "b"}],
            }
        ]
    )
    assert isinstance(pref.example(0), PreferenceExample)
    assert pref.format == "preference"
    comp = Dataset.from_list([{"prompt": "p", "completion": "c"}])
    assert isinstance(next(comp.examples()), CompletionExample)


def test_from_pairs_builds_valid_chat() -> None:
    ds = Dataset.from_pairs([f"q{i}" for i in range(10)], [f"a{i}" for i in range(10)], system="Be brief.")
    assert ds[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert ds.validate(on=TODAY).ok
    with pytest.raises(InvalidArgumentError, match="2 prompts but 1 completions"):
        Dataset.from_pairs(["a", "b"], ["c"])


def test_from_csv_and_pandas(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text('question,answer\n"Hi, there",Hello\nBye,"See you\nsoon"\n', encoding="utf-8")
    ds = Dataset.from_csv(csv_path, prompt="question", completion="answer", system="S")
    assert len(ds) == 2
    assert ds.lines == [2, 4]
    assert ds[1]["messages"][2]["content"] == "See you\nsoon"
    with pytest.raises(DatasetFormatError, match="no column 'prompt'"):
        Dataset.from_csv(csv_path)
    df = pd.DataFrame({"q": ["a", "b"], "r": ["c", "d"], "sys": ["S1", None]})
    ds = Dataset.from_pandas(df, prompt="q", completion="r", system="default", system_column="sys")
    assert ds[0]["messages"][0]["content"] == "S1"
    assert ds[1]["messages"][0]["content"] == "default"
    with pytest.raises(DatasetFormatError, match="rows 1"):
        Dataset.from_pandas(pd.DataFrame({"prompt": ["a", None], "completion": ["c", "d"]}))
    chat_df = Dataset.from_list(good_rows(3)).to_pandas()
    assert list(chat_df.columns) == ["messages"]
    assert Dataset.from_pandas(chat_df).to_list() == good_rows(3)


def test_to_list_is_a_copy() -> None:
    ds = Dataset.from_list(good_rows(2))
    rows = ds.to_list()
    rows[0]["messages"].clear()
    assert ds[0]["messages"]


def test_map_filter_dedupe() -> None:
    rows = [*good_rows(5), good_rows(1, start=2)[0]]
    ds = Dataset(rows, lines=[1, 2, 3, 4, 5, 6])
    assert len(ds.dedupe()) == 5
    assert ds.dedupe().lines == [1, 2, 3, 4, 5]
    shouting = json.loads(json.dumps(rows[1]))
    shouting["messages"][1]["content"] = "WHAT  is 1 +\t1?"
    ds2 = Dataset([*rows, shouting])
    assert len(ds2.dedupe()) == 6
    assert len(ds2.dedupe(near=True)) == 5
    upper = ds.map(lambda r: {**r, "messages": [{**m, "content": m["content"].upper()} for m in r["messages"]]})
    assert upper[0]["messages"][1]["content"] == "WHAT IS 0 + 0?"
    assert ds[0]["messages"][1]["content"] == "What is 0 + 0?"
    assert upper.lines == ds.lines
    short = ds.filter(lambda r: r["messages"][1]["content"].endswith("1 + 1?"))
    assert len(short) == 1
    assert short.lines == [2]


def test_train_test_split_is_seeded_and_keeps_duplicates_together() -> None:
    rows = good_rows(50)
    rows += [json.loads(json.dumps(rows[i])) for i in range(0, 50, 5)]  # 10 exact duplicates
    ds = Dataset(rows)
    a = ds.train_test_split(0.2, seed=7)
    b = ds.train_test_split(0.2, seed=7)
    c = ds.train_test_split(0.2, seed=8)
    assert isinstance(a, DatasetSplits)
    assert a.train.to_list() == b.train.to_list()
    assert a.test.to_list() == b.test.to_list()
    assert a.test.to_list() != c.test.to_list()
    assert len(a.train) + len(a.test) == 60
    assert len(a.test) == 12
    train_keys = {json.dumps(r, sort_keys=True) for r in a.train}
    assert not [r for r in a.test if json.dumps(r, sort_keys=True) in train_keys]
    assert a.train.stats(validation=a.test).n_leaked == 0
    leaky_train, leaky_test = Dataset(rows[:50]), Dataset(rows[50:])
    assert leaky_train.stats(validation=leaky_test).n_leaked == 10
    tail = Dataset(rows[:50]).train_test_split(5, shuffle=False)
    assert tail.test.to_list() == rows[45:50]
    assert tail.train.to_list() == rows[:45]
    grouped = ds.train_test_split(6, shuffle=False)  # rows 45 and 55 are copies: they stay together
    assert rows[45] in grouped.test.to_list()
    assert grouped.test.to_list().count(rows[45]) == 2
    with pytest.raises(InvalidArgumentError, match="between 0 and 1"):
        ds.train_test_split(1.5)
    with pytest.raises(InvalidArgumentError, match=r"a fraction .* or a number of examples, not str"):
        ds.train_test_split("0.5")  # type: ignore[arg-type]


def test_convert_prompt_completion_and_preference() -> None:
    comp = Dataset.from_list([{"prompt": "2+2=\n\n###\n\n", "completion": " 4 END"}])
    chat = comp.convert("chat", system="You add.")
    assert chat[0] == {
        "messages": [
            {"role": "system", "content": "You add."},
            {"role": "user", "content": "2+2=\n\n###"},
            {"role": "assistant", "content": "4 END"},
        ]
    }
    pref = Dataset.from_list(
        [
            {
                "input": {"messages": [{"role": "user", "content": "q"}], "tools": []},
                "preferred_output": [{"role": "assistant", "content": "good"}],
                "non_preferred_output": [{"role": "assistant", "content": "bad"}],
            }
        ]
    )
    assert pref.convert()[0] == {
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}],
        "tools": [],
    }
    assert Dataset.from_list(good_rows(1)).convert().to_list() == good_rows(1)
    with pytest.raises(InvalidArgumentError, match="only conversion to 'chat'"):
        comp.convert("preference")  # type: ignore[arg-type]


def test_validate_in_memory_and_raise_for_issues() -> None:
    ds = Dataset.from_list(good_rows(3))
    report = ds.validate()
    assert not report.ok
    assert [i.code for i in report.errors] == [IssueCode.TOO_FEW_EXAMPLES]
    with pytest.raises(DatasetValidationError) as info:
        report.raise_for_issues()
    assert info.value.report is report
    assert "Training file has 3 example(s)" in str(info.value)
    ok = Dataset.from_list(good_rows(10)).validate(model="gpt-4o-mini", on=TODAY)
    assert ok.ok
    assert [i.code for i in ok.warnings] == [IssueCode.MODEL_SHUTTING_DOWN]
    ok.raise_for_issues()
    with pytest.raises(DatasetValidationError):
        ok.raise_for_issues(warnings=True)


def test_example_files_validate_clean() -> None:
    chat = Dataset.validate_file(EXAMPLES / "support_chat.jsonl", model="gpt-4o-mini", on=TODAY, stats=True)
    assert chat.ok
    assert [i.code for i in chat.issues] == [IssueCode.MODEL_SHUTTING_DOWN]
    assert chat.n_examples >= 10
    assert chat.stats is not None
    assert chat.stats.cost_usd is not None
    assert chat.stats.n_refusals == 0
    pref = Dataset.validate_file(EXAMPLES / "support_preference.jsonl", model="gpt-4.1-mini", on=TODAY)
    assert pref.ok
    assert pref.method == "dpo"
    assert pref.format == "preference"


def test_empty_dataset() -> None:
    ds = Dataset()
    assert len(ds) == 0
    assert ds.format == "chat"
    assert ds.validate().ok  # nothing to report but nothing wrong: the count check needs examples
    with pytest.raises(DatasetFormatError):
        _ = Dataset.from_list([{"text": "x"}]).format


def test_write_then_validate_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", good_rows(10))
    assert Dataset.validate_file(os.fspath(path)).ok


def test_unknown_format_suggests_the_key() -> None:
    report = Dataset.from_list([{"message": [{"role": "user", "content": "x"}]}]).validate(min_examples=0)
    assert [i.code for i in report.issues] == [IssueCode.UNKNOWN_FORMAT]
    assert "did you mean 'messages' instead of 'message'?" in report.issues[0].message
