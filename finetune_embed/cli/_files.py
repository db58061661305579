"""``finetune-embed files``: upload (validated, de-duplicated), list, get, download and delete files."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ._common import (
    EXIT_FAILURE,
    azure_option,
    client_from_options,
    echo_json,
    echo_table,
    handle_errors,
    json_option,
    one_line,
)
from ._words import cli_words

FILE_COLUMNS = ["id", "filename", "purpose", "bytes", "status", "created"]
PURPOSES = ["fine-tune", "batch", "assistants", "vision", "user_data", "evals"]


def when(timestamp: Any) -> str | None:
    """A Unix timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    if not isinstance(timestamp, int | float):
        return None
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def file_row(file: Any) -> dict[str, Any]:
    """A table row for a file object."""
    return {
        "id": file.id,
        "filename": getattr(file, "filename", None),
        "purpose": getattr(file, "purpose", None),
        "bytes": getattr(file, "bytes", None),
        "status": getattr(file, "status", None),
        "created": when(getattr(file, "created_at", None)),
    }


def _echo_file(file: Any, as_json: bool) -> None:
    if as_json:
        echo_json(file)
    else:
        echo_table([file_row(file)], FILE_COLUMNS)


@contextlib.contextmanager
def _manager(azure: bool) -> Iterator[Any]:
    """A FileManager on a client from the environment, closed afterwards."""
    from ..finetuning import FileManager

    with client_from_options(azure) as client:
        yield FileManager(client)


@click.group()
def files() -> None:
    """Files on the API: upload validated training data, list, download and delete."""


@files.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--purpose", type=click.Choice(PURPOSES), default="fine-tune", show_default=True)
@click.option("--model", default=None, help="Validate the data for this base model (token limit, methods).")
@click.option("--method", type=click.Choice(["supervised", "dpo", "reinforcement"]), default=None,
              help="Validate the data for this fine-tuning method.")
@click.option("--no-validate", is_flag=True, help="Upload even if validation finds errors.")
@click.option("--no-dedupe", is_flag=True, help="Upload even if identical content is already on the server.")
@click.option("--no-wait", is_flag=True, help="Return before the server has processed the file.")
@json_option
@azure_option
@handle_errors
def upload(
    path: Path,
    purpose: str,
    model: str | None,
    method: str | None,
    no_validate: bool,
    no_dedupe: bool,
    no_wait: bool,
    as_json: bool,
    azure: bool,
) -> None:
    """Upload PATH (validated first for fine-tuning; an identical upload is reused)."""
    with _manager(azure) as manager:
        file = manager.upload(
            path,
            purpose=purpose,
            model=model,
            method=method,
            validate=not no_validate,
            dedupe=not no_dedupe,
            wait=not no_wait,
        )
    _echo_file(file, as_json)


@files.command("list")
@click.option("--purpose", type=click.Choice(PURPOSES), default=None, help="Only files of this purpose.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many files (newest first).")
@json_option
@azure_option
@handle_errors
def list_files(purpose: str | None, limit: int | None, as_json: bool, azure: bool) -> None:
    """List files, newest first (every page)."""
    with _manager(azure) as manager:
        items = list(manager.list(purpose=purpose, limit=limit))
    if as_json:
        echo_json(items)
    else:
        echo_table([file_row(f) for f in items], FILE_COLUMNS)


@files.command("get")
@click.argument("file_id")
@json_option
@azure_option
@handle_errors
def get_file(file_id: str, as_json: bool, azure: bool) -> None:
    """Show one file."""
    with _manager(azure) as manager:
        file = manager.retrieve(file_id)
    _echo_file(file, as_json)


@files.command("download")
@click.argument("file_id")
@click.argument("output", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@json_option
@azure_option
@handle_errors
def download(file_id: str, output: Path | None, overwrite: bool, as_json: bool, azure: bool) -> None:
    """Download FILE_ID's content to OUTPUT (default: the name it was uploaded from, in the current folder)."""
    from ..finetuning._uploads import untagged_filename

    with _manager(azure) as manager:
        if output is None:
            name = untagged_filename(str(manager.retrieve(file_id).filename or ""))
            if name in ("", ".", ".."):
                name = f"{file_id}.jsonl"
            output = Path(name)
        path = manager.download(file_id, output, overwrite=overwrite)
    size = path.stat().st_size
    if as_json:
        echo_json({"id": file_id, "path": str(path), "bytes": size})
    else:
        click.echo(f"{file_id} -> {path} ({size:,} bytes)")


@files.command("delete")
@click.argument("file_ids", nargs=-1, required=True)
@json_option
@azure_option
@handle_errors
def delete(file_ids: tuple[str, ...], as_json: bool, azure: bool) -> None:
    """Delete one or more files; says what happened to each, and exits 1 if any was not deleted."""
    from .._exceptions import APIError

    outcomes: list[dict[str, Any]] = []
    with _manager(azure) as manager:
        for file_id in file_ids:
            try:
                result = manager.delete(file_id)
            except APIError as exc:  # one bad id does not stop the others
                outcomes.append({"id": file_id, "deleted": False, "error": one_line(cli_words(str(exc)))})
            else:
                outcomes.append({"id": file_id, "deleted": bool(result.deleted), "error": None})
    if as_json:
        echo_json(outcomes)
    else:
        for outcome in outcomes:
            state = "deleted" if outcome["deleted"] else f"NOT deleted: {outcome['error'] or 'the server said no'}"
            click.echo(f"{outcome['id']} {state}")
    failed = [o["id"] for o in outcomes if not o["deleted"]]
    if failed:
        click.echo(f"Error: {len(failed)} of {len(outcomes)} file(s) not deleted: {', '.join(failed)}", err=True)
        sys.exit(EXIT_FAILURE)
