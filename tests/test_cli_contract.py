"""The CLI contract, for every command in the click tree: bad input ends with exit code 2 (usage) or 1 (failure),
exactly one `Error: ...` line on stderr, and never a traceback.

The tree is walked, not listed, so a new command is covered the day it is added. Each command gets an unknown
option, every typed option a value of the wrong type, every argument a missing path or an id that does not exist,
and every path argument a file of garbage bytes; API calls go to FakeOpenAI over loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from finetune_embed.cli import main
from finetune_embed.testing import FakeOpenAI

Leaf = tuple[tuple[str, ...], click.Command]


def _leaves(group: click.Group, ctx: click.Context, prefix: tuple[str, ...]) -> Iterator[Leaf]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            yield from _leaves(command, ctx, (*prefix, name))
        else:
            yield (*prefix, name), command


with click.Context(main) as _ctx:
    COMMANDS = dict(_leaves(main, _ctx, ()))


def test_the_tree_is_walked() -> None:
    names = {" ".join(path) for path in COMMANDS}
    expected = {"dataset validate", "embed", "index search", "index copy", "files delete", "jobs create", "fake serve"}
    assert expected <= names
    assert len(names) >= 30


def _missing(param: click.Parameter, tmp: Path) -> str:
    return str(tmp / "does-not-exist.jsonl") if isinstance(param.type, click.Path) else "no-such-thing"


def _required_args(command: click.Command, tmp: Path, value: str | None = None) -> list[str]:
    return [
        value if value is not None and isinstance(p.type, click.Path) else _missing(p, tmp)
        for p in command.params
        if isinstance(p, click.Argument) and p.required
    ]


def _cases(path: tuple[str, ...], command: click.Command, tmp: Path) -> Iterator[tuple[str, list[str]]]:
    base = list(path)
    extra = ["--yes"] if any(p.name == "yes" for p in command.params) else []
    args = _required_args(command, tmp)
    yield "unknown option", [*base, *args, "--no-such-option"]
    if args:
        yield "missing path / unknown id", [*base, *args, *extra]
    garbage = tmp / "garbage.jsonl"
    if any(isinstance(p, click.Argument) and isinstance(p.type, click.Path) for p in command.params):
        yield "garbage file", [*base, *_required_args(command, tmp, str(garbage)), *extra]
    for p in command.params:
        if not isinstance(p, click.Option) or p.is_flag or not p.opts:
            continue
        kind = p.type
        if isinstance(kind, click.IntRange | click.FloatRange) or kind in (click.INT, click.FLOAT):
            yield f"{p.opts[0]} not a number", [*base, *args, p.opts[0], "not-a-number"]
        elif isinstance(kind, click.Choice):
            yield f"{p.opts[0]} not a choice", [*base, *args, p.opts[0], "not-a-choice"]
        elif isinstance(kind, click.DateTime):
            yield f"{p.opts[0]} not a date", [*base, *args, p.opts[0], "31/02/2026"]


CASES = [
    pytest.param(path, case, id=f"{' '.join(path)}: {label}")
    for path, command in sorted(COMMANDS.items())
    for label, case in _cases(path, command, Path("/TMP"))
]


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    fake = FakeOpenAI()
    with fake.serve(scale=5000.0) as url:
        yield url


@pytest.mark.parametrize(("path", "args"), CASES)
def test_bad_input_is_one_line_and_an_exit_code(
    path: tuple[str, ...], args: list[str], served: str, tmp_path: Path
) -> None:
    (tmp_path / "garbage.jsonl").write_bytes(b"\x00\xff\xfe{not json at all\n\x80\x81\n")
    concrete = [a.replace("/TMP", str(tmp_path)) for a in args]
    env = {"OPENAI_BASE_URL": served, "OPENAI_API_KEY": "sk-contract", "FINETUNE_EMBED_PROVIDER": "openai"}
    result = CliRunner().invoke(main, concrete, env=env, input="")
    assert result.exit_code in (1, 2), (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert len(errors[0]) > len("Error: ") + 10
