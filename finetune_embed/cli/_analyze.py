"""``finetune-embed dataset analyze``: data-quality analysis with embeddings (``Dataset.analyze``)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import azure_option, echo_json, handle_errors, json_option
from ._embedder_options import embedder_model_options, tokenizer_from_option

__all__ = ["analyze_command"]


@click.command("analyze")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--validation", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A validation file: report its examples that are near-duplicates of training examples.",
)  # fmt: skip
@click.option(
    "-m", "--embedding-model", default="text-embedding-3-small", show_default=True,
    help="Embedding model (Azure: deployment; any compatible server's model).",
)  # fmt: skip
@embedder_model_options(prefix="embedding-", base_model=True)
@click.option("--dimensions", type=click.IntRange(min=1), help="Shorter vectors (text-embedding-3-* only).")
@click.option("--clusters", type=click.IntRange(min=1), help="Number of topics (default: about sqrt(n/2), 2-12).")
@click.option("--similarity", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True,
              help="Prompt cosine from which two prompts count as near-identical.")  # fmt: skip
@click.option("--answer-similarity", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True,
              help="Answer cosine from which two different texts count as the same answer.")  # fmt: skip
@click.option("--outlier-z", type=click.FloatRange(0, min_open=True), default=3.5, show_default=True,
              help="Robust z-score above which an example is an outlier.")  # fmt: skip
@click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache.")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True, help="Findings listed per kind.")
@azure_option
@json_option
@handle_errors
def analyze_command(
    path: Path,
    validation: Path | None,
    embedding_model: str,
    base_model: str | None,
    tokenizer: str | None,
    max_input_tokens: int | None,
    dimensions: int | None,
    clusters: int | None,
    similarity: float,
    answer_similarity: float,
    outlier_z: float,
    no_cache: bool,
    limit: int,
    azure: bool,
    as_json: bool,
) -> None:
    """Find what limits a fine-tune in FILE, with embeddings: conflicting examples (near-identical prompts with
    different answers), topic clusters with sizes, examples and refusal shares, semantic near-duplicates,
    leakage into --validation, and outliers, each with its line numbers. Calls the embeddings API (cached).

    \b
    Examples:
      finetune-embed dataset analyze train.jsonl
      finetune-embed dataset analyze train.jsonl --validation valid.jsonl --clusters 8 --json
    """
    from ..dataset import Dataset
    from ..embeddings import Embedder
    from ._common import client_from_options

    data = Dataset.from_json(path)
    client = client_from_options(azure)
    embedder = Embedder(
        client,
        model=embedding_model,
        dimensions=dimensions,
        cache=not no_cache,
        base_model=base_model,
        tokenizer=tokenizer_from_option(tokenizer),
        max_input_tokens=max_input_tokens,
    )
    with client, embedder:
        analysis = data.analyze(
            embedder,
            validation=validation,
            clusters=clusters,
            similarity=similarity,
            answer_similarity=answer_similarity,
            outlier_z=outlier_z,
        )
    if as_json:
        echo_json(analysis.to_dict())
    else:
        click.echo(f"{path}:")
        click.echo(analysis.format(limit=limit))
