"""``finetune-embed tokenizer``: prefetch tiktoken's BPE files for offline machines."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import echo_json, handle_errors, json_option


@click.group()
def tokenizer() -> None:
    """tiktoken's encodings: token counts need their BPE files, downloaded once (then cached)."""


@tokenizer.command("download")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to fill (default: TIKTOKEN_CACHE_DIR, else tiktoken's own cache folder).",
)
@click.option(
    "-e",
    "--encoding",
    "encodings",
    multiple=True,
    help="Encoding to fetch, repeatable (default: o200k_base and cl100k_base, all this library uses).",
)
@click.option(
    "--source",
    default=None,
    metavar="URL",
    help="Base URL of the <name>.tiktoken files (default: OpenAI's public blob store); for a mirror.",
)
@json_option
@handle_errors
def download(folder: Path | None, encodings: tuple[str, ...], source: str | None, as_json: bool) -> None:
    """Download the BPE files into a folder, checked against tiktoken's pinned hashes.

    For an air-gapped machine: run this where there is network, copy the folder over, and set
    TIKTOKEN_CACHE_DIR to it there.
    """
    from .._bpe_files import DEFAULT_ENCODINGS, OPENAI_BLOB, default_cache_dir, download_encodings

    target = folder if folder is not None else default_cache_dir()
    files = download_encodings(target, encodings or DEFAULT_ENCODINGS, source=source or OPENAI_BLOB)
    if as_json:
        echo_json(
            {
                "dir": str(target),
                "files": [
                    {"encoding": f.encoding, "path": str(f.path), "bytes": f.size, "status": f.status} for f in files
                ],
            }
        )
        return
    for f in files:
        click.echo(f"{f.encoding}: {f.status} ({f.size:,} bytes) -> {f.path}")
    click.echo(f"To use this folder: export TIKTOKEN_CACHE_DIR={_quote(str(target.resolve()))}")


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
