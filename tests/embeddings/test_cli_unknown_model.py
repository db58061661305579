"""The embedder's unknown-model warning tells the user to set ``tokenizer=``, ``max_input_tokens=`` and
``base_model=``; every CLI command that embeds has those as options (#15), so the warning a CLI user reads names
options of the command they ran, and the options reach the embedder."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from finetune_embed.cli import main
from finetune_embed.cli._words import cli_words
from finetune_embed.embeddings import Embedder
from finetune_embed.testing import FakeOpenAI

MODEL = "local-embed"  # a compatible server's model: not in the catalog
TEXT = "a b c d e f"  # 6 tokens in cl100k_base and for a whitespace tokenizer; 4 by the 3-bytes-a-token estimate

#: command path -> how its options for the embedding model are spelled
COMMANDS = {
    ("embed",): ("--tokenizer", "--max-input-tokens", "--base-model"),
    ("index", "search"): ("--tokenizer", "--max-input-tokens", "--base-model"),
    ("dataset", "analyze"): ("--embedding-tokenizer", "--embedding-max-input-tokens", "--embedding-base-model"),
    ("eval",): ("--embedding-tokenizer", "--embedding-max-input-tokens", "--embedding-base-model"),
}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.add_embedding_model(MODEL, dimensions=8)
    with fake.serve() as url:
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-test")
        yield fake


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    with click.Context(main) as ctx:
        for name in path:
            assert isinstance(command, click.Group)
            found = command.get_command(ctx, name)
            assert found is not None, path
            command = found
    return command


def _unknown_model_warning(caplog: pytest.LogCaptureFixture) -> str:
    with caplog.at_level(logging.WARNING, logger="finetune_embed"):
        Embedder(FakeOpenAI().client(), model=MODEL, cache=False)
    (message,) = [r.getMessage() for r in caplog.records if "not in finetune_embed's catalog" in r.getMessage()]
    return message


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_the_warning_names_options_the_command_has(path: tuple[str, ...], caplog: pytest.LogCaptureFixture) -> None:
    message = _unknown_model_warning(caplog)
    assert "tokenizer=" in message  # the Python wording, for library users
    assert "max_input_tokens=" in message
    assert "base_model=" in message
    with click.Context(_command(path)):
        words = cli_words(message)
    assert not re.search(r"\b[a-z][a-z_]*=", words), words  # no Python argument left
    for option in COMMANDS[path]:
        assert option in words, (option, words)


def test_embed_warns_in_cli_words(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("hello\nworld\n", encoding="utf-8")
    code, _, stderr = run("embed", str(src), "-m", MODEL, "-o", str(tmp_path / "v.npy"))
    assert code == 0, stderr
    (line,) = [ln for ln in stderr.splitlines() if "catalog" in ln]
    assert line.startswith("Warning: ")
    assert "--tokenizer" in line
    assert "(--max-input-tokens)" in line
    assert "=" not in line
    assert np.load(tmp_path / "v.npy").shape == (2, 8)


@pytest.mark.parametrize(
    ("tokenizer", "fits"), [("chars", True), ("cl100k_base", False), ("tokenizer.json", False)]
)
def test_embed_counts_with_the_tokenizer_given(
    served: FakeOpenAI, tmp_path: Path, tokenizer: str, fits: bool
) -> None:
    if tokenizer == "tokenizer.json":
        tokenizer = str(_whitespace_tokenizer(tmp_path))
    src = tmp_path / "texts.txt"
    src.write_text(TEXT + "\n", encoding="utf-8")
    out = tmp_path / "v.npy"
    code, _, stderr = run("embed", str(src), "-m", MODEL, "--tokenizer", tokenizer, "--max-input-tokens", "5",
                          "-o", str(out))
    if fits:
        assert code == 0, stderr
        assert out.exists()
    else:
        assert code == 1, stderr
        assert "Error: input 0 has 6 tokens, over the 5-token limit" in stderr
        assert "--long-inputs truncate" in stderr  # the fix, in CLI words too
        assert not out.exists()
        assert served.ledger.embedding_requests == 0


def test_a_tokenizer_that_is_neither_an_encoding_nor_a_file_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("x\n", encoding="utf-8")
    code, _, stderr = run("embed", str(src), "-m", MODEL, "--tokenizer", "cl100k", "-o", str(tmp_path / "v.npy"))
    assert code == 2
    assert "--tokenizer 'cl100k': not a tiktoken encoding" in stderr
    assert "Traceback" not in stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{}", encoding="utf-8")
    code, _, stderr = run("embed", str(src), "-m", MODEL, "--tokenizer", str(broken), "-o", str(tmp_path / "v.npy"))
    assert code == 1
    assert "not a Hugging Face tokenizer.json" in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_index_search_embeds_the_query_with_the_options(served: FakeOpenAI, tmp_path: Path) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("hello\nworld\n", encoding="utf-8")
    code, _, stderr = run("embed", str(src), "-m", MODEL, "-o", str(tmp_path / "idx"))
    assert code == 0, stderr
    code, stdout, stderr = run("index", "search", str(tmp_path / "idx"), "hello", "-k", "1", "--json",
                               "--tokenizer", "chars", "--max-input-tokens", "5")
    assert code == 0, stderr
    assert json.loads(stdout)[0][0]["id"] == "0"
    code, _, stderr = run("index", "search", str(tmp_path / "idx"), TEXT, "--tokenizer", "cl100k_base",
                          "--max-input-tokens", "5")
    assert code == 1
    assert "input 0 has 6 tokens, over the 5-token limit" in stderr
    code, _, stderr = run("index", "search", str(tmp_path / "idx"), "--id", "0", "--tokenizer", "chars")
    assert code == 2
    assert "are for a text QUERY" in stderr


def test_dataset_analyze_passes_the_options_to_its_embedder(served: FakeOpenAI, tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"question {i} {TEXT}"},
                          {"role": "assistant", "content": f"answer {i}"}]} for i in range(4)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, _, stderr = run("dataset", "analyze", str(data), "--embedding-model", MODEL,
                          "--embedding-tokenizer", "cl100k_base", "--embedding-max-input-tokens", "3")
    assert code == 1
    assert "over the 3-token limit" in stderr
    assert served.ledger.embedding_requests == 0


def _whitespace_tokenizer(folder: Path) -> Path:
    """A Hugging Face tokenizer.json that makes one token of each whitespace-separated word."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    return path
