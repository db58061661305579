"""The orjson fast path (``_fastjson.parse_fast``) never changes what validation reports.

It either returns exactly the value the exact ``json`` parser returns (same types, same floats) for a line
without repeated keys, or hands the line to the exact parser (``EXACT``): for every line the exact parser refuses
or finds a repeated key in, and for the values orjson cannot hold (big integers, lone surrogates, NaN).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dataset_helpers import DATA, manifest, options_of
from hypothesis import given, settings
from hypothesis import strategies as st

from finetune_embed.dataset import Dataset, _stream
from finetune_embed.dataset._fastjson import EXACT, parse_fast


def _exact(body: bytes) -> tuple[str, Any]:
    """What the exact parser makes of ``body``: ("value", v), ("duplicates", v) or ("refused", None)."""
    parser = _stream._Parser()
    try:
        value = parser.decode(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return "refused", None
    return ("duplicates" if parser.saw_duplicates else "value"), value


def _typed(value: Any) -> Any:
    """``value`` with every scalar's type spelled out (``1 == 1.0 == True`` in Python; not here)."""
    if isinstance(value, dict):
        return ("dict", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def _agrees(body: bytes) -> Any:
    fast = parse_fast(body)
    kind, value = _exact(body)
    if kind != "value":
        assert fast is EXACT, (body, kind)
    elif fast is not EXACT:
        assert _typed(fast) == _typed(value), body
    return fast


# JSON texts written by hand, so that objects can repeat keys and numbers and escapes take every form
_key = st.text(alphabet=st.sampled_from(["a", "b", ":", '"', "\\", "é", "\ud800", "\x00", " "]), max_size=3)
_number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.builds(  # long mantissas: both parsers must round them to the same double
        lambda digits, exp: f"{digits[0]}.{digits[1:] or '0'}e{exp}",
        st.text(alphabet="0123456789", min_size=1, max_size=30),
        st.integers(-340, 320),
    ),
    st.sampled_from(["-0", "-0.0", "1e400", "-1e400", "1e-400", "0.1e-320", "2.2250738585072011e-308", "1E5", "1.5e+3",
                     "0.30000000000000004", "123456789012345678901234567890.5", "NaN", "Infinity", "-Infinity"]),
)


_STRING_PARTS = st.sampled_from(["a", ":", '"', "\\", "é", "😀", "\ud83d", "\x01", "<|", " "])


def _string(draw: Any) -> str:
    text = "".join(draw(st.lists(_STRING_PARTS, max_size=6)))
    return json.dumps(text, ensure_ascii=draw(st.booleans()))


@st.composite
def _json_text(draw: Any, depth: int = 0) -> str:
    choice = draw(st.integers(0, 5 if depth < 4 else 2))
    if choice == 0:
        return draw(_number)
    if choice == 1:
        return _string(draw)
    if choice == 2:
        return draw(st.sampled_from(["true", "false", "null"]))
    if choice == 3:
        items = draw(st.lists(_json_text(depth + 1), max_size=3))
        return "[" + ",".join(items) + "]"
    keys = draw(st.lists(_key, max_size=4))  # repeats happen: a small alphabet
    members = []
    for k in keys:
        written = json.dumps(k, ensure_ascii=draw(st.booleans()))
        if draw(st.booleans()) and k == ":":
            written = draw(st.sampled_from(['"\\u003a"', '"\\u003A"']))
        members.append(f"{written}{draw(st.sampled_from([':', ' : ', ':  ']))}{draw(_json_text(depth + 1))}")
    return "{" + ", ".join(members) + "}"


@settings(max_examples=400, deadline=None)
@given(text=_json_text())
def test_fast_path_agrees_with_the_exact_parser(text: str) -> None:
    _agrees(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=40))
def test_fast_path_agrees_on_random_bytes(data: bytes) -> None:
    _agrees(data)


@pytest.mark.parametrize(
    "line",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": {"b": 1, "b": 1}}',
        b'{"a": 1, "\\u0061": 2}',  # the same key, escaped
        b'{"\\u003a": 1, ":": 2}',
        b'{"k": "x:y", "k": "z"}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": 18446744073709551616}',  # 2**64: orjson would read a float
        b'[1, -99999999999999999999]',
        b'"x:y"',  # not an object or a list
        b"17",
        b'{"a": -9223372036854775809}',  # -(2**63) - 1
        b'{"a": "\\ud800"}',
        b'{"a": "\\udc00x"}',
        b'{"a": 1,}',
        b'{"a": 01}',
        b"{'a': 1}",
        b'{"a": "\x01"}',
        b'{"a": "\xed\xa0\x80"}',  # a surrogate written as UTF-8: not UTF-8
        b'{"a": "\xff"}',
        b'{"a": 1} x',
        b"[" * 101 + b"]" * 101,
    ],
)
def test_lines_the_exact_parser_must_see(line: bytes) -> None:
    assert parse_fast(line) is EXACT


@pytest.mark.parametrize(
    "line",
    [
        b'{"messages": [{"role": "user", "content": "Note: a colon"}]}',
        b'{"a": "\\u00e9\\ud83d\\ude00", "b": -0, "c": -0.0, "d": 1E5, "e": 922337203685477580}',
        b'{"a": "\\u0000", "b": "<|endoftext|>", "c": "\\"q\\": 1"}',
        b'{"a": 0.1, "b": 2.2250738585072011e-308, "c": 5e-324, "d": 1.7976931348623157e15}',
        b"[" * 100 + b"]" * 100,
        b'{"id": 123456789012345678, "n": -123456789012345678, "s": "12345678901234567890123"}',
    ],
)
def test_lines_the_fast_path_takes(line: bytes) -> None:
    assert _agrees(line) is not EXACT


MANIFEST = manifest()


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_corpus_reports_are_identical_without_the_fast_path(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    opts, _ignore = options_of(MANIFEST[name])
    opts["stats"] = True
    fast = Dataset.validate_file(DATA / name, **opts).to_dict()
    monkeypatch.setattr(_stream, "parse_fast", lambda body: EXACT)
    exact = Dataset.validate_file(DATA / name, **opts).to_dict()
    assert fast == exact


def test_a_line_with_repeated_keys_is_reported_among_fast_lines(tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "Time: 10:30"}, {"role": "assistant", "content": "ok"}]}
    lines = [json.dumps(good)] * 3
    lines[1] = lines[1].replace('"content": "ok"', '"content": "ok", "content": "ok"')
    path = tmp_path / "dup.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = Dataset.validate_file(path)
    dups = report.by_code("duplicate_key")
    assert [(i.line, i.path) for i in dups] == [(2, "messages[1]")]
    assert "'content'" in dups[0].message
