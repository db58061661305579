"""`finetune-embed dataset ...`: human and JSON output, exit codes, and never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from dataset_helpers import DATA, EXAMPLES, good_rows, manifest, write_jsonl

from finetune_embed.cli import main

MANIFEST = manifest()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["dataset", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"traceback reached the user: {result.exception!r}\n{result.output}")
    return result.exit_code, result.stdout, result.stderr


def test_readme_main_command_on_the_example() -> None:
    code, out, _ = run("validate", str(EXAMPLES / "support_chat.jsonl"), "--model", "gpt-4o-mini", "--on", "2026-11-25")
    assert code == 0
    assert "12 examples, chat, supervised, model gpt-4o-mini-2024-07-18" in out
    assert "OpenAI accepts no new fine-tuning jobs after 2027-01-06" in out
    assert "[model_shutting_down]" in out
    assert "Tokens: " in out
    assert "o200k_base" in out
    assert "Epochs: 8 (default heuristic)" in out
    assert "estimated cost $" in out
    assert out.rstrip().endswith("OK: 0 error(s), 1 warning(s)")


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_validate_every_corpus_file(name: str) -> None:
    spec = MANIFEST[name]
    args = ["validate", str(DATA / name), "--allow-unknown-model"]  # the validator's own unknown_model issue
    for key in ("model", "method"):
        if key in spec["options"]:
            args += [f"--{key}", spec["options"][key]]
    if "on" in spec["options"]:
        args += ["--on", spec["options"]["on"]]
    if "max_example_tokens" in spec["options"]:
        args += ["--max-example-tokens", str(spec["options"]["max_example_tokens"])]
    code, out, _ = run(*args)
    errors = [e for e in spec["expected"] if e[0] in _error_codes()]
    assert code == (1 if errors else 0), out
    for c, line, path in spec["expected"]:
        where = f"{DATA / name}:{line}" if line is not None else f"{DATA / name}:"
        assert where in out
        assert f"[{c}]" in out
        if path:
            assert f"{where} {path}: " in out
    code, out, _ = run(*args, "--json")
    data = json.loads(out)
    assert data["ok"] is (code == 0)
    found = {(i["code"], i["line"], i["path"]) for i in data["issues"]}
    assert {tuple(e) for e in spec["expected"]} <= found


def _error_codes() -> set[str]:
    from finetune_embed.dataset import CODE_INFO

    out = {c.value for c, info in CODE_INFO.items() if info.severity == "error"}
    return out | {"last_message_role"}  # an error for reinforcement examples (the corpus's use of it)


def test_missing_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    code, out, _ = run("validate", str(tmp_path / "none.jsonl"))
    assert code == 1
    assert "[file_unreadable]" in out
    code, _, err = run("split", str(tmp_path / "none.jsonl"))
    assert code == 1
    assert err.startswith("Error: ")
    assert len(err.strip().splitlines()) == 1
    code, _, err = run("stats", str(DATA / "bad_json.jsonl"))
    assert code == 0  # stats are best effort; the issues are validate's business


def test_usage_error_exits_2() -> None:
    result = CliRunner().invoke(main, ["dataset", "validate", "x.jsonl", "--method", "rlhf"])
    assert result.exit_code == 2


def test_stats_command(cookbook: Path) -> None:
    code, out, _ = run("stats", str(cookbook / "toy_chat_fine_tuning.jsonl"), "--counting", "cookbook")
    assert code == 0
    assert "tokens per example" in out
    assert "8,242" in out
    assert "Note: cookbook counting" in out
    code, out, _ = run("stats", str(cookbook / "toy_chat_fine_tuning.jsonl"), "--model", "gpt-4o-mini", "--json")
    data = json.loads(out)
    assert data["total_tokens"] == 8233
    assert data["n_epochs"] == 20
    assert data["encoding"] == "o200k_base"
    code, out, _ = run("stats", str(cookbook / "toy_chat_fine_tuning.jsonl"), "--model", "gpt-4o-mini", "--epochs", "3")
    assert "Epochs: 3 (given)" in out


def test_split_convert_fix(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "d.jsonl", good_rows(20))
    code, out, _ = run("split", str(src), "--test-size", "0.25", "--seed", "1", "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["n_train"], data["n_test"]) == (15, 5)
    assert len((tmp_path / "d.test.jsonl").read_text().splitlines()) == 5
    comp = write_jsonl(tmp_path / "c.jsonl", [{"prompt": f"{i}?", "completion": f" {i}"} for i in range(10)])
    code, out, _ = run("convert", str(comp), "--system", "Echo.")
    assert code == 0
    assert (tmp_path / "c.chat.jsonl").exists()
    code, out, _ = run("validate", str(tmp_path / "c.chat.jsonl"))
    assert code == 0, out
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("prompt,completion\na,b\n")
    code, out, _ = run("convert", str(csv_path), "-o", str(tmp_path / "p.jsonl"))
    assert code == 0
    assert json.loads((tmp_path / "p.jsonl").read_text())["messages"][0]["content"] == "a"
    dirty = tmp_path / "dirty.jsonl"
    dirty.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "d.jsonl").read_bytes().replace(b"\n", b"\r\n"))
    code, out, _ = run("fix", str(dirty))
    assert code == 0
    assert "20 example(s) written" in out
    assert "bom x1" in out
    code, out, _ = run(
        "fix",
        str(DATA / "too_few.jsonl"),
        "-o",
        str(tmp_path / "few.jsonl"),
        "--rejected",
        str(tmp_path / "few.rej.jsonl"),
    )
    assert code == 1
    assert "[too_few_examples]" in out
