"""``finetune-embed jobs``: create, list, inspect, follow, wait for and read the results of fine-tuning jobs."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ._common import azure_option, client_from_options, echo_json, echo_table, handle_errors, json_option, one_line
from ._files import when
from ._models_check import allow_unknown_option, check_base_model
from ._words import cli_words

JOB_COLUMNS = ["id", "model", "status", "fine_tuned_model", "created", "trained_tokens"]
METHODS = ["supervised", "dpo", "reinforcement"]


def job_row(job: Any) -> dict[str, Any]:
    """A table row for a job."""
    return {
        "id": job.id,
        "model": getattr(job, "model", None),
        "status": getattr(job, "status", None),
        "fine_tuned_model": getattr(job, "fine_tuned_model", None),
        "created": when(getattr(job, "created_at", None)),
        "trained_tokens": getattr(job, "trained_tokens", None),
    }


@contextlib.contextmanager
def _manager(azure: bool) -> Iterator[Any]:
    """A JobManager on a client from the environment, closed afterwards."""
    from ..finetuning import JobManager

    with client_from_options(azure) as client:
        yield JobManager(client)


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        out[key] = val
    return out


class _AutoNumber(click.ParamType):  # type: ignore[type-arg]  # generic only from click 8.2
    """A number, or ``auto``."""

    def __init__(self, kind: type[int] | type[float]) -> None:
        self.kind = kind
        self.name = f"{kind.__name__}|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or value == "auto" or isinstance(value, int | float):
            return value
        try:
            return self.kind(value)
        except ValueError:
            self.fail(f"{value!r} is not a{'n integer' if self.kind is int else ' number'} or 'auto'", param, ctx)


def _echo_job(job: Any, as_json: bool) -> None:
    if as_json:
        echo_json(job)
        return
    row = job_row(job)
    error = getattr(job, "error", None)
    if error is not None and getattr(error, "message", None):
        row["error"] = f"{error.message} ({getattr(error, 'code', None)})"
    method = getattr(job, "method", None)
    if method is not None:
        row["method"] = getattr(method, "type", None)
    for key in ("training_file", "validation_file", "suffix", "seed", "result_files", "metadata"):
        value = getattr(job, key, None)
        if value not in (None, [], {}):
            row[key] = value
    width = max(len(k) for k in row)
    for key, value in row.items():
        if value is not None:
            click.echo(f"{key.ljust(width)}  {value}")


def _echo_event(event: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(event.model_dump(mode="json"), ensure_ascii=False))
    else:
        click.echo(f"{when(getattr(event, 'created_at', None))}  [{getattr(event, 'level', '')}]  {event.message}")


@click.group()
def jobs() -> None:
    """Fine-tuning jobs: create, follow, wait for, cancel; events, checkpoints and metrics."""


@jobs.command("create")
@click.argument("model")
@click.argument("training_file")
@click.option("--validation-file", default=None, help="A file id or a local JSONL file.")
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default=None,
    help="Default: from the data (preference pairs: dpo; with --grader: reinforcement; else supervised).",
)
@click.option("--epochs", "n_epochs", type=_AutoNumber(int), default=None, help="n_epochs: 1-50 or auto.")
@click.option("--batch-size", type=_AutoNumber(int), default=None, help="1-256 or auto.")
@click.option("--learning-rate-multiplier", type=_AutoNumber(float), default=None, help="> 0 or auto.")
@click.option("--beta", type=_AutoNumber(float), default=None, help="DPO only: (0, 2] or auto.")
@click.option("--grader", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Reinforcement only: a JSON file with the grader object.")
@click.option("--suffix", default=None, help="1-64 characters, part of the fine-tuned model's name.")
@click.option("--seed", type=int, default=None, help="0-2147483647.")
@click.option("--metadata", "metadata_pairs", multiple=True, metavar="KEY=VALUE", help="Repeatable (<= 16).")
@click.option("--wandb-project", default=None, help="Log the job to this Weights & Biases project.")
@click.option("--no-validate", is_flag=True, help="Upload local data even if validation finds errors.")
@click.option("--dry-run", is_flag=True, help="Check everything and print the estimate; create nothing.")
@click.option("--wait", "wait_", is_flag=True, help="Wait for the job to end (exit 1 if it fails).")
@click.option("--timeout", type=float, default=None, help="With --wait: give up waiting after this many seconds.")
@click.option("--poll-interval", type=float, default=5.0, show_default=True, help="With --wait: first delay.")
@click.option("--max-poll-interval", type=float, default=60.0, show_default=True, help="With --wait: longest delay.")
@allow_unknown_option
@json_option
@azure_option
@handle_errors
def create(
    model: str,
    training_file: str,
    validation_file: str | None,
    method: str | None,
    n_epochs: Any,
    batch_size: Any,
    learning_rate_multiplier: Any,
    beta: Any,
    grader: Path | None,
    suffix: str | None,
    seed: int | None,
    metadata_pairs: tuple[str, ...],
    wandb_project: str | None,
    no_validate: bool,
    dry_run: bool,
    wait_: bool,
    timeout: float | None,
    poll_interval: float,
    max_poll_interval: float,
    allow_unknown_model: bool,
    as_json: bool,
    azure: bool,
) -> None:
    """Create a fine-tuning job of MODEL on TRAINING_FILE (a file id, or a local JSONL validated and uploaded).

    Without --method the method follows the data: preference pairs train with dpo, a --grader means
    reinforcement, anything else supervised; the choice is printed on stderr.
    """
    if method is None:
        method = _infer_method(training_file, grader is not None)
    hyperparameters = {
        key: value
        for key, value in {
            "n_epochs": n_epochs,
            "batch_size": batch_size,
            "learning_rate_multiplier": learning_rate_multiplier,
            "beta": beta,
        }.items()
        if value is not None
    }
    grader_obj = None
    if grader is not None:
        try:
            grader_obj = json.loads(grader.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"{grader} is not JSON: {exc}", param_hint="--grader") from exc
    metadata = _pairs(metadata_pairs, "--metadata") or None
    integrations = [{"type": "wandb", "wandb": {"project": wandb_project}}] if wandb_project else None
    with _manager(azure) as manager, _warnings_to_stderr():
        check_base_model(
            model, provider=manager.client.provider, allow=allow_unknown_model, param_hint="'MODEL'"
        )
        _create(
            manager, model, training_file, validation_file=validation_file, method=method,
            hyperparameters=hyperparameters, grader=grader_obj, suffix=suffix, seed=seed, metadata=metadata,
            integrations=integrations, validate=not no_validate, dry_run=dry_run, wait=wait_,
            wait_options={"timeout": timeout, "poll_interval": poll_interval, "max_poll_interval": max_poll_interval},
            as_json=as_json,
        )


def _infer_method(training_file: str, has_grader: bool) -> str:
    """The fine-tuning method the data asks for, said on stderr."""
    if has_grader:
        method, why = "reinforcement", "a --grader is given"
    else:
        path = Path(training_file)
        fmt = None
        if path.is_file():
            from ..dataset._stream import _detect_file_format

            fmt = _detect_file_format(str(path))
        if fmt == "preference":
            method, why = "dpo", f"{training_file} holds preference pairs"
        elif fmt is not None:
            method, why = "supervised", f"{training_file} holds {fmt} examples"
        else:
            method, why = "supervised", "the default"
    click.echo(f"Method: {method} ({why}; --method to choose another).", err=True)
    return method


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """Show the library's warnings (a model near its shutdown) as ``Warning: ...`` lines on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                click.echo(f"Warning: {one_line(cli_words(str(warning.message)))}", err=True)


def _create(
    manager: Any,
    model: str,
    training_file: str,
    *,
    validation_file: str | None,
    method: str,
    hyperparameters: dict[str, Any],
    grader: Any,
    suffix: str | None,
    seed: int | None,
    metadata: dict[str, str] | None,
    integrations: list[dict[str, Any]] | None,
    validate: bool,
    dry_run: bool,
    wait: bool,
    wait_options: dict[str, Any],
    as_json: bool,
) -> None:
    if dry_run:
        from ..finetuning._jobs import plan_create

        plan_create(
            model, method=method, hyperparameters=hyperparameters or None, grader=grader, suffix=suffix,
            seed=seed, metadata=metadata, integrations=integrations, provider=manager.client.provider, on=None,
        )
        estimate = manager.estimate(
            training_file, model=model, validation_file=validation_file, method=method,
            n_epochs=hyperparameters.get("n_epochs", "auto"),
        )
        if as_json:
            echo_json(estimate.to_dict())
        else:
            click.echo(f"Dry run, nothing created. {estimate}")
            for note in estimate.notes:
                click.echo(f"  note: {note}")
        return
    job = manager.create(
        model,
        training_file,
        validation_file=validation_file,
        method=method,
        hyperparameters=hyperparameters or None,
        grader=grader,
        suffix=suffix,
        seed=seed,
        metadata=metadata,
        integrations=integrations,
        validate=validate,
    )
    if wait:
        if not as_json:
            click.echo(f"Created {job.id}; waiting for it to end.", err=True)
        job = manager.wait(job.id, **wait_options)
    _echo_job(job, as_json)


@jobs.command("list")
@click.option("--status", "statuses", multiple=True, help="Only jobs in this status (repeatable).")
@click.option("--metadata", "metadata_pairs", multiple=True, metavar="KEY=VALUE", help="Only jobs with this metadata.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many jobs.")
@click.option("--all", "all_", is_flag=True, help="Every job (no limit).")
@json_option
@azure_option
@handle_errors
def list_jobs(
    statuses: tuple[str, ...], metadata_pairs: tuple[str, ...], limit: int, all_: bool, as_json: bool, azure: bool
) -> None:
    """List jobs, newest first (fetching further pages as needed)."""
    metadata = _pairs(metadata_pairs, "--metadata") or None
    with _manager(azure) as manager:
        items = list(manager.list(status=statuses or None, metadata=metadata, limit=None if all_ else limit))
    if as_json:
        echo_json(items)
    else:
        echo_table([job_row(j) for j in items], JOB_COLUMNS)


@jobs.command("get")
@click.argument("job_id")
@json_option
@azure_option
@handle_errors
def get(job_id: str, as_json: bool, azure: bool) -> None:
    """Show one job."""
    with _manager(azure) as manager:
        _echo_job(manager.get(job_id), as_json)


@jobs.command("wait")
@click.argument("job_id")
@click.option("--timeout", type=float, default=None, help="Give up waiting after this many seconds (exit 1).")
@click.option("--poll-interval", type=float, default=5.0, show_default=True, help="First delay between polls.")
@click.option("--max-poll-interval", type=float, default=60.0, show_default=True, help="Longest delay.")
@json_option
@azure_option
@handle_errors
def wait(
    job_id: str, timeout: float | None, poll_interval: float, max_poll_interval: float, as_json: bool, azure: bool
) -> None:
    """Wait for JOB_ID to end; exit 1 if it failed, was cancelled, or the timeout passed."""
    with _manager(azure) as manager:
        job = manager.wait(job_id, timeout=timeout, poll_interval=poll_interval, max_poll_interval=max_poll_interval)
    _echo_job(job, as_json)


@jobs.command("follow")
@click.argument("job_id")
@click.option("--no-history", is_flag=True, help="Only events from now on.")
@click.option("--timeout", type=float, default=None, help="Stop following after this many seconds (exit 1).")
@click.option("--poll-interval", type=float, default=5.0, show_default=True, help="First delay between polls.")
@click.option("--max-poll-interval", type=float, default=60.0, show_default=True, help="Longest delay.")
@json_option
@azure_option
@handle_errors
def follow(
    job_id: str,
    no_history: bool,
    timeout: float | None,
    poll_interval: float,
    max_poll_interval: float,
    as_json: bool,
    azure: bool,
) -> None:
    """Print JOB_ID's events as they come, until it ends (exit 1 if it failed or was cancelled). --json: JSONL."""
    from ..finetuning._jobs import outcome

    with _manager(azure) as manager:
        for event in manager.follow(
            job_id,
            history=not no_history,
            timeout=timeout,
            poll_interval=poll_interval,
            max_poll_interval=max_poll_interval,
        ):
            _echo_event(event, as_json)
        outcome(manager.get(job_id))


@jobs.command("events")
@click.argument("job_id")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the newest this many events.")
@json_option
@azure_option
@handle_errors
def events(job_id: str, limit: int | None, as_json: bool, azure: bool) -> None:
    """List JOB_ID's events, oldest first."""
    with _manager(azure) as manager:
        items = manager.events(job_id, limit=limit)
    if as_json:
        echo_json(items)
    else:
        for event in items:
            _echo_event(event, False)


def _control(action: str) -> click.Command:
    @jobs.command(action, help=f"{action.capitalize()} JOB_ID.")
    @click.argument("job_id")
    @json_option
    @azure_option
    @handle_errors
    def command(job_id: str, as_json: bool, azure: bool) -> None:
        with _manager(azure) as manager:
            job = getattr(manager, action)(job_id)
        if as_json:
            echo_json(job)
        else:
            click.echo(f"{job.id} {job.status}")

    return command


cancel = _control("cancel")
pause = _control("pause")
resume = _control("resume")


@jobs.command("checkpoints")
@click.argument("job_id")
@json_option
@azure_option
@handle_errors
def checkpoints(job_id: str, as_json: bool, azure: bool) -> None:
    """List JOB_ID's checkpoints by step, with their metrics."""
    with _manager(azure) as manager:
        items = manager.checkpoints(job_id)
    if as_json:
        echo_json(items)
        return
    rows = []
    for cp in items:
        metrics = getattr(cp, "metrics", None)
        rows.append(
            {
                "step": cp.step_number,
                "checkpoint": cp.fine_tuned_model_checkpoint,
                "train_loss": getattr(metrics, "train_loss", None),
                "valid_loss": getattr(metrics, "valid_loss", None),
                "full_valid_loss": getattr(metrics, "full_valid_loss", None),
                "full_valid_accuracy": getattr(metrics, "full_valid_mean_token_accuracy", None),
            }
        )
    echo_table(rows, ["step", "checkpoint", "train_loss", "valid_loss", "full_valid_loss", "full_valid_accuracy"])


@jobs.command("metrics")
@click.argument("job_id")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the table to this CSV file.")
@click.option("--last", type=click.IntRange(min=0), default=10, show_default=True, help="Print the last N steps.")
@click.option("--all", "all_", is_flag=True, help="Print every step.")
@json_option
@azure_option
@handle_errors
def metrics(job_id: str, csv_path: Path | None, last: int, all_: bool, as_json: bool, azure: bool) -> None:
    """JOB_ID's per-step training metrics (from its result file)."""
    with _manager(azure) as manager:
        table = manager.metrics(job_id)
    if csv_path is not None:
        table.to_csv(csv_path)
    if as_json:
        echo_json({"job_id": job_id, "file_id": table.file_id, "steps": len(table), "columns": table.to_dict()})
        return
    rows = list(table)
    shown = rows if all_ else rows[len(rows) - last :] if last else []
    click.echo(f"{job_id}: {len(table)} steps (result file {table.file_id})")
    summary = ", ".join(f"{k}={v:.4g}" for k, v in table.summary().items() if v is not None and k != "step")
    if summary:
        click.echo(f"last: {summary}")
    if shown:
        columns = [c for c in table.column_names if any(row[c] is not None for row in shown)]
        echo_table(shown, columns)
    if csv_path is not None:
        click.echo(f"written to {csv_path}")
