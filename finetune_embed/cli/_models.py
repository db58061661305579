"""``finetune-embed models``: what the catalog knows about each model."""

from __future__ import annotations

from datetime import date

import click

from ._common import azure_option, client_from_options, echo_json, echo_table, handle_errors, json_option


@click.group()
def models() -> None:
    """Model facts from the dated catalog (limits, prices, shutdown dates)."""


@models.command("list")
@json_option
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Availability on this day (default today).",
)
@handle_errors
def list_models(as_json: bool, on: object) -> None:
    """List fine-tunable and embedding models with their limits, prices and availability."""
    from ..catalog import default_catalog

    cat = default_catalog()
    day = on.date() if hasattr(on, "date") else date.today()
    ft_rows = []
    for info in cat.fine_tune_models.values():
        avail = cat.availability(info.name, on=day)
        ft_rows.append(
            {
                "model": info.name,
                "aliases": ",".join(info.aliases),
                "encoding": info.encoding,
                "max_example_tokens": info.max_example_tokens,
                "methods": ",".join(sorted(info.methods)),
                "price_per_1m": info.training_price_per_1m,
                "shutdown": info.shutdown.isoformat() if info.shutdown else None,
                "openai_status": avail.status,
            }
        )
    emb_rows = [
        {
            "model": e.name,
            "encoding": e.encoding,
            "dimensions": e.dimensions,
            "accepts_dimensions": e.accepts_dimensions,
            "max_input_tokens": e.max_input_tokens,
            "price_per_1m": e.price_per_1m,
            "batch_price_per_1m": e.batch_price_per_1m,
        }
        for e in cat.embedding_models.values()
    ]
    if as_json:
        echo_json({"as_of": cat.as_of, "fine_tune_models": ft_rows, "embedding_models": emb_rows})
        return
    click.echo(f"Fine-tunable models (catalog as of {cat.as_of}; availability on OpenAI on {day}):")
    echo_table(
        ft_rows, ["model", "encoding", "max_example_tokens", "methods", "price_per_1m", "shutdown", "openai_status"]
    )
    click.echo("\nEmbedding models (USD per 1M input tokens):")
    echo_table(
        emb_rows,
        ["model", "dimensions", "accepts_dimensions", "max_input_tokens", "price_per_1m", "batch_price_per_1m"],
    )


@models.command("info")
@click.argument("model")
@json_option
@click.option("--provider", type=click.Choice(["openai", "azure", "compatible"]), default="openai", show_default=True)
@handle_errors
def info(model: str, as_json: bool, provider: str) -> None:
    """Everything the catalog knows about MODEL, with its sources."""
    import dataclasses

    from ..catalog import default_catalog

    cat = default_catalog()
    found: dict[str, object] = {}
    ft = cat.find_fine_tune_model(model)
    if ft is not None:
        found["fine_tune"] = dataclasses.asdict(ft)
        avail = cat.availability(model, provider=provider)  # type: ignore[arg-type]
        found["availability"] = {"status": avail.status, "message": avail.message}
    emb = cat.find_embedding_model(model)
    if emb is not None:
        found["embedding"] = dataclasses.asdict(emb)
    if not found:
        raise click.ClickException(
            f"{model!r} is not in the catalog (as of {cat.as_of}); see `finetune-embed models list`."
        )
    found["sources"] = {
        key: cat.sources.get(key, key) for entry in (ft, emb) if entry is not None for key in entry.sources
    }
    if as_json:
        echo_json(found)
        return
    for section, values in found.items():
        click.echo(f"{section}:")
        if isinstance(values, dict):
            for key, value in values.items():
                click.echo(f"  {key}: {_shown(value)}")


def _shown(value: object) -> str:
    """A catalog value as a person reads it: lists comma-separated, no Python reprs."""
    if isinstance(value, set | frozenset):
        return ", ".join(sorted(map(str, value))) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else str(value)


@models.command("delete")
@click.argument("model_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@azure_option
@handle_errors
def delete(model_id: str, yes: bool, as_json: bool, azure: bool) -> None:
    """Delete MODEL_ID, a fine-tuned model you own (ft:... on OpenAI). This cannot be undone."""
    from ..finetuning import JobManager

    if not yes:
        click.confirm(f"Delete the fine-tuned model {model_id}? This cannot be undone", abort=True)
    with client_from_options(azure) as client:
        result = JobManager(client).delete_model(model_id)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"{result.id} {'deleted' if result.deleted else 'not deleted'}")
