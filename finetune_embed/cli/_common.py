"""Helpers shared by the CLI commands: error handling, JSON and table output, building a client."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

if TYPE_CHECKING:
    from .._client import Client

__all__ = [
    "EXIT_FAILURE",
    "azure_option",
    "client_from_options",
    "echo_json",
    "echo_table",
    "handle_errors",
    "json_option",
    "one_line",
]

F = TypeVar("F", bound=Callable[..., Any])
EXIT_FAILURE = 1

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
azure_option = click.option(
    "--azure", is_flag=True, help="Use Azure OpenAI (AZURE_OPENAI_ENDPOINT, OPENAI_API_VERSION, AZURE_OPENAI_API_KEY)."
)


def handle_errors(fn: F) -> F:
    """Turn our exceptions into one line on stderr and exit code 1 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .._exceptions import FinetuneEmbedError
        from ._words import cli_words

        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:
            raise  # the reader went away (`| head`): the group ends quietly
        except FinetuneEmbedError as exc:
            click.echo(f"Error: {one_line(cli_words(str(exc)))}", err=True)
            sys.exit(EXIT_FAILURE)
        except (OSError, UnicodeDecodeError) as exc:
            from .._redact import redact

            click.echo(f"Error: {one_line(redact(str(exc)))}", err=True)
            sys.exit(EXIT_FAILURE)

    return cast(F, wrapper)


def one_line(message: str) -> str:
    """``message`` on one line (an error is one line on stderr)."""
    return " ".join(message.split())


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (pydantic models, numpy arrays and dates included)."""
    click.echo(json.dumps(data, indent=2, default=_default, ensure_ascii=False))


def echo_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Print rows as a plain aligned table."""
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def client_from_options(azure: bool) -> Client:
    """A client from the environment (Azure when ``azure``)."""
    from .._client import Client

    return Client.azure() if azure else Client()
