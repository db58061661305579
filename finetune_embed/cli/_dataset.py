"""``finetune-embed dataset``: validate, describe, split, convert and fix fine-tuning files (all offline)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from ._analyze import analyze_command
from ._common import EXIT_FAILURE, echo_json, echo_table, handle_errors, json_option
from ._models_check import allow_unknown_option, check_base_model

if TYPE_CHECKING:
    from ..dataset import DatasetStats, ValidationReport

_METHODS = click.Choice(["supervised", "dpo", "reinforcement"])
model_option = click.option(
    "-m", "--model", default=None, help="Base model to check against (limits, price, availability)."
)
method_option = click.option(
    "--method", type=_METHODS, default=None, help="Fine-tuning method (default: from the data)."
)


def _workers(value: str | int) -> int | Literal["auto"]:
    """--workers: a positive number or "auto"."""
    if value == "auto":
        return "auto"
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise click.BadParameter(f"{value!r} is not a number >= 1 or 'auto'")
    return number


def _day(value: datetime | None) -> Any:
    return value.date() if value is not None else None


@click.group()
def dataset() -> None:
    """Check and prepare fine-tuning data (JSONL). Nothing here calls the API, except `analyze` (embeddings)."""


def _print_issues(report: ValidationReport, name: str) -> None:
    for title, items in (("Errors", report.errors), ("Warnings", report.warnings)):
        if items:
            click.echo(f"{title}:")
            for issue in items:
                click.echo("  " + issue.format(name))
    left = report.error_count + report.warning_count - len(report.issues)
    if left > 0:
        click.echo(f"  ... and {left} more issue(s) not listed (raise --max-issues); counts by code: {report.counts}")


def _print_stats(stats: DatasetStats) -> None:
    click.echo(stats.summary())  # one renderer: the CLI prints what DatasetStats.summary() says


@dataset.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@model_option
@method_option
@json_option
@click.option(
    "--stats/--no-stats", "want_stats", default=True, show_default=True, help="Also count tokens and estimate cost."
)
@click.option("--max-issues", type=click.IntRange(min=1), default=1000, show_default=True, help="Issues to keep.")
@click.option("--provider", type=click.Choice(["openai", "azure", "compatible"]), default="openai", show_default=True)
@click.option("--on", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Check availability on this day.")
@click.option(
    "--workers",
    default="auto",
    show_default=True,
    callback=lambda _ctx, _param, value: _workers(value),
    help="Processes: a number, or auto (one per CPU, at most 8, for files of 48 MB or more).",
)
@click.option(
    "--max-example-tokens", type=click.IntRange(min=1), default=None, help="Override the model's per-example limit."
)
@allow_unknown_option
@handle_errors
def validate(
    file: Path,
    model: str | None,
    method: str | None,
    as_json: bool,
    want_stats: bool,
    max_issues: int,
    provider: str,
    on: datetime | None,
    workers: int | Literal["auto"],
    max_example_tokens: int | None,
    allow_unknown_model: bool,
) -> None:
    """Check FILE (JSONL) line by line; exit 1 if there is any error (warnings keep exit 0).

    Prints one line per issue, `FILE:LINE path: message [code]`, then the token, epoch and cost estimate.
    """
    from ..dataset import Dataset

    check_base_model(model, provider=provider, allow=allow_unknown_model, param_hint="'--model'")

    report = Dataset.validate_file(
        file,
        model=model,
        method=method,
        max_issues=max_issues,
        stats=want_stats,
        on=_day(on),
        provider=provider,
        max_example_tokens=max_example_tokens,
        workers=workers,
        progress=False if as_json else None,
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        name = str(file)
        click.echo(
            f"{name}: {report.n_examples} examples"
            + (f", {report.format}" if report.format else "")
            + (f", {report.method}" if report.method else "")
            + (f", model {report.model}" if report.model else "")
        )
        _print_issues(report, name)
        if report.stats is not None and report.stats.n_examples:
            _print_stats(report.stats)
        verdict = "OK" if report.ok else "FAILED"
        click.echo(f"{verdict}: {report.error_count} error(s), {report.warning_count} warning(s)")
    if not report.ok:
        _fail_with_first_error(report, str(file))


def _fail_with_first_error(report: ValidationReport, name: str) -> None:
    """Exit 1 with one `Error:` line on stderr naming the count and the first error (the report is on stdout)."""
    first = report.errors[0].format(name) if report.errors else ""
    more = f" (first: {first})" if first else ""
    click.echo(f"Error: {name} has {report.error_count} error(s){more}", err=True)
    sys.exit(EXIT_FAILURE)


@dataset.command("stats")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@model_option
@method_option
@json_option
@click.option(
    "--counting",
    type=click.Choice(["model", "cookbook"]),
    default="model",
    show_default=True,
    help="model: the model's encoding and our formula; cookbook: the cookbook notebook's cl100k_base formula.",
)
@click.option(
    "--epochs", "n_epochs", type=click.IntRange(1, 50), default=None, help="Epochs (default: the service's heuristic)."
)
@click.option(
    "--validation",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A validation file: count its examples that are also in FILE (leakage).",
)
@allow_unknown_option
@handle_errors
def stats_cmd(
    file: Path,
    model: str | None,
    method: str | None,
    as_json: bool,
    counting: str,
    n_epochs: int | None,
    validation: Path | None,
    allow_unknown_model: bool,
) -> None:
    """Token distributions, epochs, billed tokens and cost of FILE (streamed)."""
    from ..dataset import Dataset

    check_base_model(model, provider="openai", allow=allow_unknown_model, param_hint="'--model'")

    st = Dataset.stats_file(
        file,
        model=model,
        method=method,
        counting=counting,  # type: ignore[arg-type]
        n_epochs=n_epochs,
        validation=validation,
    )
    if not st.n_examples:
        raise click.ClickException(
            f"{file} holds no example that can be read; `finetune-embed dataset validate {file}` says why, "
            "line by line."
        )
    if as_json:
        echo_json(st.to_dict())
        return
    click.echo(f"{file}: {st.n_examples} examples" + (f", model {st.model}" if st.model else ""))
    rows = []
    for label, dist in (
        ("messages per example", st.messages_per_example),
        ("tokens per example", st.tokens_per_example),
        ("assistant tokens per example", st.assistant_tokens_per_example),
    ):
        if dist.n:
            rows.append(
                {
                    "distribution": label,
                    "min": f"{dist.min:,.0f}",
                    "mean": f"{dist.mean:,.1f}",
                    "p5": f"{dist.p5:,.1f}",
                    "p50": f"{dist.p50:,.1f}",
                    "p95": f"{dist.p95:,.1f}",
                    "max": f"{dist.max:,.0f}",
                }
            )
    if rows:
        echo_table(rows, ["distribution", "min", "mean", "p5", "p50", "p95", "max"])
    if any(st.tokens_by_role.values()):
        click.echo("Tokens by role: " + ", ".join(f"{k} {v:,}" for k, v in st.tokens_by_role.items() if v))
    _print_stats(st)


def _test_size(value: str | float) -> float | int:
    """--test-size: a fraction strictly between 0 and 1 (``0.1``) or a whole number of examples (``36``)."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if number != number or number in (float("inf"), float("-inf")):
        raise click.BadParameter(f"{text!r} is not a number; give a fraction such as 0.1 or a count such as 36")
    if number.is_integer() and not any(c in text for c in ".eE"):
        if number < 1:
            raise click.BadParameter(f"{text} examples is no test set; give a count of at least 1 or a fraction")
        return int(number)
    if not 0.0 < number < 1.0:
        hint = " (1.0 would put every example in the test set)" if number == 1.0 else ""
        raise click.BadParameter(
            f"{text} is not a fraction between 0 and 1{hint}; give e.g. 0.1, or a whole count of examples"
        )
    return number


@dataset.command("split")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--test-size",
    default="0.1",
    show_default=True,
    callback=lambda _ctx, _param, value: _test_size(value),
    help="A fraction between 0 and 1 (0.1), or a whole number of examples (36).",
)
@click.option("--seed", type=int, default=None, help="Seed for a reproducible split.")
@click.option("--no-shuffle", is_flag=True, help="Take the test set from the end of the file.")
@click.option(
    "--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Default: next to FILE."
)
@json_option
@handle_errors
def split(
    file: Path, test_size: float | int, seed: int | None, no_shuffle: bool, out_dir: Path | None, as_json: bool
) -> None:
    """Split FILE into <name>.train.jsonl and <name>.test.jsonl; near-duplicates never straddle the split."""
    from ..dataset import Dataset

    ds = Dataset.from_json(file)
    n = len(ds)
    if n < 2:
        raise click.UsageError(f"{file} has {n} example(s); a split needs at least 2.")
    if isinstance(test_size, int) and test_size >= n:
        raise click.BadParameter(
            f"{test_size} test examples out of {n} would leave none for training; give at most {n - 1}",
            param_hint="'--test-size'",
        )
    train, test = ds.train_test_split(test_size, seed=seed, shuffle=not no_shuffle)
    if not len(train) or not len(test):
        raise click.BadParameter(
            f"{test_size} of {n} examples leaves the {'training' if not len(train) else 'test'} set empty "
            "(near-duplicates stay together); give a smaller fraction or a count",
            param_hint="'--test-size'",
        )
    folder = out_dir or file.parent
    stem = file.name[: -len(".jsonl")] if file.name.endswith(".jsonl") else file.stem
    train_path, test_path = folder / f"{stem}.train.jsonl", folder / f"{stem}.test.jsonl"
    train.to_json(train_path)
    test.to_json(test_path)
    if as_json:
        echo_json({"train": str(train_path), "test": str(test_path), "n_train": len(train), "n_test": len(test)})
    else:
        click.echo(f"{len(train)} examples -> {train_path}\n{len(test)} examples -> {test_path}")


@dataset.command("convert")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "target", type=click.Choice(["chat"]), default="chat", show_default=True)
@click.option("--system", default=None, help="System prompt to add to converted examples.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Default: <name>.chat.jsonl."
)
@click.option("--prompt-column", default="prompt", show_default=True, help="CSV input: the prompt column.")
@click.option("--completion-column", default="completion", show_default=True, help="CSV input: the completion column.")
@json_option
@handle_errors
def convert(
    file: Path,
    target: str,
    system: str | None,
    output: Path | None,
    prompt_column: str,
    completion_column: str,
    as_json: bool,
) -> None:
    """Convert FILE (prompt/completion or preference JSONL, or a CSV of prompt/completion columns) to chat JSONL."""
    from ..dataset import Dataset

    if file.suffix.lower() in (".csv", ".tsv"):
        ds = Dataset.from_csv(
            file,
            prompt=prompt_column,
            completion=completion_column,
            system=system,
            delimiter="\t" if file.suffix.lower() == ".tsv" else ",",
        )
    else:
        ds = Dataset.from_json(file).convert("chat", system=system)
    stem = file.name[: -len(".jsonl")] if file.name.endswith(".jsonl") else file.stem
    out = output or file.with_name(f"{stem}.{target}.jsonl")
    n = ds.to_json(out)
    if as_json:
        echo_json({"output": str(out), "n_examples": n})
    else:
        click.echo(f"{n} examples -> {out}")


@dataset.command("fix")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@model_option
@method_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Default: <name>.fixed.jsonl."
)
@click.option(
    "--rejected", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Default: <name>.rejected.jsonl."
)
@click.option("--no-dedupe", is_flag=True, help="Keep exact duplicate examples.")
@allow_unknown_option
@json_option
@handle_errors
def fix(
    file: Path,
    model: str | None,
    method: str | None,
    output: Path | None,
    rejected: Path | None,
    no_dedupe: bool,
    allow_unknown_model: bool,
    as_json: bool,
) -> None:
    """Write the fixable examples of FILE to <name>.fixed.jsonl and the rest, with reasons, to <name>.rejected.jsonl.

    Fixes a BOM, CRLF, empty lines, duplicate keys, unknown keys, double-encoded tool arguments and exact
    duplicates. Exit 1 when the fixed file still has errors (e.g. fewer than 10 examples left).
    """
    from ..dataset import Dataset

    check_base_model(model, provider="openai", allow=allow_unknown_model, param_hint="'--model'")
    result = Dataset.fix_file(file, output=output, rejected=rejected, model=model, method=method, dedupe=not no_dedupe)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(result.summary())
        if result.report is not None:
            click.echo(f"Fixed file: {result.report.headline()}")
            _print_issues(result.report, str(result.fixed_path))
    if result.report is not None and not result.report.ok:
        _fail_with_first_error(result.report, str(result.fixed_path))


dataset.add_command(analyze_command)
