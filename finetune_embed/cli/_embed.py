"""``finetune-embed embed``: embed the texts of a file into a ``.npy`` array or an index directory."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._exceptions import FinetuneEmbedError
from .._lines import MAX_LINE_BYTES, bounded_text_lines, csv_field_limit, open_input, read_lines
from ._common import azure_option, echo_json, echo_table, handle_errors, json_option
from ._embedder_options import embedder_model_options, tokenizer_from_option

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["embed", "read_texts"]


@dataclass
class Records:
    """Texts read from a file, with their ids and metadata."""

    texts: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)


def _get(record: Any, dotted: str) -> Any:
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(part)
        value = value[part]
    return value


def _check_meta_keys(keys: tuple[str, ...]) -> None:
    for key in keys:
        if any(not part for part in key.split(".")):
            raise click.UsageError(f"--meta {key!r}: a dotted path with an empty part")
        for other in keys:
            if other != key and other.startswith(key + "."):
                raise click.UsageError(f"--meta {key!r} already holds --meta {other!r}; keep one of them")
    if len(set(keys)) != len(keys):
        raise click.UsageError("the same --meta key is given twice")


def _nest(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Metadata from (dotted key, value) pairs: ``meta.score`` is stored as ``{"meta": {"score": ...}}``, which is
    what a dotted path in ``--where`` reads, so both sides agree (overlapping keys are refused beforehand)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def read_texts(
    path: Path,
    *,
    field_name: str | None = None,
    column: str | None = None,
    id_key: str | None = None,
    meta_keys: tuple[str, ...] = (),
    store_text: bool = False,
) -> Records:
    """Read texts from ``.txt`` (one per line), ``.jsonl`` (``field_name``, dotted paths allowed) or ``.csv``
    (``column``). Ids default to the record's position (0-based); errors name the file and line."""
    suffix = path.suffix.lower()
    out = Records()
    _check_meta_keys(meta_keys)

    def add(text: Any, where: str, position: int, ident: Any, meta: dict[str, Any]) -> None:
        if not isinstance(text, str):
            raise click.ClickException(f"{where}: the text is {type(text).__name__}, not a string")
        out.texts.append(text)
        out.ids.append(str(position) if ident is None else str(ident))
        if store_text:
            meta = {**meta, "text": text}
        out.metadata.append(meta)

    if suffix in (".jsonl", ".ndjson"):
        if not field_name:
            raise click.UsageError("a .jsonl input needs --field NAME (the key holding the text)")
        position = 0
        for lineno, raw in read_lines(path):  # refuses devices and FIFOs; bounded line length
            line = _decode(raw, path, lineno)
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except (ValueError, RecursionError) as exc:
                reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
                raise click.ClickException(f"{where}: not valid JSON ({reason})") from exc
            try:
                text = _get(record, field_name)
                ident = _get(record, id_key) if id_key else None
                meta = _nest([(k, _get(record, k)) for k in meta_keys])
            except KeyError as exc:
                raise click.ClickException(f"{where}: no field {exc.args[0]!r}") from exc
            add(text, where, position, ident, meta)
            position += 1
    elif suffix in (".csv", ".tsv"):
        if not column:
            raise click.UsageError("a .csv input needs --column NAME (the column holding the text)")
        with open_input(path) as raw_file, csv_field_limit(MAX_LINE_BYTES):  # big cells; restored afterwards
            fh = io.TextIOWrapper(raw_file, encoding="utf-8-sig", newline="")
            lines = bounded_text_lines(fh, path=str(path))
            reader = csv.DictReader(lines, delimiter="\t" if suffix == ".tsv" else ",")
            names = reader.fieldnames or []
            for wanted in (column, id_key, *meta_keys):
                if wanted and wanted not in names:
                    raise click.ClickException(
                        f"{path}: no column {wanted!r}; the columns are {', '.join(map(repr, names))}"
                    )
            for position, row in enumerate(reader):
                where = f"{path}:{reader.line_num}"
                meta = _nest([(k, row[k]) for k in meta_keys])
                add(row[column], where, position, row[id_key] if id_key else None, meta)
    else:
        if field_name or column:
            raise click.UsageError("--field is for .jsonl inputs and --column for .csv inputs")
        for lineno, raw in read_lines(path):
            add(_decode(raw, path, lineno).rstrip("\r\n"), f"{path}:{lineno}", lineno - 1, None, {})
    return out


@contextlib.contextmanager
def _stdin_as_file(path: Path, field_name: str | None, column: str | None) -> Iterator[Path]:
    """``-`` reads standard input: lines of text, JSONL with --field, CSV with --column (kept in a temporary file
    named ``stdin.*`` so that errors name it). Any other path is itself."""
    if str(path) != "-":
        yield path
        return
    import sys
    import tempfile

    suffix = ".jsonl" if field_name else ".csv" if column else ".txt"
    with tempfile.TemporaryDirectory(prefix="finetune-embed-stdin-") as folder:
        target = Path(folder) / f"stdin{suffix}"
        with open(target, "wb") as fh:
            while chunk := sys.stdin.buffer.read(1 << 20):
                fh.write(chunk)
        try:
            yield target
        except click.ClickException as exc:
            raise type(exc)(exc.message.replace(str(target), "<stdin>")) from None
        except FinetuneEmbedError as exc:
            exc.message = exc.message.replace(str(target), "<stdin>")
            exc.args = (exc.message, *exc.args[1:])
            raise


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(
            f"{path}:{lineno}: not UTF-8 (byte {exc.start + 1}); re-save the file as UTF-8"
        ) from exc


def _save_npy(vectors: npt.NDArray[np.float32], out: Path) -> None:
    import numpy as np

    from .._atomic import atomic_write

    with atomic_write(out, "wb") as fh:
        np.save(fh, vectors)


@click.command("embed")
@click.argument(
    "input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@click.option(
    "-m", "--model", default="text-embedding-3-small", show_default=True, help="Embedding model (Azure: deployment)."
)
@click.option("-o", "--output", "out", type=click.Path(path_type=Path), help="OUT.npy, or a directory for an index.")
@click.option("--field", "field_name", help="JSONL: the key holding the text (a.b for nested keys).")
@click.option("--column", help="CSV: the column holding the text.")
@click.option(
    "--id-field", "--id-column", "id_key", help="Key or column holding each record's id (default: its position)."
)
@click.option(
    "--meta",
    "meta_keys",
    multiple=True,
    help="Key or column to keep as index metadata (repeatable); a.b is stored nested, as --where reads it.",
)
@click.option("--store-text", is_flag=True, help="Keep each text in the index metadata under 'text'.")
@click.option("--dimensions", type=click.IntRange(min=1), help="Shorter vectors (text-embedding-3-* only).")
@click.option("--base-model", help="The catalog model behind --model (Azure deployments, compatible servers).")
@embedder_model_options()
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Cache file (default: ~/.cache/finetune_embed/embeddings.sqlite).",
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the cache.")
@click.option("--long-inputs", type=click.Choice(["error", "truncate", "chunk"]), default="error", show_default=True)
@click.option("--empty-inputs", type=click.Choice(["error", "zero", "nan", "skip"]), default="error", show_default=True)
@click.option("--max-concurrency", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--rpm", type=click.IntRange(min=1), help="Your requests-per-minute budget.")
@click.option("--tpm", type=click.IntRange(min=1), help="Your tokens-per-minute budget.")
@click.option(
    "--estimate", "dry_run", is_flag=True, help="Dry run: print tokens, requests, cost and time; send nothing."
)
@click.option("--batch-api", is_flag=True, help="Use the Batch API (half the price, up to 24 h).")
@click.option("--poll-interval", type=float, default=30.0, show_default=True, help="Batch API: seconds between polls.")
@click.option("--timeout", type=float, help="Batch API: stop waiting after this many seconds (rerun to resume).")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when on a terminal).")
@azure_option
@json_option
@handle_errors
def embed(
    input_path: Path,
    model: str,
    out: Path | None,
    field_name: str | None,
    column: str | None,
    id_key: str | None,
    meta_keys: tuple[str, ...],
    store_text: bool,
    dimensions: int | None,
    base_model: str | None,
    tokenizer: str | None,
    max_input_tokens: int | None,
    cache_path: Path | None,
    no_cache: bool,
    long_inputs: str,
    empty_inputs: str,
    max_concurrency: int,
    rpm: int | None,
    tpm: int | None,
    dry_run: bool,
    batch_api: bool,
    poll_interval: float,
    timeout: float | None,
    progress: bool | None,
    azure: bool,
    as_json: bool,
) -> None:
    """Embed the texts of INPUT: lines of a .txt, a --field of a .jsonl, or a --column of a .csv (INPUT `-`: standard
    input, as lines, or as JSONL with --field, or CSV with --column).

    Writes OUT.npy (float32, one row per text, in input order) or, for any other OUT, an EmbeddingIndex
    directory (ids, vectors and --meta metadata) ready for `finetune-embed index search`. Texts already in the
    cache are not sent again, so an interrupted run resumes where it stopped.

    \b
    Examples:
      finetune-embed embed reviews.csv --column Text -o reviews.npy
      finetune-embed embed docs.jsonl --field body --id-field id --store-text -o docs-index/
      finetune-embed embed reviews.csv --column Text --estimate
    """
    from ..embeddings import Embedder
    from ._common import client_from_options

    if cache_path is not None and no_cache:
        raise click.UsageError("--cache and --no-cache exclude each other")
    if not dry_run and out is None:
        raise click.UsageError("give -o OUT (.npy or an index directory), or --estimate for a dry run")
    with _stdin_as_file(input_path, field_name, column) as source:
        records = read_texts(
            source, field_name=field_name, column=column, id_key=id_key, meta_keys=meta_keys, store_text=store_text
        )
    client = client_from_options(azure)
    embedder = Embedder(
        client,
        model=model,
        dimensions=dimensions,
        base_model=base_model,
        cache=False if no_cache else (cache_path if cache_path is not None else True),
        long_inputs=long_inputs,  # type: ignore[arg-type]
        empty_inputs=empty_inputs,  # type: ignore[arg-type]
        max_concurrency=max_concurrency,
        rpm=rpm,
        tpm=tpm,
        progress=progress,
        tokenizer=tokenizer_from_option(tokenizer),
        max_input_tokens=max_input_tokens,
    )
    with client, embedder:
        if dry_run:
            est = embedder.estimate(records.texts)
            if as_json:
                echo_json(est.to_dict())
            else:
                rows = [{"item": k, "value": v} for k, v in est.to_dict().items()]
                echo_table(rows, ["item", "value"])
            return
        assert out is not None
        if batch_api:
            result = embedder.embed_batch_api(records.texts, poll_interval=poll_interval, timeout=timeout)
        else:
            result = embedder.embed_with_info(records.texts)
    keep = ~result.empty if empty_inputs == "skip" else None
    vectors = result.vectors if keep is None else result.vectors[keep]
    if out.suffix.lower() == ".npy":
        _save_npy(vectors, out)
        kind = "npy"
    else:
        from ..index import EmbeddingIndex

        ids = records.ids if keep is None else [i for i, k in zip(records.ids, keep.tolist(), strict=True) if k]
        meta = (
            records.metadata
            if keep is None
            else [m for m, k in zip(records.metadata, keep.tolist(), strict=True) if k]
        )
        index = EmbeddingIndex(vectors.shape[1], model=model)
        index.add(ids, vectors, metadata=meta)
        index.save(out)
        kind = "index"
    summary = {
        "output": str(out),
        "format": kind,
        "inputs": result.stats.inputs,
        "rows": int(vectors.shape[0]),
        "dimensions": int(vectors.shape[1]),
        "unique": result.stats.unique,
        "cached": result.stats.cached,
        "requests": result.stats.requests,
        "tokens": result.stats.tokens,
        "rate_limited": result.stats.rate_limited,
        "seconds": round(result.stats.seconds, 2),
        "skipped_empty": [records.ids[i] for i in result.empty.nonzero()[0].tolist()] if keep is not None else [],
    }
    if as_json:
        echo_json(summary)
    else:
        click.echo(
            f"Wrote {summary['rows']} x {summary['dimensions']} vectors to {out} ({kind}): "
            f"{summary['cached']} cached, {summary['tokens']:,} tokens in {summary['requests']} requests, "
            f"{summary['seconds']} s."
        )
