"""Fine-tuning on OpenAI and Azure OpenAI: files, jobs, their progress and their results.

    from finetune_embed import Client
    client = Client()                                   # or Client.azure(...)
    job = client.jobs.create("gpt-4.1-mini-2025-04-14", "train.jsonl", suffix="support")
    job = client.jobs.wait(job.id)                     # raises JobFailedError / JobCancelledError / JobTimeoutError
    metrics = client.jobs.metrics(job.id)              # TrainingMetrics: numpy columns, to_pandas(), plot()

:class:`FileManager` (``client.files``) uploads validated, de-duplicated data; :class:`JobManager`
(``client.jobs``) creates, follows and reads jobs; :class:`AsyncJobManager` is the asyncio twin. API objects are
the openai SDK's own types (``FileObject``, ``FineTuningJob``, ``FineTuningJobEvent``,
``FineTuningJobCheckpoint``); statuses and fields the SDK does not know (``paused``) pass through unharmed.
"""

from __future__ import annotations

from ._async_jobs import AsyncJobManager
from ._errors import FileProcessingError, FileProcessingTimeoutError, ResultsUnavailableError
from ._estimate import JobEstimate
from ._files import AsyncFileManager, FileManager
from ._jobs import JobManager
from ._metrics import TrainingMetrics
from ._polling import ACTIVE_STATUSES, TERMINAL_STATUSES, JobProgress, PollBackoff
from ._validate import ModelRetirementWarning

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "AsyncFileManager",
    "AsyncJobManager",
    "FileManager",
    "FileProcessingError",
    "FileProcessingTimeoutError",
    "JobEstimate",
    "JobManager",
    "JobProgress",
    "ModelRetirementWarning",
    "PollBackoff",
    "ResultsUnavailableError",
    "TrainingMetrics",
]
