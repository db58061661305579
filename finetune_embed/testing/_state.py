"""The fake's stores: files, uploads, fine-tuning jobs, fine-tuned models and batches, behind one lock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fake import FakeOpenAI

__all__ = ["BatchRecord", "FileRecord", "JobRecord", "JobSpeed", "ModelRecord", "Store", "UploadRecord"]


@dataclass(frozen=True)
class JobSpeed:
    """Fake seconds each phase takes. Jobs: ``validating`` (files) → ``queued`` → one ``per_step`` per training
    step → ``finalizing`` → succeeded. Batches: ``batch_validating`` → ``per_batch_line`` per request line →
    ``batch_finalizing`` → completed; a cancelled batch stays ``cancelling`` for ``batch_cancelling``."""

    validating: float = 10.0
    queued: float = 10.0
    per_step: float = 1.0
    finalizing: float = 10.0
    batch_validating: float = 5.0
    per_batch_line: float = 0.1
    batch_finalizing: float = 5.0
    batch_cancelling: float = 10.0


@dataclass
class FileRecord:
    """A stored file."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int
    seq: int
    expires_at: int | None = None
    status: str = "processed"

    def to_api(self) -> dict[str, Any]:
        """The ``OpenAIFile`` object."""
        out: dict[str, Any] = {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": self.status,
            "status_details": None,
        }
        out["expires_at"] = self.expires_at
        return out


@dataclass
class UploadRecord:
    """An upload in progress (Uploads API)."""

    id: str
    filename: str
    purpose: str
    nbytes: int
    mime_type: str
    created_at: int
    expires_at: int
    status: str = "pending"
    parts: dict[str, bytes] = field(default_factory=dict)
    file_expires_after: dict[str, Any] | None = None
    file: FileRecord | None = None


@dataclass
class ModelRecord:
    """A fine-tuned model the organization owns."""

    id: str
    created: int
    owned_by: str


@dataclass
class JobRecord:
    """A fine-tuning job and its timeline (advanced by :meth:`Store.tick`)."""

    id: str
    seq: int
    created_at: int
    model: str
    base_model: str
    training_file: str
    validation_file: str | None
    suffix: str | None
    seed: int
    method: dict[str, Any]
    metadata: dict[str, str] | None
    integrations: list[dict[str, Any]] | None
    status: str = "validating_files"
    phase_ends_at: float = 0.0  # when the current phase (or the next training step) completes
    paused_remaining: float | None = None  # while paused: what was left of the current phase
    error: dict[str, Any] | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    trained_tokens: int | None = None
    estimated_finish: int | None = None
    result_files: list[str] = field(default_factory=list)
    resolved: dict[str, Any] = field(default_factory=dict)  # hyperparameters once known
    n_examples: int = 0
    example_tokens: int = 0
    total_steps: int = 0
    steps_per_epoch: int = 0
    step: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    checkpoints: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    metrics: list[dict[str, float | int | None]] = field(default_factory=list)
    short_id: str = ""
    training_content: bytes | None = None  # the training file as validated (what chat completions answer from)


@dataclass
class BatchRecord:
    """A batch and its timeline."""

    id: str
    seq: int
    created_at: int
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    output_expires_after: dict[str, Any] | None
    status: str = "validating"
    phase_ends_at: float = 0.0
    lines: list[dict[str, Any]] = field(default_factory=list)  # parsed request lines
    results: list[dict[str, Any]] = field(default_factory=list)  # output lines done so far
    errors_out: list[dict[str, Any]] = field(default_factory=list)  # error-file lines so far
    processed: int = 0
    in_progress_at: int | None = None
    started_processing: float = 0.0
    timestamps: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    input_tokens: int = 0
    model: str | None = None


class Store:
    """All server-side state, guarded by one re-entrant lock (``with store.lock:``)."""

    def __init__(self, fake: FakeOpenAI, speed: JobSpeed) -> None:
        self.fake = fake
        self.speed = speed
        self.lock = threading.RLock()
        self.files: dict[str, FileRecord] = {}
        self.uploads: dict[str, UploadRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.models: dict[str, ModelRecord] = {}
        self.deleted_models: set[str] = set()
        self.batches: dict[str, BatchRecord] = {}
        self._seq = 0

    def next_seq(self) -> int:
        """A monotonically increasing number (orders objects created in the same second)."""
        with self.lock:
            self._seq += 1
            return self._seq

    def now(self) -> float:
        """The fake time."""
        return self.fake.clock.now()

    def tick(self) -> None:
        """Run every job and batch up to the current time."""
        from ._batches import advance_batch
        from ._jobs import advance_job

        with self.lock:
            now = self.now()
            for job in list(self.jobs.values()):
                advance_job(self, job, now)
            for batch in list(self.batches.values()):
                advance_batch(self, batch, now)
            for upload in self.uploads.values():
                if upload.status == "pending" and now >= upload.expires_at:
                    upload.status = "expired"

    def busy(self) -> bool:
        """Whether a job (not paused) or a batch is still in progress."""
        with self.lock:
            return any(j.status in ("validating_files", "queued", "running") for j in self.jobs.values()) or any(
                b.status in ("validating", "in_progress", "finalizing", "cancelling") for b in self.batches.values()
            )

    def add_file(
        self,
        filename: str,
        purpose: str,
        content: bytes,
        *,
        expires_at: int | None = None,
        created_at: int | None = None,
    ) -> FileRecord:
        """Store a new file."""
        with self.lock:
            rec = FileRecord(
                id=self.fake.new_id("file-", 22),
                filename=filename,
                purpose=purpose,
                content=content,
                created_at=int(self.now()) if created_at is None else created_at,
                seq=self.next_seq(),
                expires_at=expires_at,
            )
            self.files[rec.id] = rec
            return rec
