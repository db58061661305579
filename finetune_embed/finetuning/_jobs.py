"""Fine-tuning jobs: create (checked locally, local data uploaded), follow, wait, results (``client.jobs``)."""

from __future__ import annotations

import builtins
import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._exceptions import ConfigError, JobCancelledError, JobFailedError, JobTimeoutError
from .._idempotent import REQUEST_KEY, create_once, request_id, request_id_of, scan_pages
from .._ids import check_path_id
from .._logging import get_logger
from .._progress import progress_bar, progress_enabled
from ._errors import ResultsUnavailableError
from ._files import FileManager, is_dataset
from ._metrics import TrainingMetrics
from ._pages import iter_pages
from ._polling import EventTracker, JobProgress, PollBackoff, SleepClock, is_terminal, next_poll_delay, status_of
from ._validate import (
    METADATA_MAX_PAIRS,
    METADATA_VALUE_MAX_CHARS,
    build_method,
    check_integrations,
    check_metadata,
    check_model,
    check_seed,
    check_suffix,
)

if TYPE_CHECKING:
    import openai
    from openai.types import ModelDeleted
    from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
    from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint
    from tqdm import tqdm

    from .._client import Client
    from ._estimate import JobEstimate

__all__ = ["JobManager", "TrainingFile"]

logger = get_logger("finetuning")

Role = Literal["training", "validation"]

#: What ``training_file`` / ``validation_file`` accept: a file id, a path to a JSONL file, or a Dataset.
TrainingFile = str | os.PathLike[str] | Any

EVENTS_PAGE_SIZE = 100
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_POLL_INTERVAL = 60.0


# --- shared with the async twin ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatePlan:
    """The checked arguments of a ``jobs.create`` call (file arguments still to resolve)."""

    model: str
    method_type: str
    method: dict[str, Any]
    extra: dict[str, Any]


def plan_create(
    model: str,
    *,
    method: str | Mapping[str, Any],
    hyperparameters: Mapping[str, Any] | None,
    grader: Mapping[str, Any] | None,
    suffix: str | None,
    seed: int | None,
    metadata: Mapping[str, str] | None,
    integrations: Sequence[Mapping[str, Any]] | None,
    provider: str,
    on: date | None,
) -> CreatePlan:
    """Check every argument of a job creation locally (before anything is uploaded)."""
    method_type, method_obj = build_method(method, hyperparameters, grader)
    extra: dict[str, Any] = {}
    if (value := check_suffix(suffix)) is not None:
        extra["suffix"] = value
    if (seed_value := check_seed(seed)) is not None:
        extra["seed"] = seed_value
    if (meta := check_metadata(metadata)) is not None:
        extra["metadata"] = meta
    if (integ := check_integrations(integrations)) is not None:
        extra["integrations"] = integ
    check_model(model, method=method_type, provider=provider, on=on)
    return CreatePlan(model=model, method_type=method_type, method=method_obj, extra=extra)


def check_client_request_id(value: object, metadata: Mapping[str, str] | None) -> str | None:
    """Check ``client_request_id`` (a string of 1-512 characters), and that the metadata leaves room for it."""
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= METADATA_VALUE_MAX_CHARS):
        raise ConfigError(
            f"client_request_id must be a string of 1-{METADATA_VALUE_MAX_CHARS} characters, got {value!r}; pass "
            "e.g. uuid.uuid4().hex to create a second identical job on purpose."
        )
    if metadata and REQUEST_KEY not in metadata and len(metadata) >= METADATA_MAX_PAIRS:
        raise ConfigError(
            f"metadata holds {len(metadata)} pairs, but the library adds a 16th, {REQUEST_KEY!r} (the client "
            "request id that stops a retried or rerun create from starting a second job): keep at most "
            f"{METADATA_MAX_PAIRS - 1} pairs of your own."
        )
    return value


def job_path_id(job_id: object) -> str:
    """``job_id`` checked to be sendable in a URL path (:func:`~finetune_embed._ids.check_path_id`)."""
    return check_path_id(job_id, argument="job_id", example="ftjob-abc123")


def model_path_id(model_id: object, provider: str) -> str:
    """The ``model_id`` of ``delete_model``, checked: sendable in a URL path, and on OpenAI a fine-tuned model."""
    check_path_id(model_id, argument="model_id", example="ft:gpt-4o-mini-2024-07-18:my-org:support:AbC123")
    assert isinstance(model_id, str)
    if provider == "openai" and not model_id.startswith("ft:"):
        raise ConfigError(
            f"{model_id!r} is not a fine-tuned model; only your own fine-tuned models (ft:...) can be deleted."
        )
    return model_id


def result_file_of(job: Any, job_id: str) -> str:
    """The id of a job's (first) result file; :class:`ResultsUnavailableError` while it has none."""
    result_files = builtins.list(getattr(job, "result_files", None) or [])
    if not result_files:
        raise ResultsUnavailableError(
            f"Fine-tuning job {job_id} ({status_of(job)}) has no result file yet; it is written when "
            "the job ends. Wait for it first: jobs.wait(job_id).",
            job_id=job_id,
            job=job,
        )
    return str(result_files[0])


def checkpoints_page(job_id: str) -> Callable[[Any, str | None], Any]:
    """The request for one page of a job's checkpoints after ``after`` (``fetch(sdk, after)``); sync or async."""
    from openai import omit

    return lambda sdk, after: sdk.fine_tuning.jobs.checkpoints.list(job_id, limit=100, after=after if after else omit)


def tag_create(params: dict[str, Any], client_request_id: str | None) -> str:
    """Put the client request id into ``params["metadata"]`` and return it: ``client_request_id`` when given
    (or one already in the metadata), else one derived from every parameter, so that the same call made again
    (a rerun after a crash) finds the job the first one created."""
    metadata = dict(params.get("metadata") or {})
    tag = client_request_id or metadata.get(REQUEST_KEY) or request_id("job", params)
    metadata[REQUEST_KEY] = tag
    params["metadata"] = metadata
    return tag


#: A job in one of these statuses is not adopted by a new call (calling again after a failure starts afresh).
NOT_ADOPTED = frozenset({"failed", "cancelled"})


def tagged_job(tag: str, retrying: bool) -> Callable[[Any], bool]:
    """Whether a listed job is the one created with client request id ``tag`` (and may be adopted)."""
    return lambda job: request_id_of(job) == tag and (retrying or status_of(job) not in NOT_ADOPTED)


def tagged_jobs_page(sdk: Any, tag: str, after: str | None) -> Any:
    """One page of the jobs carrying ``tag`` (the server filters by metadata; sync or async SDK)."""
    from openai import omit

    return sdk.fine_tuning.jobs.list(after=after if after else omit, limit=100, metadata={REQUEST_KEY: tag})


def is_local_file(value: object, *, role: str) -> bool:
    """Whether a ``training_file`` / ``validation_file`` value names local data (a path or a Dataset) rather than
    a file id; a string that looks like a path but does not exist is an error."""
    if is_dataset(value) or isinstance(value, os.PathLike):
        return True
    if getattr(value, "object", None) == "file" and isinstance(getattr(value, "id", None), str):
        return False  # a FileObject, e.g. what files.upload() returned
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{role} must be a file id, a path to a JSONL file or a Dataset, got {value!r}.")
    if Path(value).is_file():
        return True
    if "/" in value or "\\" in value or value.endswith((".jsonl", ".json")):
        raise ConfigError(f"{role} {value!r}: no such file (a file id looks like 'file-abc123').")
    return False


def file_id_of(value: Any) -> str:
    """The id of a file given as an id or as a file object."""
    return str(value) if isinstance(value, str) else str(value.id)


def failed_error(job: Any) -> JobFailedError:
    """The :class:`JobFailedError` for a failed job, carrying the server's error message, code and param."""
    job_id = str(getattr(job, "id", "?"))
    error = getattr(job, "error", None)
    message = getattr(error, "message", None)
    text = f"Fine-tuning job {job_id} failed"
    text += f": {message}" if message else "; the server gave no reason"
    details = ", ".join(f"{name}={value}" for name in ("code", "param") if (value := getattr(error, name, None)))
    if details:
        text += f" ({details})"
    if not message:
        text += f". See its events: finetune-embed jobs events {job_id}"
    return JobFailedError(text, job_id=job_id, job=job, error=error)


def outcome(job: Any) -> Any:
    """``job`` if it succeeded; raises :class:`JobFailedError` / :class:`JobCancelledError` for the others."""
    status = status_of(job)
    if status == "failed":
        raise failed_error(job)
    if status == "cancelled":
        job_id = str(getattr(job, "id", "?"))
        raise JobCancelledError(f"Fine-tuning job {job_id} was cancelled.", job_id=job_id, job=job)
    return job


def timeout_error(job: Any, job_id: str, timeout: float) -> JobTimeoutError:
    """The :class:`JobTimeoutError` for a job still going after ``timeout`` seconds."""
    return JobTimeoutError(
        f"Fine-tuning job {job_id} is still {status_of(job)!r} after {timeout:g}s. It goes on on the server: "
        f"wait again (jobs.wait({job_id!r})) or cancel it (jobs.cancel({job_id!r})).",
        job_id=job_id,
        job=job,
    )


def matches(job: Any, statuses: frozenset[str] | None, metadata: Mapping[str, str] | None) -> bool:
    """Whether a listed job passes the ``status`` / ``metadata`` filters."""
    if statuses is not None and status_of(job) not in statuses:
        return False
    if metadata:
        actual = getattr(job, "metadata", None) or {}
        return all(actual.get(k) == v for k, v in metadata.items())
    return True


def status_filter(status: str | Iterable[str] | None) -> frozenset[str] | None:
    """Normalise the ``status`` argument of ``list``."""
    if status is None:
        return None
    return frozenset([status] if isinstance(status, str) else status)


def jobs_page(page_size: int, metadata: Mapping[str, str] | None) -> Callable[[Any, str | None], Any]:
    """The request for one page of jobs after the job ``after`` (``fetch(sdk, after)``); sync or async SDK."""
    from openai import omit

    return lambda sdk, after: sdk.fine_tuning.jobs.list(
        after=after if after is not None else omit, limit=page_size, metadata=metadata if metadata else omit
    )


def events_page(job_id: str, after: str | None, limit: int = EVENTS_PAGE_SIZE) -> Callable[[Any], Any]:
    """The request for one page of a job's events (newest first) after the event ``after``; sync or async SDK."""
    from openai import omit

    return lambda sdk: sdk.fine_tuning.jobs.list_events(job_id, limit=limit, after=after if after else omit)


def oldest_first(events: Sequence[Any]) -> builtins.list[Any]:
    """A job's listed events (newest first, or oldest first from some servers) oldest first, each once."""
    tracker = EventTracker()
    tracker.scan(events)
    return tracker.commit(events)


def update_bar(bar: tqdm[Any], state: JobProgress) -> None:
    """Show ``state`` on a progress bar (step of total steps, status and loss in the postfix)."""
    if state.total_steps:
        bar.total = state.total_steps
    if state.step is not None:
        bar.n = state.step
    bar.set_postfix(state.postfix(), refresh=False)
    bar.refresh()


class JobManager:
    """Create, follow and read the results of fine-tuning jobs (``client.jobs``).

    **Parameters:**

    * ``client`` - a :class:`~finetune_embed.Client` (OpenAI, ``Client.azure(...)``, or compatible).
    * ``sleep`` - how to sleep between polls (default: the client's retry-policy sleep, else ``time.sleep``).
    * ``today`` - the date used for the catalog's shutdown checks (default ``date.today``).
    * ``files`` - the :class:`FileManager` used to upload local data (default: one on the same client).

    >>> job = client.jobs.create("gpt-4.1-mini", "train.jsonl", suffix="support")   # doctest: +SKIP
    >>> job = client.jobs.wait(job.id, timeout=3 * 3600)                             # doctest: +SKIP
    >>> client.jobs.metrics(job.id).train_loss                                       # doctest: +SKIP
    """

    def __init__(
        self,
        client: Client,
        *,
        sleep: Callable[[float], Any] | None = None,
        today: Callable[[], date] | None = None,
        files: FileManager | None = None,
    ) -> None:
        self.client = client
        self._sleep = sleep or client.retry.sleep or time.sleep
        self._today = today or date.today
        self.files = files or FileManager(client, sleep=self._sleep, today=self._today)

    def __repr__(self) -> str:
        return f"JobManager(provider={self.client.provider!r})"

    # --- create ---------------------------------------------------------------------------------------------

    def create(
        self,
        model: str,
        training_file: TrainingFile,
        *,
        validation_file: TrainingFile | None = None,
        method: str | Mapping[str, Any] = "supervised",
        hyperparameters: Mapping[str, Any] | None = None,
        grader: Mapping[str, Any] | None = None,
        suffix: str | None = None,
        seed: int | None = None,
        metadata: Mapping[str, str] | None = None,
        integrations: Sequence[Mapping[str, Any]] | None = None,
        validate: bool = True,
        client_request_id: str | None = None,
    ) -> FineTuningJob:
        """Start a fine-tuning job and return it (status ``validating_files`` or ``queued``).

        * ``training_file`` / ``validation_file``: a file id (or file object), a path to a JSONL file or a
          Dataset; local data is validated for ``model`` and ``method`` (unless ``validate=False``), then
          uploaded (or an identical upload reused) and waited for.
        * ``method``: ``"supervised"``, ``"dpo"`` or ``"reinforcement"`` (then ``grader`` is required), with
          ``hyperparameters`` such as ``{"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 0.5}``
          (DPO: ``beta``); or the API's method object.
        * ``suffix`` (1-64 characters), ``seed`` (0-2147483647), ``metadata`` (<= 15 pairs of yours),
          ``integrations`` (W&B).
        * ``client_request_id``: the job is never created twice. Its metadata carries a client request id
          (``finetune_embed_request``), by default derived from every argument; before any retry, and before
          the first attempt, the server is asked for a job with that id, and one that exists (and has not failed
          or been cancelled) is returned instead of starting another: a timeout after the server acted, or the
          same call made again after a crash, costs nothing twice. Pass a new value (e.g. ``uuid.uuid4().hex``)
          to start a second identical job on purpose.

        Every argument is checked before anything is uploaded (:class:`~finetune_embed.ConfigError`); the model
        is checked against the catalog (:class:`~finetune_embed.UnsupportedModelError` after its shutdown or
        after OpenAI's last day for new jobs, 2027-01-06; a :class:`ModelRetirementWarning` shortly before).
        """
        plan = plan_create(
            model,
            method=method,
            hyperparameters=hyperparameters,
            grader=grader,
            suffix=suffix,
            seed=seed,
            metadata=metadata,
            integrations=integrations,
            provider=self.client.provider,
            on=self._today(),
        )
        check_client_request_id(client_request_id, metadata)
        train_local = is_local_file(training_file, role="training_file")
        valid_local = validation_file is not None and is_local_file(validation_file, role="validation_file")
        params: dict[str, Any] = {
            "model": plan.model,
            "training_file": self._file_id(training_file, train_local, plan, validate, "training"),
            "method": plan.method,
            **plan.extra,
        }
        if validation_file is not None:
            params["validation_file"] = self._file_id(validation_file, valid_local, plan, validate, "validation")
        tag = tag_create(params, client_request_id)

        def find(sdk: openai.OpenAI, retrying: bool) -> FineTuningJob | None:
            return scan_pages(lambda after: tagged_jobs_page(sdk, tag, after), tagged_job(tag, retrying))

        job: FineTuningJob = create_once(
            self.client,
            lambda sdk: sdk.fine_tuning.jobs.create(**params),
            find,
            description="create fine-tuning job",
            look_first=True,
        )
        logger.info("fine-tuning job %s (%s, %s), request %s", job.id, plan.model, plan.method_type, tag)
        return job

    def _file_id(self, value: TrainingFile, local: bool, plan: CreatePlan, validate: bool, role: Role) -> str:
        if not local:
            return file_id_of(value)
        file = self.files.upload(value, model=plan.model, method=plan.method_type, validate=validate, role=role)
        return file.id

    def estimate(
        self,
        training_file: TrainingFile,
        *,
        model: str,
        validation_file: TrainingFile | None = None,
        method: str = "supervised",
        n_epochs: int | str = "auto",
    ) -> JobEstimate:
        """Tokens, epochs and cost of a job before creating it (see :class:`JobEstimate`).

        ``training_file`` may be a path, a Dataset or a file id (downloaded to a temporary file to count).
        """
        from ._estimate import estimate_job

        return estimate_job(
            training_file,
            model=model,
            validation_file=validation_file,
            method=method,
            n_epochs=n_epochs,
            download=self.files.download,
        )

    # --- one job --------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> FineTuningJob:
        """The job as the server has it now. Statuses outside the API's enum (``paused``) are kept as they are."""
        job_path_id(job_id)
        return self.client.request(
            lambda sdk: sdk.fine_tuning.jobs.retrieve(job_id), description=f"retrieve job {job_id}"
        )

    def cancel(self, job_id: str) -> FineTuningJob:
        """Ask the server to cancel the job; returns the job (its status turns ``cancelled``)."""
        job_path_id(job_id)
        return self.client.request(lambda sdk: sdk.fine_tuning.jobs.cancel(job_id), description=f"cancel {job_id}")

    def pause(self, job_id: str) -> FineTuningJob:
        """Pause a running job (status ``paused``); :meth:`resume` continues it."""
        job_path_id(job_id)
        return self.client.request(lambda sdk: sdk.fine_tuning.jobs.pause(job_id), description=f"pause {job_id}")

    def resume(self, job_id: str) -> FineTuningJob:
        """Resume a paused job."""
        job_path_id(job_id)
        return self.client.request(lambda sdk: sdk.fine_tuning.jobs.resume(job_id), description=f"resume {job_id}")

    def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        limit: int | None = None,
        page_size: int = 100,
    ) -> Iterator[FineTuningJob]:
        """The jobs, newest first, across all pages.

        ``status`` keeps jobs in that status (or any of several); ``metadata`` keeps jobs whose metadata has
        all these pairs (sent to the server as a filter and checked again here); ``limit`` stops after that
        many matching jobs.
        """
        statuses = status_filter(status)
        meta = check_metadata(metadata)
        count = 0
        for job in iter_pages(self.client, jobs_page(page_size, meta), description="list fine-tuning jobs"):
            if limit is not None and count >= limit:
                return
            if matches(job, statuses, meta):
                count += 1
                yield job

    def events(self, job_id: str, *, limit: int | None = None) -> builtins.list[FineTuningJobEvent]:
        """The job's events, oldest first; ``limit`` keeps only the newest that many."""

        job_path_id(job_id)
        size = min(EVENTS_PAGE_SIZE, limit or EVENTS_PAGE_SIZE)

        def fetch(sdk: openai.OpenAI, after: str | None) -> Any:
            return events_page(job_id, after, size)(sdk)

        return oldest_first(
            builtins.list(iter_pages(self.client, fetch, description=f"list events of {job_id}", limit=limit))
        )

    def _new_events(self, job_id: str, tracker: EventTracker, *, first_page_only: bool = False) -> builtins.list[Any]:
        collected: builtins.list[Any] = []
        after: str | None = None
        while True:
            page = self.client.request(events_page(job_id, after), description=f"list events of {job_id}")
            data = builtins.list(page.data or [])
            fresh, stop = tracker.scan(data)
            collected.extend(fresh)
            if stop or first_page_only or not data or not page.has_more or data[-1].id == after:
                break
            after = data[-1].id
        return tracker.commit(collected)

    def follow(
        self,
        job_id: str,
        *,
        history: bool = True,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
    ) -> Iterator[FineTuningJobEvent]:
        """Yield the job's events as they appear, each once and oldest first, until the job has ended.

        ``history=False`` skips the events from before the call. Polls with backoff (``poll_interval`` up to
        ``max_poll_interval`` seconds, back to the start when something changes). Ending does not raise for a
        failed or cancelled job: check :meth:`get` afterwards (or use :meth:`wait`). Raises
        :class:`~finetune_embed.JobTimeoutError` after ``timeout`` seconds.
        """
        job_path_id(job_id)
        tracker = EventTracker()
        backoff = PollBackoff(poll_interval, max_poll_interval)
        clock = SleepClock()
        if not history:
            self._new_events(job_id, tracker, first_page_only=True)
        last_status: str | None = None
        while True:
            job = self.get(job_id)
            status = status_of(job)
            events = self._new_events(job_id, tracker)
            yield from events
            if is_terminal(status):
                return
            if events or status != last_status:
                backoff.reset()
            last_status = status
            self._pause(backoff, clock, timeout, job, job_id)

    def _pause(self, backoff: PollBackoff, clock: SleepClock, timeout: float | None, job: Any, job_id: str) -> None:
        self._sleep(next_poll_delay(backoff, clock, timeout, functools.partial(timeout_error, job, job_id)))

    def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        progress: bool | None = None,
    ) -> FineTuningJob:
        """Poll until the job has ended and return it when it succeeded.

        Polls after ``poll_interval`` seconds, then backs off (x1.5 each poll) to ``max_poll_interval``,
        starting again whenever the status changes. A progress bar (when shown, see ``progress``) gives the
        status, step and loss from the job's metrics events. ``paused`` (or any status the library does not
        know) is waited through.

        Raises :class:`~finetune_embed.JobFailedError` (with the server's message, ``.error``),
        :class:`~finetune_embed.JobCancelledError`, or :class:`~finetune_embed.JobTimeoutError` after
        ``timeout`` seconds (the job goes on on the server).
        """
        job_path_id(job_id)
        backoff = PollBackoff(poll_interval, max_poll_interval)
        clock = SleepClock()
        tracker = EventTracker()
        state = JobProgress()
        show = progress_enabled(progress)
        first = True
        with progress_bar(total=None, desc=f"fine-tuning {job_id}", unit="step", progress=progress) as bar:
            while True:
                job = self.get(job_id)
                status = status_of(job)
                changed = status != state.status
                if changed:
                    logger.info("fine-tuning job %s: %s", job_id, status)
                state.update_from_job(job)
                if show:
                    for event in self._new_events(job_id, tracker, first_page_only=first):
                        state.update_from_event(event)
                    update_bar(bar, state)
                if is_terminal(status):
                    return outcome(job)  # type: ignore[no-any-return]
                if changed and not first:
                    backoff.reset()
                first = False
                self._pause(backoff, clock, timeout, job, job_id)

    # --- results --------------------------------------------------------------------------------------------

    def checkpoints(self, job_id: str) -> builtins.list[FineTuningJobCheckpoint]:
        """The job's checkpoints, by step (each with ``metrics`` and a usable ``fine_tuned_model_checkpoint``)."""
        job_path_id(job_id)
        pages = iter_pages(self.client, checkpoints_page(job_id), description=f"list checkpoints of {job_id}")
        items = builtins.list(pages)
        return sorted(items, key=lambda c: getattr(c, "step_number", 0) or 0)

    def metrics(self, job_id: str, *, file_id: str | None = None) -> TrainingMetrics:
        """The job's per-step metrics from its result file (``job.result_files[0]`` unless ``file_id``)."""
        if file_id is not None:
            check_path_id(file_id, argument="file_id")
        job = self.get(job_id)
        file_id = file_id or result_file_of(job, job_id)
        return TrainingMetrics.from_csv(self.files.content(file_id), job_id=job_id, file_id=file_id)

    def delete_model(self, model_id: str) -> ModelDeleted:
        """Delete a fine-tuned model you own (``ft:...`` on OpenAI). Base models cannot be deleted."""
        model_path_id(model_id, self.client.provider)
        return self.client.request(lambda sdk: sdk.models.delete(model_id), description=f"delete model {model_id}")
