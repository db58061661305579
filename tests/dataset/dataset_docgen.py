"""Renders docs/_dataset_codes.md (one section per IssueCode) from the code's facts and real validator output.

Every example message is produced by running the validator on the malformed-file corpus (or, for the four
codes the corpus cannot hold, on a file made here), so the docs cannot drift from the code: test_docs.py checks
that the committed file equals this rendering. Regenerate with ``python tests/dataset/dataset_docgen.py``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
ROOT = HERE.parent.parent
TARGET = ROOT / "docs" / "_dataset_codes.md"  # only while unmerged; the section lives in docs/errors.md
ERRORS = ROOT / "docs" / "errors.md"
MARKER = "## Dataset issue codes"
SHOWN_NAME = "train.jsonl"

_GROUPS = [
    (
        "The file",
        ["file_unreadable", "empty_file", "file_too_large", "large_file", "line_too_long", "too_few_examples"],
    ),
    (
        "Bytes and encoding",
        ["invalid_utf8", "bom", "crlf_line_endings", "nul_character", "lone_surrogate", "blank_line"],
    ),
    ("JSON", ["invalid_json", "duplicate_key", "not_an_object"]),
    (
        "Format and keys",
        [
            "unknown_format",
            "mixed_formats",
            "format_not_supported",
            "method_not_supported",
            "missing_key",
            "unknown_key",
            "unknown_message_key",
            "invalid_type",
        ],
    ),
    (
        "Messages and roles",
        [
            "empty_messages",
            "invalid_role",
            "developer_role",
            "invalid_message_name",
            "role_order",
            "missing_assistant",
            "last_message_role",
        ],
    ),
    ("Content", ["missing_content", "invalid_content", "invalid_content_part", "empty_content", "reserved_token"]),
    (
        "Tools and function calls",
        [
            "invalid_tools",
            "invalid_tool_calls",
            "invalid_function_name",
            "invalid_arguments",
            "arguments_not_object",
            "double_encoded_arguments",
            "undeclared_function",
            "duplicate_tool_call_id",
            "tool_call_id_mismatch",
            "missing_tool_response",
            "parallel_tool_calls_disabled",
        ],
    ),
    ("Weights", ["invalid_weight", "no_trainable_messages"]),
    (
        "Images",
        [
            "invalid_image",
            "unsupported_image_format",
            "image_format_mismatch",
            "image_too_large",
            "too_many_images",
            "image_not_allowed",
            "images_not_supported",
        ],
    ),
    ("Preference (DPO)", ["invalid_preference", "identical_preference"]),
    ("Size and duplicates", ["example_too_long", "duplicate_example"]),
    ("The model", ["model_unavailable", "model_shutting_down", "unknown_model"]),
]


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _examples() -> dict[str, str]:
    """code -> one rendered issue line, from real validations."""
    from finetune_embed.dataset import Dataset, DatasetIssue
    from finetune_embed.dataset import _stream as stream

    found: dict[str, str] = {}

    def take(report: object, name: str) -> None:
        for issue in report.issues:  # type: ignore[attr-defined]
            code = issue.code.value
            if code not in found:
                found[code] = issue.format(SHOWN_NAME).replace(name, SHOWN_NAME)

    manifest = json.loads((DATA / "MANIFEST.json").read_text(encoding="utf-8"))
    preferred = ["roles.jsonl", "content.jsonl", "model_shut_down.jsonl"]  # their examples read best
    with _cwd(DATA):
        for name in preferred + sorted(set(manifest) - set(preferred)):
            opts = dict(manifest[name]["options"])
            opts.pop("ignore", None)
            if "on" in opts:
                opts["on"] = date.fromisoformat(opts["on"])
            take(Dataset.validate_file(name, **opts), name)
    with tempfile.TemporaryDirectory() as tmp, _cwd(Path(tmp)):
        take(Dataset.validate_file(SHOWN_NAME), SHOWN_NAME)  # file_unreadable: it does not exist
        rows = [
            {"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}"}]}
            for i in range(9)
        ]
        png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 10_500_000
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]},
                    {"role": "assistant", "content": "A big picture."},
                ]
            }
        )
        Path(SHOWN_NAME).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        take(Dataset.validate_file(SHOWN_NAME), SHOWN_NAME)
    for size in (9 * 2**30, 600 * 2**20):  # sizes too big to write here: the same message code, a fake size
        issue = stream.size_issue_of(SHOWN_NAME, size)
        assert issue is not None
        found[issue.code.value] = DatasetIssue(None, "", issue.code, "error", issue.message).format(SHOWN_NAME)
    too_long = stream.line_too_long_issue(7, 600 * 2**20 + 1, stream.MAX_LINE_BYTES, b"\x00\x00\x00\x00")
    found[too_long.code.value] = too_long.format(SHOWN_NAME)
    return found


def render() -> str:
    from finetune_embed.dataset import CODE_INFO, IssueCode

    examples = _examples()
    listed = [c for _, codes in _GROUPS for c in codes]
    missing = {c.value for c in IssueCode} - set(listed)
    if missing or len(listed) != len(set(listed)):
        raise SystemExit(f"docgen: codes not grouped exactly once: {sorted(missing)}")
    out = [
        "<!-- Generated by tests/dataset/dataset_docgen.py from finetune_embed/dataset/_codes.py and real validator",
        "     output; do not edit by hand: run `python tests/dataset/dataset_docgen.py`. -->",
        "",
        "## Dataset issue codes",
        "",
        "Every issue that `Dataset.validate_file`, `Dataset.validate` and `finetune-embed dataset validate` report",
        "carries one of these stable codes. Each section says what the code means, shows a real message (as the CLI",
        "prints it: `FILE:LINE path: message [code]`) and how to fix it. *Severity* is the default: errors make the",
        "report fail (`report.ok` is false, the CLI exits 1); warnings do not. *Server code* is the OpenAI fine-tuning",
        "service's error code for the same class of problem, when it has one.",
        "",
    ]
    for title, codes in _GROUPS:
        for value in codes:
            info = CODE_INFO[IssueCode(value)]
            server = f"`{info.server_code}`" if info.server_code else "none (a local check)"
            out += [
                f"### {value}",
                "",
                f"**Severity:** {info.severity} · **Server code:** {server} · **Group:** {title}",
                "",
                info.title,
                "",
                "Example:",
                "",
                "```text",
                examples[value],
                "```",
                "",
                f"**Fix:** {info.fix}",
                "",
            ]
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ROOT.parent / "shared" / "tiktoken-cache"))
    sys.path.insert(0, str(ROOT))
    body = render().split(MARKER, 1)[1]
    if TARGET.exists():
        TARGET.write_text(render(), encoding="utf-8")
        print(f"wrote {TARGET}")
        return
    head = ERRORS.read_text(encoding="utf-8").split(MARKER, 1)[0]
    ERRORS.write_text(head + MARKER + body, encoding="utf-8")
    print(f"wrote the dataset section of {ERRORS}")


if __name__ == "__main__":
    main()
