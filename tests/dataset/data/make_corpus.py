"""Writes the malformed-file corpus of tests/dataset/data and its MANIFEST.json.

Each ``*.jsonl`` holds good examples around one family of defects; MANIFEST.json lists, per file, the options to
validate it with and the exact issues expected: ``[code, line, path]`` (line ``null`` for file-level issues).
Run ``python tests/dataset/data/make_corpus.py`` after changing it; the files are committed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SYSTEM = {"role": "system", "content": "You are a terse assistant."}

PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
JPEG_HEAD = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffc00011080020004003012200021101031101ffd9")
GIF = bytes.fromhex("4749463839610100010080000000000000ffffff21f90401000000002c00000000010001000002024401003b")


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def good(i: int) -> dict[str, Any]:
    return {
        "messages": [
            SYSTEM,
            {"role": "user", "content": f"What is {i} + {i}?"},
            {"role": "assistant", "content": f"{2 * i}."},
        ]
    }


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"messages": [SYSTEM, *messages], **extra}


U = {"role": "user", "content": "Weather in Paris?"}
A = {"role": "assistant", "content": "Sunny."}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def call(
    args: Any = '{"city": "Paris"}', *, id: str = "call_1", name: str = "get_weather", **extra: Any
) -> dict[str, Any]:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": args}, **extra}


def tool_example(calls: list[dict[str, Any]], *after: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return chat(U, {"role": "assistant", "tool_calls": calls}, *after, tools=TOOLS, **extra)


def lines_of(rows: list[Any]) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]


def with_defects(defects: dict[int, Any], n: int = 10) -> list[Any]:
    """``n`` lines: good examples, with ``defects`` (1-based line -> row or raw string) in place."""
    return [defects.get(i, good(i)) for i in range(1, n + 1)]


FILES: dict[str, dict[str, Any]] = {}


def add(name: str, rows: list[Any] | bytes, expected: list[list[Any]], **options: Any) -> None:
    FILES[name] = {"rows": rows, "expected": expected, "options": options}


# --- bytes and encoding -------------------------------------------------------------------------------------------
body = "\n".join(lines_of(with_defects({}))) + "\n"
add("bom.jsonl", b"\xef\xbb\xbf" + body.encode(), [["bom", 1, ""]])
add("crlf.jsonl", body.replace("\n", "\r\n").encode(), [["crlf_line_endings", 1, ""]])
raw = lines_of(with_defects({}))
raw[3] = raw[3].replace("What is 4", "Caf\u00e9 4")
add(
    "invalid_utf8.jsonl",
    ("\n".join(raw) + "\n").encode("utf-8").replace("Caf\u00e9".encode(), "Caf\u00e9".encode("latin-1")),
    [["invalid_utf8", 4, ""]],
)
add("utf16.jsonl", body.encode("utf-16"), [["invalid_utf8", 1, ""]])
raw = lines_of(with_defects({}))
raw[4] = raw[4].replace("What is", "What\x00 is")
add("nul_raw.jsonl", ("\n".join(raw) + "\n").encode(), [["nul_character", 5, ""]])
add(
    "nul_escape.jsonl",
    lines_of(with_defects({2: chat({"role": "user", "content": "a\u0000b"}, A)})),
    [["nul_character", 2, "messages[1].content"]],
)
add(
    "lone_surrogate.jsonl",
    with_defects(
        {6: '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Smile \\ud83d!"}]}'}
    ),
    [["lone_surrogate", 6, "messages[1].content"]],
)
add(
    "blank_lines.jsonl",
    [*with_defects({}, 3), "", *with_defects({}, 10)[3:], "", ""],
    [["blank_line", 4, ""]],
)
add("empty.jsonl", b"", [["empty_file", None, ""]])
add("whitespace_only.jsonl", b"\n\n   \n", [["empty_file", None, ""]])

# --- JSON ---------------------------------------------------------------------------------------------------------
add(
    "bad_json.jsonl",
    with_defects(
        {
            3: '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}',
            7: '{"messages": [{"role": "user", "content": "He said "hi""}, {"role": "assistant", "content": "ok"}]}',
            8: '{"messages": [{"role": "user", "content": "x", "n": NaN}, {"role": "assistant", "content": "ok"}]}',
        }
    ),
    [["invalid_json", 3, ""], ["invalid_json", 7, ""], ["invalid_json", 8, ""]],
)
add(
    "duplicate_key.jsonl",
    with_defects(
        {
            4: '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], '
            '"messages": [{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}',
            6: '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "role": "assistant", '
            '"content": "b"}]}',
        }
    ),
    [["duplicate_key", 4, ""], ["duplicate_key", 6, "messages[1]"]],
)
add(
    "not_object.jsonl",
    with_defects({2: '["messages"]', 5: '"just text"', 9: "42"}),
    [["not_an_object", 2, ""], ["not_an_object", 5, ""], ["not_an_object", 9, ""]],
)

# --- format and keys ----------------------------------------------------------------------------------------------
add(
    "unknown_keys.jsonl",
    with_defects(
        {
            3: {**good(3), "weight": 1},
            5: chat({"role": "user", "content": "Hi", "metadata": {"id": 1}}, A),
        }
    ),
    [["unknown_key", 3, "weight"], ["unknown_message_key", 5, "messages[1].metadata"]],
)
add(
    "unknown_format.jsonl",
    with_defects({3: {"text": "plain text is not a fine-tuning format"}}),
    [["unknown_format", 3, ""]],
)
add(
    "mixed_formats.jsonl",
    with_defects({4: {"prompt": "2+2=", "completion": " 4"}}),
    [["mixed_formats", 4, ""]],
)
add(
    "types.jsonl",
    with_defects(
        {
            2: {"messages": "hello"},
            3: {"messages": []},
            4: {**good(4), "parallel_tool_calls": "no"},
            5: chat({"role": "user", "content": "Hi", "name": 7}, A),
            6: {"messages": [SYSTEM, "user: hi", A]},
        }
    ),
    [
        ["invalid_type", 2, "messages"],
        ["empty_messages", 3, "messages"],
        ["invalid_type", 4, "parallel_tool_calls"],
        ["invalid_type", 5, "messages[1].name"],
        ["invalid_type", 6, "messages[1]"],
        ["role_order", 6, "messages[2]"],
    ],
)

# --- roles and order ----------------------------------------------------------------------------------------------
add(
    "roles.jsonl",
    with_defects(
        {
            2: chat(U, {"role": "narrator", "content": "Later..."}, A),
            4: chat({"content": "no role"}, A),
            6: {"messages": [{"role": "developer", "content": "Be terse."}, U, A]},
            8: chat(A, U, A),
            9: chat(U, A, {"role": "system", "content": "late"}, U, A),
            10: chat(U, A, A),
        }
    ),
    [
        ["invalid_role", 2, "messages[2].role"],
        ["missing_key", 4, "messages[1].role"],
        ["role_order", 4, "messages[2]"],
        ["developer_role", 6, "messages[0].role"],
        ["role_order", 8, "messages[1]"],
        ["role_order", 9, "messages[3]"],
        ["role_order", 10, "messages[3]"],
    ],
)
add(
    "assistant.jsonl",
    with_defects({3: chat(U), 5: chat(U, A, {"role": "user", "content": "Thanks"})}),
    [["missing_assistant", 3, "messages"], ["last_message_role", 5, "messages[3]"]],
)

# --- content ------------------------------------------------------------------------------------------------------
add(
    "content.jsonl",
    with_defects(
        {
            2: chat({"role": "user"}, A),
            3: chat({"role": "user", "content": 42}, A),
            4: chat(
                {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}, A
            ),
            5: chat({"role": "user", "content": "   "}, A),
            6: chat(U, {"role": "assistant", "content": None}),
            7: chat({"role": "user", "content": [{"type": "text"}]}, A),
            8: chat({"role": "user", "content": []}, A),
        }
    ),
    [
        ["missing_content", 2, "messages[1].content"],
        ["invalid_content", 3, "messages[1].content"],
        ["invalid_content_part", 4, "messages[1].content[0].type"],
        ["empty_content", 5, "messages[1].content"],
        ["missing_content", 6, "messages[2].content"],
        ["invalid_content_part", 7, "messages[1].content[0].text"],
        ["invalid_content", 8, "messages[1].content"],
    ],
)
add(
    "reserved_tokens.jsonl",
    with_defects(
        {
            3: chat({"role": "user", "content": "end here <|endoftext|> please"}, A),
            5: '{"messages": [{"role": "user", "content": "Hi"}, '
            '{"role": "assistant", "content": "\\u003c|fim_suffix|>"}]}',
        }
    ),
    [["reserved_token", 3, "messages[1].content"], ["reserved_token", 5, "messages[1].content"]],
)

# --- tools --------------------------------------------------------------------------------------------------------
add(
    "tool_calls.jsonl",
    with_defects(
        {
            2: chat(U, {"role": "assistant", "tool_calls": {"id": "call_1"}}, tools=TOOLS),
            3: tool_example([{"type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]),
            4: tool_example([call({"city": "Paris"})]),
            5: tool_example([call('{"city": "Paris"')]),
            6: tool_example([call("[1, 2]")]),
            7: tool_example([call(json.dumps('{"city": "Paris"}'))]),
            8: tool_example([call(name="get_time")]),
            9: tool_example([call(name="get weather")]),
            10: tool_example([{**call(), "type": "tool"}]),
        },
        11,
    ),
    [
        ["invalid_tool_calls", 2, "messages[2].tool_calls"],
        ["invalid_tool_calls", 3, "messages[2].tool_calls[0].id"],
        ["invalid_tool_calls", 4, "messages[2].tool_calls[0].function.arguments"],
        ["invalid_arguments", 5, "messages[2].tool_calls[0].function.arguments"],
        ["arguments_not_object", 6, "messages[2].tool_calls[0].function.arguments"],
        ["double_encoded_arguments", 7, "messages[2].tool_calls[0].function.arguments"],
        ["undeclared_function", 8, "messages[2].tool_calls[0].function.name"],
        ["invalid_function_name", 9, "messages[2].tool_calls[0].function.name"],
        ["undeclared_function", 9, "messages[2].tool_calls[0].function.name"],
        ["invalid_tool_calls", 10, "messages[2].tool_calls[0].type"],
    ],
)
TOOL_OK = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
add(
    "tool_ids.jsonl",
    with_defects(
        {
            2: tool_example([call(), call(id="call_1")], TOOL_OK, A),
            3: tool_example([call()], {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}, A),
            4: tool_example([call()], U, A),
            5: tool_example(
                [call(), call(id="call_2")],
                TOOL_OK,
                {**TOOL_OK, "tool_call_id": "call_2"},
                A,
                parallel_tool_calls=False,
            ),
            6: tool_example([call()], {"role": "tool", "content": "sunny"}, A),
            7: chat(U, A, tools=[{"type": "func", "function": {"name": "f"}}]),
            8: chat(U, A, tools=[TOOLS[0], TOOLS[0]]),
            9: tool_example([call()], TOOL_OK, TOOL_OK, A),
            10: chat(
                U,
                {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": "1"}},
                {"role": "function", "name": "get_weather", "content": "sunny"},
                A,
                functions=[TOOLS[0]["function"]],
            ),
        },
        11,
    ),
    [
        ["duplicate_tool_call_id", 2, "messages[2].tool_calls[1].id"],
        ["tool_call_id_mismatch", 3, "messages[3].tool_call_id"],
        ["missing_tool_response", 3, "messages[2].tool_calls"],
        ["missing_tool_response", 4, "messages[2].tool_calls"],
        ["parallel_tool_calls_disabled", 5, "messages[2].tool_calls"],
        ["missing_key", 6, "messages[3].tool_call_id"],
        ["missing_tool_response", 6, "messages[2].tool_calls"],
        ["invalid_tools", 7, "tools[0].type"],
        ["invalid_tools", 8, "tools[1].function.name"],
        ["tool_call_id_mismatch", 9, "messages[4].tool_call_id"],
        ["arguments_not_object", 10, "messages[2].function_call.arguments"],
    ],
)

# --- weights ------------------------------------------------------------------------------------------------------
add(
    "weights.jsonl",
    with_defects(
        {
            2: chat(U, {**A, "weight": 2}),
            3: chat(U, {**A, "weight": True}),
            4: chat({**U, "weight": 1}, A),
            5: chat(U, {**A, "weight": 0}, U, {**A, "weight": 0}),
            6: chat(U, {**A, "weight": 0}, U, {**A, "weight": 1}),
        }
    ),
    [
        ["invalid_weight", 2, "messages[2].weight"],
        ["invalid_weight", 3, "messages[2].weight"],
        ["invalid_weight", 4, "messages[1].weight"],
        ["no_trainable_messages", 5, "messages"],
    ],
)

# --- images -------------------------------------------------------------------------------------------------------
PNG_URL = data_url("image/png", PNG_1x1)


def img(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **extra}}


def user_img(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": "What is this?"}, *parts]}


add(
    "images.jsonl",
    with_defects(
        {
            1: chat(user_img(img(PNG_URL)), {"role": "assistant", "content": "A pixel."}),
            2: chat(U, {"role": "assistant", "content": [img(PNG_URL)]}),
            3: chat(user_img(img(data_url("image/gif", GIF))), A),
            4: chat(user_img(img("data:image/png;base64,not base64!!")), A),
            5: chat(user_img(img(data_url("image/jpeg", PNG_1x1))), A),
            6: chat(user_img(*[img(PNG_URL) for _ in range(11)]), A),
            7: chat({"role": "user", "content": [{"type": "image_url", "image_url": PNG_URL}]}, A),
            8: chat(user_img(img("ftp://example.com/cat.png")), A),
            9: chat(user_img(img("https://example.com/cat.png", detail="ultra")), A),
            10: chat(user_img(img(data_url("image/jpeg", JPEG_HEAD))), A),
        }
    ),
    [
        ["image_not_allowed", 2, "messages[2].content[0]"],
        ["unsupported_image_format", 3, "messages[1].content[1].image_url.url"],
        ["invalid_image", 4, "messages[1].content[1].image_url.url"],
        ["image_format_mismatch", 5, "messages[1].content[1].image_url.url"],
        ["too_many_images", 6, "messages"],
        ["invalid_image", 7, "messages[1].content[0].image_url"],
        ["invalid_image", 8, "messages[1].content[1].image_url.url"],
        ["invalid_image", 9, "messages[1].content[1].image_url.detail"],
    ],
    model="gpt-4o-2024-08-06",
    on="2026-11-25",
    ignore=["model_shutting_down"],
)
add(
    "images_model.jsonl",
    with_defects({4: chat(user_img(img(PNG_URL)), A)}),
    [["images_not_supported", 4, "messages[1].content[1]"]],
    model="gpt-4o-mini",
    on="2026-11-25",
    ignore=["model_shutting_down"],
)

# --- preference (DPO) ---------------------------------------------------------------------------------------------


def pref(i: int, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "input": {"messages": [SYSTEM, {"role": "user", "content": f"Say {i} politely."}]},
        "preferred_output": [{"role": "assistant", "content": f"Certainly: {i}."}],
        "non_preferred_output": [{"role": "assistant", "content": f"{i}"}],
    }
    row.update(changes)
    return row


add(
    "dpo.jsonl",
    [
        pref(1),
        pref(2, preferred_output=[A, A]),
        pref(3, non_preferred_output=[{"role": "user", "content": "x"}]),
        pref(4, input={"messages": [SYSTEM, U, A]}),
        pref(5, non_preferred_output=[{"role": "assistant", "content": "Certainly: 5."}]),
        {k: v for k, v in pref(6).items() if k != "input"},
        pref(7, input={"messages": [U], "temperature": 0}),
        pref(8),
        pref(9),
        pref(10),
    ],
    [
        ["invalid_preference", 2, "preferred_output"],
        ["invalid_preference", 3, "non_preferred_output[0].role"],
        ["invalid_preference", 4, "input.messages[2]"],
        ["identical_preference", 5, "non_preferred_output"],
        ["missing_key", 6, "input"],
        ["unknown_key", 7, "input.temperature"],
    ],
    method="dpo",
)
add(
    "dpo_chat_data.jsonl",
    with_defects({}),
    [["format_not_supported", None, ""]],
    method="dpo",
)

# --- prompt / completion and reinforcement -------------------------------------------------------------------------
add(
    "completion.jsonl",
    [{"prompt": f"{i}+{i}=", "completion": f" {2 * i}"} for i in range(1, 11)],
    [],
    model="babbage-002",
    on="2026-11-25",
    ignore=["model_shutting_down"],
)
rows = [{"prompt": f"{i}+{i}=", "completion": f" {2 * i}"} for i in range(1, 11)]
rows[2] = {"prompt": "3+3=", "completion": ""}
rows[4] = {"prompt": 5, "completion": " 10"}
rows[5] = {"prompt": "6+6=", "completion": " 12", "label": "math"}
add(
    "completion_defects.jsonl",
    rows,
    [["empty_content", 3, "completion"], ["invalid_type", 5, "prompt"], ["unknown_key", 6, "label"]],
    model="babbage-002",
    on="2026-11-25",
    ignore=["model_shutting_down"],
)
add(
    "completion_for_chat_model.jsonl",
    [{"prompt": f"{i}+{i}=", "completion": f" {2 * i}"} for i in range(1, 11)],
    [["format_not_supported", None, ""]],
    model="gpt-4o-mini",
    on="2026-11-25",
    ignore=["model_shutting_down"],
)
rft = [chat({"role": "user", "content": f"Solve {i}+{i}."}, reference=str(2 * i)) for i in range(1, 11)]
rft[3] = chat(U, A, reference="x")
add(
    "reinforcement.jsonl",
    rft,
    [["last_message_role", 4, "messages[2]"], *[["role_order", i, "messages[0]"] for i in range(1, 11)]],
    method="reinforcement",
)

# --- counts, duplicates, length, model ----------------------------------------------------------------------------
add("too_few.jsonl", with_defects({}, 7), [["too_few_examples", None, ""]])
add("duplicates.jsonl", with_defects({7: good(2)}), [["duplicate_example", 7, ""]])
add(
    "too_long_with_tools.jsonl",
    with_defects(
        {5: chat(U, A, tools=[{**TOOLS[0], "function": {**TOOLS[0]["function"], "description": "word " * 300}}])}
    ),
    [["example_too_long", 5, ""]],
    max_example_tokens=200,
)
add(
    "model_shut_down.jsonl",
    with_defects({}),
    [["model_unavailable", None, ""]],
    model="gpt-3.5-turbo",
    on="2026-11-25",
)
add(
    "model_no_new_jobs.jsonl",
    with_defects({}),
    [["model_unavailable", None, ""]],
    model="gpt-4o-mini",
    on="2027-01-07",
)
add(
    "model_shutting_down.jsonl",
    with_defects({}),
    [["model_shutting_down", None, ""]],
    model="gpt-4o-mini",
    on="2026-11-25",
)
add("model_unknown.jsonl", with_defects({}), [["unknown_model", None, ""]], model="my-own-model-7b")
add(
    "method_not_supported.jsonl",
    [pref(i) for i in range(1, 11)],
    [["method_not_supported", None, ""]],
    model="gpt-4o-mini",
    on="2026-11-25",
    ignore=["model_shutting_down"],
)


def main() -> None:
    manifest: dict[str, Any] = {}
    for name, spec in FILES.items():
        rows = spec["rows"]
        data = rows if isinstance(rows, bytes) else ("\n".join(lines_of(rows)) + "\n").encode("utf-8")
        (HERE / name).write_bytes(data)
        manifest[name] = {"options": spec["options"], "expected": spec["expected"]}
    (HERE / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(FILES)} files")


if __name__ == "__main__":
    main()
