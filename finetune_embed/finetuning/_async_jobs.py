"""The asyncio twin of :class:`~finetune_embed.finetuning.JobManager` (``async_client.jobs``)."""

from __future__ import annotations

import asyncio
import builtins
import functools
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._idempotent import acreate_once, ascan_pages
from .._ids import check_path_id
from .._logging import get_logger
from .._progress import progress_bar, progress_enabled
from ._files import AsyncFileManager
from ._jobs import (
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    EVENTS_PAGE_SIZE,
    CreatePlan,
    Role,
    TrainingFile,
    check_client_request_id,
    checkpoints_page,
    events_page,
    file_id_of,
    is_local_file,
    job_path_id,
    jobs_page,
    matches,
    model_path_id,
    oldest_first,
    outcome,
    plan_create,
    result_file_of,
    status_filter,
    tag_create,
    tagged_job,
    tagged_jobs_page,
    timeout_error,
    update_bar,
)
from ._metrics import TrainingMetrics
from ._pages import aiter_pages
from ._polling import (
    EventTracker,
    JobProgress,
    PollBackoff,
    SleepClock,
    await_sleep,
    is_terminal,
    next_poll_delay,
    status_of,
)
from ._validate import check_metadata

if TYPE_CHECKING:
    import openai
    from openai.types import ModelDeleted
    from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
    from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

    from .._client import AsyncClient
    from ._estimate import JobEstimate

__all__ = ["AsyncJobManager"]

logger = get_logger("finetuning")


class AsyncJobManager:
    """Create, follow and wait for fine-tuning jobs with an :class:`~finetune_embed.AsyncClient`.

    Same methods, arguments and behaviour as :class:`~finetune_embed.finetuning.JobManager` (``create``,
    ``estimate``, ``get``, ``list``, ``cancel``, ``pause``, ``resume``, ``events``, ``follow``, ``wait``,
    ``checkpoints``, ``metrics``, ``delete_model``; a test compares the two classes' signatures); ``sleep`` may be
    a coroutine function (default: the client's retry-policy sleep, else ``asyncio.sleep``).

    >>> job = await async_client.jobs.create("gpt-4.1-mini", "train.jsonl")     # doctest: +SKIP
    >>> async for event in async_client.jobs.follow(job.id):                    # doctest: +SKIP
    ...     print(event.message)
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        sleep: Callable[[float], Any] | None = None,
        today: Callable[[], date] | None = None,
        files: AsyncFileManager | None = None,
    ) -> None:
        self.client = client
        self._sleep = sleep or client.retry.sleep or asyncio.sleep
        self._today = today or date.today
        self.files = files or AsyncFileManager(client, sleep=self._sleep, today=self._today)

    def __repr__(self) -> str:
        return f"AsyncJobManager(provider={self.client.provider!r})"

    async def create(
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
        """See :meth:`JobManager.create`."""
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
            "training_file": await self._file_id(training_file, train_local, plan, validate, "training"),
            "method": plan.method,
            **plan.extra,
        }
        if validation_file is not None:
            params["validation_file"] = await self._file_id(validation_file, valid_local, plan, validate, "validation")
        tag = tag_create(params, client_request_id)

        async def find(sdk: openai.AsyncOpenAI, retrying: bool) -> FineTuningJob | None:
            return await ascan_pages(lambda after: tagged_jobs_page(sdk, tag, after), tagged_job(tag, retrying))

        job: FineTuningJob = await acreate_once(
            self.client,
            lambda sdk: sdk.fine_tuning.jobs.create(**params),
            find,
            description="create fine-tuning job",
            look_first=True,
        )
        logger.info("fine-tuning job %s (%s, %s), request %s", job.id, plan.model, plan.method_type, tag)
        return job

    async def _file_id(self, value: TrainingFile, local: bool, plan: CreatePlan, validate: bool, role: Role) -> str:
        if not local:
            return file_id_of(value)
        file = await self.files.upload(value, model=plan.model, method=plan.method_type, validate=validate, role=role)
        return file.id

    async def get(self, job_id: str) -> FineTuningJob:
        """See :meth:`JobManager.get`."""
        job_path_id(job_id)
        return await self.client.request(
            lambda sdk: sdk.fine_tuning.jobs.retrieve(job_id), description=f"retrieve job {job_id}"
        )

    async def cancel(self, job_id: str) -> FineTuningJob:
        """See :meth:`JobManager.cancel`."""
        job_path_id(job_id)
        return await self.client.request(
            lambda sdk: sdk.fine_tuning.jobs.cancel(job_id), description=f"cancel {job_id}"
        )

    async def pause(self, job_id: str) -> FineTuningJob:
        """See :meth:`JobManager.pause`."""
        job_path_id(job_id)
        return await self.client.request(lambda sdk: sdk.fine_tuning.jobs.pause(job_id), description=f"pause {job_id}")

    async def resume(self, job_id: str) -> FineTuningJob:
        """See :meth:`JobManager.resume`."""
        job_path_id(job_id)
        return await self.client.request(
            lambda sdk: sdk.fine_tuning.jobs.resume(job_id), description=f"resume {job_id}"
        )

    async def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        limit: int | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[FineTuningJob]:
        """See :meth:`JobManager.list` (an async iterator)."""
        statuses = status_filter(status)
        meta = check_metadata(metadata)
        count = 0
        async for job in aiter_pages(self.client, jobs_page(page_size, meta), description="list fine-tuning jobs"):
            if limit is not None and count >= limit:
                return
            if matches(job, statuses, meta):
                count += 1
                yield job

    async def events(self, job_id: str, *, limit: int | None = None) -> builtins.list[FineTuningJobEvent]:
        """See :meth:`JobManager.events`."""
        job_path_id(job_id)
        size = min(EVENTS_PAGE_SIZE, limit or EVENTS_PAGE_SIZE)

        def fetch(sdk: openai.AsyncOpenAI, after: str | None) -> Any:
            return events_page(job_id, after, size)(sdk)

        pages = aiter_pages(self.client, fetch, description=f"list events of {job_id}", limit=limit)
        return oldest_first([event async for event in pages])

    async def _new_events(
        self, job_id: str, tracker: EventTracker, *, first_page_only: bool = False
    ) -> builtins.list[Any]:
        collected: builtins.list[Any] = []
        after: str | None = None
        while True:
            page = await self.client.request(events_page(job_id, after), description=f"list events of {job_id}")
            data = builtins.list(page.data or [])
            fresh, stop = tracker.scan(data)
            collected.extend(fresh)
            if stop or first_page_only or not data or not page.has_more or data[-1].id == after:
                break
            after = data[-1].id
        return tracker.commit(collected)

    async def _pause(
        self, backoff: PollBackoff, clock: SleepClock, timeout: float | None, job: Any, job_id: str
    ) -> None:
        delay = next_poll_delay(backoff, clock, timeout, functools.partial(timeout_error, job, job_id))
        await await_sleep(self._sleep, delay)

    async def follow(
        self,
        job_id: str,
        *,
        history: bool = True,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
    ) -> AsyncIterator[FineTuningJobEvent]:
        """See :meth:`JobManager.follow` (an async iterator)."""
        job_path_id(job_id)
        tracker = EventTracker()
        backoff = PollBackoff(poll_interval, max_poll_interval)
        clock = SleepClock()
        if not history:
            await self._new_events(job_id, tracker, first_page_only=True)
        last_status: str | None = None
        while True:
            job = await self.get(job_id)
            status = status_of(job)
            events = await self._new_events(job_id, tracker)
            for event in events:
                yield event
            if is_terminal(status):
                return
            if events or status != last_status:
                backoff.reset()
            last_status = status
            await self._pause(backoff, clock, timeout, job, job_id)

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        progress: bool | None = None,
    ) -> FineTuningJob:
        """See :meth:`JobManager.wait`."""
        job_path_id(job_id)
        backoff = PollBackoff(poll_interval, max_poll_interval)
        clock = SleepClock()
        tracker = EventTracker()
        state = JobProgress()
        show = progress_enabled(progress)
        first = True
        with progress_bar(total=None, desc=f"fine-tuning {job_id}", unit="step", progress=progress) as bar:
            while True:
                job = await self.get(job_id)
                status = status_of(job)
                changed = status != state.status
                if changed:
                    logger.info("fine-tuning job %s: %s", job_id, status)
                state.update_from_job(job)
                if show:
                    for event in await self._new_events(job_id, tracker, first_page_only=first):
                        state.update_from_event(event)
                    update_bar(bar, state)
                if is_terminal(status):
                    return outcome(job)  # type: ignore[no-any-return]
                if changed and not first:
                    backoff.reset()
                first = False
                await self._pause(backoff, clock, timeout, job, job_id)

    # --- results --------------------------------------------------------------------------------------------

    async def checkpoints(self, job_id: str) -> builtins.list[FineTuningJobCheckpoint]:
        """See :meth:`JobManager.checkpoints`."""
        job_path_id(job_id)
        pages = aiter_pages(self.client, checkpoints_page(job_id), description=f"list checkpoints of {job_id}")
        items = [checkpoint async for checkpoint in pages]
        return sorted(items, key=lambda c: getattr(c, "step_number", 0) or 0)

    async def metrics(self, job_id: str, *, file_id: str | None = None) -> TrainingMetrics:
        """See :meth:`JobManager.metrics`."""
        if file_id is not None:
            check_path_id(file_id, argument="file_id")
        job = await self.get(job_id)
        file_id = file_id or result_file_of(job, job_id)
        content = await self.files.content(file_id)
        return TrainingMetrics.from_csv(content, job_id=job_id, file_id=file_id)

    async def delete_model(self, model_id: str) -> ModelDeleted:
        """See :meth:`JobManager.delete_model`."""
        model_path_id(model_id, self.client.provider)
        return await self.client.request(
            lambda sdk: sdk.models.delete(model_id), description=f"delete model {model_id}"
        )

    async def estimate(
        self,
        training_file: TrainingFile,
        *,
        model: str,
        validation_file: TrainingFile | None = None,
        method: str = "supervised",
        n_epochs: int | str = "auto",
    ) -> JobEstimate:
        """See :meth:`JobManager.estimate`. A file id is downloaded first; counting runs in a worker thread."""
        from ._estimate import check_estimate, estimate_job

        check_estimate(method, n_epochs)
        with tempfile.TemporaryDirectory(prefix="finetune_embed-estimate-") as tmp:
            train = await self._local_copy(training_file, Path(tmp), "training_file")
            valid = None
            if validation_file is not None:
                valid = await self._local_copy(validation_file, Path(tmp), "validation_file")
            return await asyncio.to_thread(
                estimate_job, train, model=model, validation_file=valid, method=method, n_epochs=n_epochs
            )

    async def _local_copy(self, source: TrainingFile, tmp: Path, role: str) -> Any:
        if is_local_file(source, role=role):
            return source
        return await self.files.download(file_id_of(source), tmp / f"{role}.jsonl")
