"""No input, however broken, makes the validators raise: every problem becomes an issue."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune_embed.dataset import Dataset, fix_file

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
_roles = st.sampled_from(["system", "user", "assistant", "tool", "function", "developer", "bot", None, 3])
_messages = st.lists(
    st.fixed_dictionaries(
        {"role": _roles},
        optional={
            "content": st.none() | st.text(max_size=30) | st.lists(_json_values, max_size=3) | st.integers(),
            "tool_calls": _json_values,
            "tool_call_id": st.text(max_size=5) | st.integers(),
            "weight": st.sampled_from([0, 1, 2, True, "1", None]),
            "name": _json_values,
            "function_call": _json_values,
        },
    ),
    max_size=5,
)
_examples = st.one_of(
    _json_values,
    st.fixed_dictionaries(
        {"messages": _messages}, optional={"tools": _json_values, "parallel_tool_calls": _json_values}
    ),
    st.fixed_dictionaries(
        {"input": _json_values, "preferred_output": _json_values, "non_preferred_output": _json_values}
    ),
    st.fixed_dictionaries({"prompt": _json_values, "completion": _json_values}),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(lines=st.lists(st.binary(max_size=60), max_size=8))
def test_random_bytes(tmp_path_factory: object, lines: list[bytes]) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "x.jsonl"  # type: ignore[attr-defined]
    path.write_bytes(b"\n".join(lines))
    report = Dataset.validate_file(path, model="gpt-4o-mini", stats=True)
    json.dumps(report.to_dict())
    str(report)
    fix_file(path)


@SETTINGS
@given(
    rows=st.lists(_examples, max_size=6),
    model=st.sampled_from([None, "gpt-4o-mini", "babbage-002", "x-model"]),
    method=st.sampled_from([None, "supervised", "dpo", "reinforcement"]),
)
def test_random_json_lines(tmp_path_factory: object, rows: list[object], model: str | None, method: str | None) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "x.jsonl"  # type: ignore[attr-defined]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = Dataset.validate_file(path, model=model, method=method, stats=True)
    assert all(i.line is None or 1 <= i.line <= len(rows) for i in report.issues)
    json.dumps(report.to_dict())
    in_memory = Dataset([r for r in rows if isinstance(r, dict)])
    in_memory.validate(model=model, method=method)
    in_memory.stats(model=model)
    in_memory.train_test_split(0.5, seed=1) if len(in_memory) > 1 else None
    in_memory.dedupe(near=True)
    fix_file(path)
