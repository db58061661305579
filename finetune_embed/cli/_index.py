"""``finetune-embed index build|info|search|copy``: exact vector search over saved embeddings, and moving them
between stores."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
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
from ._embedder_options import embedder_model_options, tokenizer_from_option


@click.group()
def index() -> None:
    """Build, inspect and search an exact embedding index (a directory written by EmbeddingIndex.save), and copy
    embeddings between stores (index directories, PostgreSQL, Chroma, Redis)."""


def _read_ids(path: Path) -> list[str]:
    from .._exceptions import ConfigError
    from .._lines import open_input

    with open_input(path) as f:  # a regular file only: /dev/zero would never end
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 (byte {exc.start + 1}); re-save it as UTF-8.") from None
    if path.suffix == ".json":
        try:
            ids = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"{path} is not valid JSON ({type(exc).__name__}); write a JSON list of ids.") from None
        if not isinstance(ids, list):
            raise ConfigError(f"{path} must hold a JSON list of ids.")
        return [str(i) for i in ids]
    return [line for line in text.splitlines() if line.strip()]


def _read_metadata(path: Path) -> list[dict[str, Any]]:
    from .._exceptions import DatasetFormatError
    from .._lines import read_lines

    out = []
    for n, raw in read_lines(path):  # a regular file only; bounded line length
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetFormatError(f"not UTF-8 (byte {exc.start + 1}).", path=str(path), line=n) from None
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise DatasetFormatError(f"not valid JSON ({reason}).", path=str(path), line=n) from None
        if not isinstance(value, dict):
            raise DatasetFormatError("each line must be a JSON object.", path=str(path), line=n)
        out.append(value)
    return out


@index.command("build")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Directory to write.")
@click.option("--ids", "ids_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="For a .npy INPUT: ids, one per line (or a .json list). Default: row numbers.")
@click.option("--metadata", "metadata_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="For a .npy INPUT: a JSONL file, one object per row.")
@click.option("--embedding-column", default="embedding", show_default=True, help="CSV column of vectors.")
@click.option("--id-column", default=None, help="CSV column of ids (default: row numbers).")
@click.option("--metadata-column", "metadata_columns", multiple=True,
              help="CSV column to keep as metadata (repeat; default: all other columns).")
@click.option("--metric", type=click.Choice(["cosine", "dot"]), default="cosine", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float16", "int8"]), default="float32", show_default=True,
              help="In-memory form: float16 halves RAM; int8 quarters it (exact, re-ranked from float32 on disk).")
@click.option("--model", default=None, help="The embedding model, recorded in the manifest.")
@click.option("--force", is_flag=True, help="Replace an existing index at --output.")
@json_option
@handle_errors
def build(
    input_path: Path,
    output: Path,
    ids_path: Path | None,
    metadata_path: Path | None,
    embedding_column: str,
    id_column: str | None,
    metadata_columns: tuple[str, ...],
    metric: str,
    dtype: str,
    model: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Build an index from INPUT (a .npy matrix, or a CSV with an embedding column) and save it."""
    import numpy as np

    from ..index import EmbeddingIndex

    occupied = any(output.iterdir()) if output.is_dir() else output.exists()
    if occupied and not force:
        raise click.UsageError(f"{output} already exists; pass --force to replace it.")
    if input_path.suffix.lower() == ".npy":
        try:
            vectors = np.load(input_path, allow_pickle=False)
        except ValueError as exc:
            raise click.UsageError(f"{input_path} is not a numeric .npy array ({exc}).") from None
        if vectors.ndim != 2:
            raise click.UsageError(f"{input_path} holds shape {vectors.shape}; expected (n, dim).")
        ids = _read_ids(ids_path) if ids_path else [str(i) for i in range(vectors.shape[0])]
        if len(ids) != vectors.shape[0]:
            raise click.UsageError(f"{len(ids)} ids for {vectors.shape[0]} vectors.")
        metadata = _read_metadata(metadata_path) if metadata_path else None
        idx = EmbeddingIndex(vectors.shape[1], metric=metric, dtype=dtype, model=model)  # type: ignore[arg-type]
        idx.add(ids, vectors, metadata)
    else:
        idx = EmbeddingIndex.from_csv(
            input_path,
            embedding_column=embedding_column,
            id_column=id_column,
            metadata_columns=list(metadata_columns) or None,
            metric=metric,  # type: ignore[arg-type]
            dtype=dtype,
            model=model,
        )
    idx.save(output)
    summary = {"path": str(output), "count": len(idx), "dim": idx.dim, "metric": idx.metric, "dtype": idx.dtype,
               "model": idx.model}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"Wrote {len(idx)} vectors of {idx.dim} dimensions ({idx.metric}, {idx.dtype}) to {output}")


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


@index.command("info")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--verify", is_flag=True, help="Also check every file's sha256 (reads all files).")
@json_option
@handle_errors
def info(path: Path, verify: bool, as_json: bool) -> None:
    """Show an index's manifest, size on disk and the memory its search needs."""
    from ..index._storage import check_index_files

    where, checked = check_index_files(path, verify=verify)
    manifest = checked.to_dict()
    count, dim = manifest["count"], manifest["dim"] or 0
    per = {"float32": 4, "float16": 2, "int8": 1}[manifest["dtype"]]
    ram = count * dim * per + (count * 4 if manifest["dtype"] == "int8" else 0)
    disk = sum(int(f["bytes"]) for f in manifest["files"].values())
    data = {**manifest, "path": str(where), "ram_bytes": ram, "disk_bytes": disk, "verified": verify}
    if as_json:
        echo_json(data)
        return
    rows = [
        {"field": "path", "value": str(where)},
        {"field": "count", "value": count},
        {"field": "dim", "value": manifest["dim"]},
        {"field": "metric", "value": manifest["metric"]},
        {"field": "dtype", "value": manifest["dtype"]},
        {"field": "model", "value": manifest.get("model")},
        {"field": "created", "value": manifest.get("created")},
        {"field": "format_version", "value": manifest["format_version"]},
        {"field": "ram (vectors scanned)", "value": _human(ram)},
        {"field": "disk", "value": _human(disk)},
        {"field": "sha256 verified", "value": "yes" if verify else "no (pass --verify)"},
    ]
    echo_table(rows, ["field", "value"])


def _read_queries(path: Path) -> Any:
    import numpy as np

    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise click.UsageError(f"{path} is not a numeric .npy array ({exc}).") from None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{path} is neither .npy nor a JSON list of numbers ({exc.msg}).") from None
    except RecursionError:
        raise click.UsageError(f"{path} nests lists too deeply; give a list of numbers or a list of lists.") from None


@index.command("search")
@click.argument("path", type=click.Path(path_type=Path))
@click.argument("query", required=False)
@click.option("--model", default=None, help="QUERY: embedding model (default: the one the index records).")
@click.option("--base-model", default=None, help="QUERY: the catalog model behind --model (Azure, compatible).")
@embedder_model_options()
@click.option("--no-cache", is_flag=True, help="QUERY: do not read or write the embedding cache.")
@azure_option
@click.option("--vector-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Query vector(s): a .npy (dim,) or (n, dim) array, or a JSON list (of lists).")
@click.option("--id", "item_id", default=None, help="Search with the stored vector of this id (itself left out).")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Hits per query.")
@click.option("--where", "where", default=None, help='Metadata filter as JSON, e.g. \'{"Score": {"$gte": 4}}\'.')
@click.option("--exclude", multiple=True, help="An id never to return (repeat).")
@click.option("--no-verify", is_flag=True, help="Skip the sha256 check when loading (faster for huge indexes).")
@json_option
@handle_errors
def search(
    path: Path,
    query: str | None,
    model: str | None,
    base_model: str | None,
    tokenizer: str | None,
    max_input_tokens: int | None,
    no_cache: bool,
    azure: bool,
    vector_file: Path | None,
    item_id: str | None,
    k: int,
    where: str | None,
    exclude: tuple[str, ...],
    no_verify: bool,
    as_json: bool,
) -> None:
    """Exact top-k search in the index at PATH for the text QUERY, by --vector-file or by --id.

    A text QUERY is embedded with the model the index records (as `finetune-embed embed` saved it), or --model.

    \b
    Examples:
      finetune-embed index search reviews-index/ "fast delivery" -k 5
      finetune-embed index search reviews-index/ --id 42 --where '{"meta.score": {"$gte": 4}}'
    """
    from ..index import EmbeddingIndex, Matches

    if sum(x is not None for x in (query, vector_file, item_id)) != 1:
        raise click.UsageError("give exactly one of QUERY (text), --vector-file or --id.")
    if query is None and (model or base_model or tokenizer or max_input_tokens or no_cache or azure):
        raise click.UsageError(
            "--model, --base-model, --tokenizer, --max-input-tokens, --no-cache and --azure are for a text QUERY."
        )
    where_obj = None
    if where is not None:
        try:
            where_obj = json.loads(where)
        except json.JSONDecodeError as exc:
            raise click.UsageError(f"--where is not valid JSON ({exc.msg}).") from None
        except RecursionError:
            raise click.UsageError("--where nests too deeply.") from None
        if not isinstance(where_obj, dict):
            raise click.UsageError("--where must be a JSON object.")
    idx = EmbeddingIndex.load(path, verify=not no_verify)
    if query is not None:
        embedder_kwargs = {"base_model": base_model, "tokenizer": tokenizer, "max_input_tokens": max_input_tokens}
        results = [_search_text(idx, query, k, where_obj, set(exclude), model, embedder_kwargs, no_cache, azure)]
    elif item_id is not None:
        results = [idx.search_by_id(item_id, k, where=where_obj, exclude=set(exclude))]
    else:
        assert vector_file is not None
        found = idx.search(_read_queries(vector_file), k, where=where_obj, exclude=set(exclude))
        results = [found] if isinstance(found, Matches) else list(found)
    if as_json:
        echo_json([m.to_list() for m in results])
        return
    rows = []
    for q, matches in enumerate(results):
        for rank, m in enumerate(matches, 1):
            meta = json.dumps(m.metadata, ensure_ascii=False)
            rows.append({"query": q, "rank": rank, "id": m.id, "score": f"{m.score:.6f}",
                         "metadata": meta if len(meta) <= 80 else meta[:77] + "..."})
    if not rows:
        click.echo("No matches.")
        return
    echo_table(rows, ["query", "rank", "id", "score", "metadata"])


def _search_text(
    idx: Any,
    query: str,
    k: int,
    where: Any,
    exclude: set[str],
    model: str | None,
    embedder_kwargs: dict[str, Any],
    no_cache: bool,
    azure: bool,
) -> Any:
    """Embed QUERY with the index's model (or --model) and search (``embedder_kwargs``: base_model, tokenizer,
    max_input_tokens as the options gave them)."""
    from ..catalog import default_catalog
    from ..embeddings import Embedder

    chosen = model or idx.model
    if not chosen:
        raise click.UsageError("the index records no embedding model; give the one it was built with: --model NAME.")
    if idx.model and model and model != idx.model:
        raise click.UsageError(
            f"the index holds {idx.model!r} embeddings; a {model!r} query vector cannot be compared with them."
        )
    base_model = embedder_kwargs["base_model"]
    info = default_catalog().find_embedding_model(base_model or chosen)
    dimensions = idx.dim if info is not None and info.accepts_dimensions and info.dimensions != idx.dim else None
    client = client_from_options(azure)
    embedder = Embedder(
        client,
        model=chosen,
        base_model=base_model,
        dimensions=dimensions,
        cache=not no_cache,
        progress=False,
        tokenizer=tokenizer_from_option(embedder_kwargs["tokenizer"]),
        max_input_tokens=embedder_kwargs["max_input_tokens"],
    )
    with client, embedder:
        return idx.search_text(query, embedder, k, where=where, exclude=exclude)


def _store_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """SRC / DST must start with a known scheme (a usage error otherwise, with the name's secrets masked)."""
    from .._exceptions import ConfigError
    from ..stores._names import check_name

    try:
        check_name(value)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, ctx=ctx, param=param) from None
    return value


@contextlib.contextmanager
def _store_errors(*names: str) -> Iterator[None]:
    """Our errors and the engines' (raised inside a client library: psycopg, redis, chromadb, ...) as one line on
    stderr and exit 1, with every secret of ``names`` masked."""
    from .._exceptions import FinetuneEmbedError
    from .._redact import redact
    from ..stores._names import engine_packages, scrub
    from ._words import cli_words

    packages = {p for name in names for p in engine_packages(name)}
    try:
        yield
    except (FinetuneEmbedError, OSError) as exc:
        text = cli_words(str(exc)) if isinstance(exc, FinetuneEmbedError) else redact(str(exc))
        click.echo(f"Error: {one_line(scrub(text, *names))}", err=True)
        sys.exit(EXIT_FAILURE)
    except Exception as exc:
        engines = [name for name in _raised_in(exc) if name in packages]
        if not engines:
            raise
        detail = one_line(scrub(redact(str(exc)), *names)) or "no details"
        click.echo(f"Error: the store refused: {detail} ({engines[-1]}: {type(exc).__name__})", err=True)
        sys.exit(EXIT_FAILURE)


def _raised_in(exc: BaseException) -> list[str]:
    """The top-level packages of the frames an exception passed through, outermost first."""
    found: list[str] = []
    tb = exc.__traceback__
    while tb is not None:
        found.append(str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0])
        tb = tb.tb_next
    return found


@index.command("copy")
@click.argument("src", callback=_store_name)
@click.argument("dst", callback=_store_name)
@click.option("--batch-size", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Items read and written per round trip.")
@click.option("--overwrite", is_flag=True,
              help="Replace items DST holds under the same ids (default: skip identical ones, stop at different ones).")
@click.option("--progress/--no-progress", default=None, help="A progress bar (default: when stderr is a terminal).")
@json_option
@handle_errors
def copy_command(src: str, dst: str, batch_size: int, overwrite: bool, progress: bool | None, as_json: bool) -> None:
    """Copy every item (id, vector, metadata) of the store SRC into the store DST, creating DST when missing.

    Stores are named by URLs: file:./index (an index directory), postgresql://user@host/db?table=docs,
    chroma:./folder?collection=docs, chroma+http://host:8000?collection=docs, qdrant://host:6333?collection=docs,
    qdrant:./folder?collection=docs, redis://host:6379?name=docs, typesense://host:8108?collection=docs (docs/cli.md
    lists every form).
    Run the same command again after an interruption: items DST already holds with the same content are
    skipped, so nothing is written twice. A file: DST is saved once, at the end.

    \b
    Examples:
      finetune-embed index copy file:./reviews-index "postgresql://app@db/app?table=reviews"
      finetune-embed index copy "postgresql://app@db/app?table=reviews" "chroma:./chroma-data?collection=reviews"
    """
    from ..stores._copy import copy
    from ..stores._names import open_store, shown

    with _store_errors(src, dst):
        source = open_store(src, create=False)
        try:
            s = source.store
            target = open_store(dst, create=True, dim=s.dim, metric=s.metric, model=s.model)
            try:
                result = copy(s, target.store, batch_size=batch_size, overwrite=overwrite, progress=progress)
                target.finish()
            finally:
                target.store.close()
        finally:
            s.close()
    summary = {"source": shown(src), "destination": shown(dst), "copied": result.copied, "skipped": result.skipped,
               "total": result.total}
    if as_json:
        echo_json(summary)
        return
    already = f" ({result.skipped} were already there)" if result.skipped else ""
    click.echo(f"Copied {result.copied} items from {shown(src)} to {shown(dst)}{already}")
