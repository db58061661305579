"""``finetune-embed eval``: run held-out examples through models and compare them (finetune_embed.evaluate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ._common import azure_option, echo_json, handle_errors, json_option
from ._embedder_options import embedder_model_options, tokenizer_from_option

__all__ = ["eval_command"]


def _candidate(spec: str) -> Any:
    from ..evaluate import Candidate

    name, sep, model = spec.partition("=")
    if sep and name and model:
        return Candidate(model.strip(), name=name.strip())
    return Candidate(spec.strip())


@click.command("eval")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    required=True,
    help="A model to evaluate (repeat to compare; the first is the baseline). NAME=MODEL gives it a label.",
)
@click.option(
    "-s",
    "--scorer",
    "scorers",
    multiple=True,
    help="exact, normalized, json_valid, json_match, tool_call, tool_name, embedding, or regex:PATTERN "
    "(repeatable; default: those that fit the references).",
)
@click.option("--system", help='Replace the data\'s system prompt ("" removes it).')
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature for every request.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="max_completion_tokens for every request.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N examples.")
@click.option(
    "--embedding-model",
    default="text-embedding-3-small",
    show_default=True,
    help="The embedding model of the embedding scorer.",
)
@embedder_model_options(prefix="embedding-", base_model=True)
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Response cache file (default: ~/.cache/finetune_embed/chat.sqlite).",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write cached answers (a rerun pays again).")
@click.option("--max-concurrency", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--rpm", type=click.IntRange(min=1), help="Your requests-per-minute budget per model.")
@click.option("--tpm", type=click.IntRange(min=1), help="Your tokens-per-minute budget per model.")
@click.option("--rows", "rows_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the per-example table here (JSONL).")  # fmt: skip
@click.option("--worst", type=click.IntRange(min=0), default=3, show_default=True, help="Worst examples per scorer.")
@click.option("--estimate", "dry_run", is_flag=True, help="Print requests, tokens and cost per model; send nothing.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when on a terminal).")
@azure_option
@json_option
@handle_errors
def eval_command(
    data: Path,
    models: tuple[str, ...],
    scorers: tuple[str, ...],
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    limit: int | None,
    embedding_model: str,
    base_model: str | None,
    tokenizer: str | None,
    max_input_tokens: int | None,
    cache_path: Path | None,
    no_cache: bool,
    max_concurrency: int,
    rpm: int | None,
    tpm: int | None,
    rows_path: Path | None,
    worst: int,
    dry_run: bool,
    progress: bool | None,
    azure: bool,
    as_json: bool,
) -> None:
    """Evaluate models on DATA (a JSONL of examples, e.g. a held-out split): each example's last assistant
    message is the reference, everything before it the prompt.

    Prints each model's mean per scorer with a 95% bootstrap interval, paired comparisons against the first model
    (win / tie / loss), tokens, cost and latency, and the worst examples with their line numbers. Answers are
    cached as they arrive: a rerun costs nothing and an interrupted run resumes.

    \b
    Examples:
      finetune-embed eval test.jsonl -m gpt-4.1-mini -m ft:gpt-4.1-mini-2025-04-14:org:news:abc123
      finetune-embed eval test.jsonl -m base=gpt-4o-mini -m tuned=ft:... -s normalized -s embedding --json
    """
    from .._atomic import atomic_write_lines
    from ..evaluate import Evaluation
    from ._common import client_from_options

    if cache_path is not None and no_cache:
        raise click.UsageError("--cache and --no-cache exclude each other")
    client = client_from_options(azure)
    embedder = None
    if "embedding" in scorers:
        from ..embeddings import Embedder

        embedder = Embedder(
            client,
            model=embedding_model,
            progress=progress,
            cache=not no_cache,
            base_model=base_model,
            tokenizer=tokenizer_from_option(tokenizer),
            max_input_tokens=max_input_tokens,
        )
    params: dict[str, Any] = {}
    if temperature is not None:
        params["temperature"] = temperature
    if max_tokens is not None:
        params["max_completion_tokens"] = max_tokens
    evaluation = Evaluation(
        data,
        [_candidate(m) for m in models],
        client=client,
        scorers=list(scorers) or None,
        embedder=embedder,
        system=system,
        params=params,
        cache=False if no_cache else (cache_path if cache_path is not None else True),
        max_concurrency=max_concurrency,
        rpm=rpm,
        tpm=tpm,
        progress=progress,
        limit=limit,
    )
    with client:
        try:
            if dry_run:
                estimates = evaluation.estimate()
                if as_json:
                    echo_json([e.__dict__ for e in estimates])
                else:
                    for e in estimates:
                        cost = "no price" if e.cost_usd is None else f"~${e.cost_usd:,.4f}"
                        click.echo(
                            f"{e.candidate}: {e.requests} request(s) to send ({e.cached} cached), "
                            f"{e.prompt_tokens:,} prompt tokens, ~{e.expected_completion_tokens:,} completion "
                            f"tokens, {cost}"
                        )
                return
            report = evaluation.run()
        finally:
            if embedder is not None:
                embedder.close()
    if rows_path is not None:
        atomic_write_lines(rows_path, (json.dumps(r, ensure_ascii=False) for r in report.to_rows()))
    if as_json:
        echo_json(report.to_dict(worst=worst))
    else:
        click.echo(report.format(worst=worst))
