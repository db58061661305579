"""The CLI's rough edges (#15): each one as a user meets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from finetune_embed.testing import FakeOpenAI

from ._run import invoke

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "examples" / "support_chat.jsonl"
PREFERENCE = ROOT / "examples" / "support_preference.jsonl"


@pytest.fixture(name="served")
def _served(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    with fake.serve(scale=5000.0) as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-fixes")
        monkeypatch.setenv("FINETUNE_EMBED_PROVIDER", "openai")
        yield fake


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# --- dataset split --test-size -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "says"),
    [
        ("0", "no test set"),
        ("-1", "no test set"),
        ("400", "would leave none for training"),
        ("12", "would leave none for training"),  # the file's own size: an empty training file before
        ("1.0", "every example in the test set"),
        ("0.99", "training set empty"),
        ("abc", "not a number"),
        ("nan", "not a number"),
    ],
)
def test_split_refuses_sizes_that_cannot_be_meant(size: str, says: str, tmp_path: Path) -> None:
    result = invoke(["dataset", "split", str(CHAT), f"--test-size={size}", "--out-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert says in _one_error_line(result.stderr)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(("size", "n_test"), [("1", 1), ("11", 11), ("0.5", 6), ("1e-1", 1)])
def test_split_counts_and_fractions(size: str, n_test: int, tmp_path: Path) -> None:
    result = invoke(["dataset", "split", str(CHAT), f"--test-size={size}", "--out-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["n_train"], out["n_test"]) == (12 - n_test, n_test)


# --- embed --meta and --where agree ---------------------------------------------------------------------------


def test_dotted_meta_is_stored_nested_so_where_finds_it(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    rows = [{"body": f"text {i}", "meta": {"score": i, "lang": "en"}} for i in range(5)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "idx"
    made = invoke(["embed", str(src), "--field", "body", "--meta", "meta.score", "-o", str(out), "--no-cache"])
    assert made.exit_code == 0, made.output
    found = invoke(["index", "search", str(out), "--id", "0", "--where", '{"meta.score": {"$gte": 3}}', "--json"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.stdout)[0]
    assert sorted(h["id"] for h in hits) == ["3", "4"]
    assert all(h["metadata"] == {"meta": {"score": int(h["id"])}} for h in hits)


def test_overlapping_meta_keys_are_refused(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_text('{"body": "x", "meta": {"score": 1}}\n', encoding="utf-8")
    result = invoke(["embed", str(src), "--field", "body", "--meta", "meta", "--meta", "meta.score", "--estimate"])
    assert result.exit_code == 2
    assert "keep one of them" in _one_error_line(result.stderr)


# --- index search "text" --------------------------------------------------------------------------------------


def test_index_search_embeds_a_text_query_with_the_recorded_model(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("The coffee was excellent\nThe dog food smelled bad\nGreat coffee\n", encoding="utf-8")
    out = tmp_path / "idx"
    made = invoke(["embed", str(src), "-m", "text-embedding-3-large", "--dimensions", "256", "-o", str(out)])
    assert made.exit_code == 0, made.output
    before = served.ledger.embedding_requests
    result = invoke(["index", "search", str(out), "The coffee was excellent", "-k", "1", "--json", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0][0]["id"] == "0"
    assert served.ledger.embedding_requests == before + 1
    last = served.ledger.requests[-1]
    assert last.model == "text-embedding-3-large"
    wrong = invoke(["index", "search", str(out), "coffee", "--model", "text-embedding-3-small"])
    assert wrong.exit_code == 2
    assert "cannot be compared" in _one_error_line(wrong.stderr)
    both = invoke(["index", "search", str(out), "coffee", "--id", "0"])
    assert both.exit_code == 2


# --- stdin and pipes ------------------------------------------------------------------------------------------


def test_embed_reads_stdin(served: FakeOpenAI, tmp_path: Path) -> None:
    out = tmp_path / "v.npy"
    result = invoke(["embed", "-", "-o", str(out), "--no-cache"], input="hello\nworld\n")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(out), served.embeddings(["hello", "world"]))
    bad = invoke(["embed", "-", "--field", "t", "--estimate"], input='{"t": 1}\n')
    assert bad.exit_code == 1
    assert _one_error_line(bad.stderr) == "Error: <stdin>:1: the text is int, not a string"


def test_a_closed_pipe_ends_quietly_with_exit_0() -> None:
    """`finetune-embed models list | head -0`: the reader is gone before the first write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "finetune_embed.cli", "models", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


# --- files ----------------------------------------------------------------------------------------------------


def test_files_delete_reports_each_id_and_fails_if_one_failed(served: FakeOpenAI, tmp_path: Path) -> None:
    up = invoke(["files", "upload", str(CHAT), "--json"])
    assert up.exit_code == 0, up.output
    file_id = json.loads(up.stdout)["id"]
    result = invoke(["files", "delete", file_id, "file-doesnotexist"])
    assert result.exit_code == 1
    assert f"{file_id} deleted" in result.stdout
    assert "file-doesnotexist NOT deleted" in result.stdout
    assert "1 of 2 file(s) not deleted: file-doesnotexist" in _one_error_line(result.stderr)


def test_files_download_uses_the_original_name(
    served: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = invoke(["files", "upload", str(CHAT), "--json"])
    uploaded = json.loads(up.stdout)
    assert uploaded["filename"] != "support_chat.jsonl"  # the server holds our content-tagged name
    monkeypatch.chdir(tmp_path)
    result = invoke(["files", "download", uploaded["id"]])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "support_chat.jsonl").read_bytes() == CHAT.read_bytes()


# --- messages in the CLI's words ------------------------------------------------------------------------------


def test_messages_name_options_not_python_arguments(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("a\n\nb\n", encoding="utf-8")
    result = invoke(["embed", str(src), "-o", str(tmp_path / "v.npy")])
    assert result.exit_code == 1
    line = _one_error_line(result.stderr)
    assert "--empty-inputs skip" in line
    assert "empty_inputs=" not in line
    csv = tmp_path / "v.csv"
    csv.write_text("text,vec\na,[1]\n", encoding="utf-8")
    built = invoke(["index", "build", str(csv), "-o", str(tmp_path / "i")])
    assert "--embedding-column" in _one_error_line(built.stderr)


def test_azure_hints_speak_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = invoke(["files", "list", "--azure"])
    assert result.exit_code == 1
    line = _one_error_line(result.stderr)
    assert "AZURE_OPENAI_ENDPOINT" in line
    assert "Client.azure" not in line
    assert "endpoint=" not in line


def test_models_info_reads_as_text() -> None:
    result = invoke(["models", "info", "gpt-4o-mini"])
    assert result.exit_code == 0, result.output
    assert "methods: supervised" in result.stdout
    assert "frozenset" not in result.stdout
    assert "aliases: gpt-4o-mini" in result.stdout
    assert "shared/reference" not in result.stdout


def test_library_warnings_are_one_line_in_cli_words(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("a\n", encoding="utf-8")
    served.add_embedding_model("my-local-embedder", dimensions=8)
    result = invoke(["embed", str(src), "-m", "my-local-embedder", "--estimate"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stderr.splitlines() if "catalog" in line]
    assert line.startswith("Warning: Embedding model 'my-local-embedder' is not in finetune_embed's catalog")
    assert "--base-model" in line
    assert "base_model=" not in line
    assert ".py:" not in result.stderr


def test_python_warnings_are_one_line_with_no_source_line() -> None:
    """A Python warning raised under any command is shown as `Warning: ...`, in the command's words."""
    import warnings

    import click
    from click.testing import CliRunner

    from finetune_embed.cli import _LazyGroup

    group = _LazyGroup(params=[click.Option(["-v", "--verbose"], count=True)])

    @group.command("warn")
    @click.option("--base-model")
    def warn_command(base_model: str | None) -> None:
        warnings.warn("Model 'x' is unknown.\nPass base_model= if it is an OpenAI model.", UserWarning, stacklevel=1)

    result = CliRunner().invoke(group, ["warn"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "Warning: Model 'x' is unknown. Pass --base-model if it is an OpenAI model.\n"


# --- typo'd base models -----------------------------------------------------------------------------------------


def test_a_typod_model_is_an_error_with_did_you_mean() -> None:
    result = invoke(["dataset", "validate", str(CHAT), "--model", "gpt-4o-mnii", "--on", "2026-11-25"])
    assert result.exit_code == 2
    line = _one_error_line(result.stderr)
    assert "did you mean 'gpt-4o-mini'" in line
    assert "--allow-unknown-model" in line
    allowed = invoke(
        ["dataset", "validate", str(CHAT), "--model", "gpt-4o-mnii", "--on", "2026-11-25", "--allow-unknown-model"]
    )
    assert allowed.exit_code == 0, allowed.output
    compatible = invoke(
        ["dataset", "validate", str(CHAT), "--model", "my-llama", "--provider", "compatible", "--on", "2026-11-25"]
    )
    assert compatible.exit_code == 0, compatible.output


def test_jobs_create_refuses_a_typod_model_before_uploading(served: FakeOpenAI) -> None:
    result = invoke(["jobs", "create", "gpt-4.1-mnii", str(CHAT), "--dry-run"])
    assert result.exit_code == 2
    assert "did you mean 'gpt-4.1-mini'" in _one_error_line(result.stderr)
    assert served.ledger.requests == []


# --- jobs create infers the method ------------------------------------------------------------------------------


def test_jobs_create_infers_dpo_from_preference_data(served: FakeOpenAI) -> None:
    result = invoke(["jobs", "create", "gpt-4.1-mini", str(PREFERENCE), "--json"])
    assert result.exit_code == 0, result.output
    assert "Method: dpo (" in result.stderr
    job = json.loads(result.stdout)
    assert job["method"]["type"] == "dpo"
    chat = invoke(["jobs", "create", "gpt-4.1-mini", str(CHAT), "--json"])
    assert "Method: supervised (" in chat.stderr
    assert json.loads(chat.stdout)["method"]["type"] == "supervised"
