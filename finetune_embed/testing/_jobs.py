"""``/v1/fine_tuning/jobs``: create (validated like the service), list, retrieve, cancel, pause, resume, events
and checkpoints; the lifecycle runs on the fake clock (see :class:`JobSpeed`)."""

from __future__ import annotations

import base64
import math
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..catalog import default_catalog
from ._errors import bad_request, not_found
from ._http import FakeRequest, FakeResponse
from ._pagination import page, parse_limit
from ._state import JobRecord, ModelRecord, Store
from ._training import TrainingFileError, validate_training_file
from ._validate import (
    check_enum,
    check_int,
    check_metadata,
    check_number,
    check_object,
    check_string,
    check_unknown,
    require,
)

if TYPE_CHECKING:
    from ._fake import FakeOpenAI

__all__ = [
    "CSV_HEADER",
    "advance_job",
    "handle_cancel_job",
    "handle_create_job",
    "handle_list_checkpoints",
    "handle_list_events",
    "handle_list_jobs",
    "handle_pause_job",
    "handle_resume_job",
    "handle_retrieve_job",
]

CREATE_KEYS = (
    "model",
    "training_file",
    "hyperparameters",
    "suffix",
    "validation_file",
    "integrations",
    "seed",
    "method",
    "metadata",
)
METHODS = ("supervised", "dpo", "reinforcement")
GRADER_TYPES = ("string_check", "text_similarity", "python", "score_model", "multi")
CSV_HEADER = (
    "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy,train_mean_reward,full_valid_loss,"
    "full_valid_mean_token_accuracy"
)
KEEP_CHECKPOINTS = 3
TERMINAL = ("succeeded", "failed", "cancelled")


# --- request validation ---------------------------------------------------------------------------------------


def _hyperparameters(value: Any, param: str, method: str) -> dict[str, Any]:
    obj = check_object(value, param)
    keys = ["batch_size", "learning_rate_multiplier", "n_epochs"]
    if method == "dpo":
        keys.append("beta")
    if method == "reinforcement":
        keys += ["reasoning_effort", "compute_multiplier", "eval_interval", "eval_samples"]
    check_unknown(obj, keys, prefix=f"{param}.")
    out: dict[str, Any] = {}
    if "batch_size" in obj:
        out["batch_size"] = check_int(obj["batch_size"], f"{param}.batch_size", minimum=1, maximum=256, auto=True)
    if "learning_rate_multiplier" in obj:
        out["learning_rate_multiplier"] = check_number(
            obj["learning_rate_multiplier"],
            f"{param}.learning_rate_multiplier",
            minimum=0,
            exclusive_minimum=True,
            auto=True,
        )
    if "n_epochs" in obj:
        out["n_epochs"] = check_int(obj["n_epochs"], f"{param}.n_epochs", minimum=1, maximum=50, auto=True)
    if "beta" in obj:
        out["beta"] = check_number(
            obj["beta"], f"{param}.beta", minimum=0, maximum=2, exclusive_minimum=True, auto=True
        )
    if "reasoning_effort" in obj:
        out["reasoning_effort"] = check_enum(
            obj["reasoning_effort"], ["default", "low", "medium", "high"], f"{param}.reasoning_effort"
        )
    if "compute_multiplier" in obj:
        out["compute_multiplier"] = check_number(
            obj["compute_multiplier"],
            f"{param}.compute_multiplier",
            minimum=1e-5,
            maximum=10,
            exclusive_minimum=True,
            auto=True,
        )
    for key in ("eval_interval", "eval_samples"):
        if key in obj:
            out[key] = check_int(obj[key], f"{param}.{key}", minimum=1, auto=True)
    return out


def _method(value: Any) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    obj = check_object(value, "method")
    check_unknown(obj, ("type", *METHODS), prefix="method.")
    require(obj, "type", prefix="method.")
    kind = check_enum(obj["type"], METHODS, "method.type")
    for other in METHODS:
        if other != kind and obj.get(other) is not None:
            raise bad_request(
                f"Invalid 'method.{other}': the method type is '{kind}', so only 'method.{kind}' may be given.",
                param=f"method.{other}",
                code="invalid_value",
            )
    config = obj.get(kind)
    hyper: dict[str, Any] = {}
    grader = None
    if config is not None:
        cfg = check_object(config, f"method.{kind}")
        allowed = ("hyperparameters", "grader") if kind == "reinforcement" else ("hyperparameters",)
        check_unknown(cfg, allowed, prefix=f"method.{kind}.")
        if cfg.get("hyperparameters") is not None:
            hyper = _hyperparameters(cfg["hyperparameters"], f"method.{kind}.hyperparameters", kind)
        if kind == "reinforcement":
            require(cfg, "grader", prefix="method.reinforcement.")
            grader = check_object(cfg["grader"], "method.reinforcement.grader")
            require(grader, "type", prefix="method.reinforcement.grader.")
            check_enum(grader["type"], GRADER_TYPES, "method.reinforcement.grader.type")
    elif kind == "reinforcement":
        raise bad_request(
            "Missing required parameter: 'method.reinforcement'.",
            param="method.reinforcement",
            code="missing_required_parameter",
        )
    return kind, hyper, grader


def _integrations(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_request(
            "Invalid type for 'integrations': expected an array, but got something else instead.",
            param="integrations",
            code="invalid_type",
        )
    out = []
    for i, item in enumerate(value):
        param = f"integrations[{i}]"
        obj = check_object(item, param)
        check_unknown(obj, ("type", "wandb"), prefix=f"{param}.")
        require(obj, "type", "wandb", prefix=f"{param}.")
        check_enum(obj["type"], ["wandb"], f"{param}.type")
        wandb = check_object(obj["wandb"], f"{param}.wandb")
        check_unknown(wandb, ("project", "name", "entity", "tags"), prefix=f"{param}.wandb.")
        require(wandb, "project", prefix=f"{param}.wandb.")
        check_string(wandb["project"], f"{param}.wandb.project")
        for key in ("name", "entity"):
            check_string(wandb.get(key), f"{param}.wandb.{key}", nullable=True)
        tags = wandb.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise bad_request(
                f"Invalid type for '{param}.wandb.tags': expected an array of strings.",
                param=f"{param}.wandb.tags",
                code="invalid_type",
            )
        out.append({"type": "wandb", "wandb": dict(wandb)})
    return out


def _training_file(store: Store, file_id: Any, param: str) -> str:
    check_string(file_id, param, min_length=1)
    assert isinstance(file_id, str)
    with store.lock:
        rec = store.files.get(file_id)
    if rec is None:
        raise bad_request(f"invalid {param}: {file_id}", param=param, code="invalid_file_id")
    if rec.purpose != "fine-tune":
        raise bad_request(
            f"File {file_id} has purpose '{rec.purpose}'; fine-tuning needs a file uploaded with purpose 'fine-tune'.",
            param=param,
            code="invalid_file_purpose",
        )
    return file_id


def handle_create_job(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/fine_tuning/jobs``."""
    body = req.json_object()
    check_unknown(body, CREATE_KEYS)
    require(body, "model", "training_file")
    model = check_string(body["model"], "model", min_length=1)
    assert isinstance(model, str)
    suffix = check_string(body.get("suffix"), "suffix", min_length=1, max_length=64, nullable=True)
    seed = body.get("seed")
    if seed is not None:
        seed = check_int(seed, "seed", minimum=0, maximum=2147483647)
    metadata = check_metadata(body.get("metadata"))
    integrations = _integrations(body.get("integrations"))
    check_string(body.get("validation_file"), "validation_file", nullable=True)
    legacy: dict[str, Any] = {}
    if body.get("hyperparameters") is not None:
        legacy = _hyperparameters(body["hyperparameters"], "hyperparameters", "supervised")
    kind, hyper, grader = _method(body["method"]) if body.get("method") is not None else ("supervised", {}, None)
    if legacy and body.get("method") is not None:
        raise bad_request(
            "Specify hyperparameters either in 'hyperparameters' (deprecated) or in 'method', not both.",
            param="hyperparameters",
        )
    hyper = hyper or legacy
    store = fake.store
    catalog = default_catalog()
    base = catalog.base_model_name(model)
    with store.lock:
        owned = model in store.models
    info = catalog.find_fine_tune_model(base)
    if info is None or (model.startswith("ft:") and not owned):
        raise bad_request(
            f"Model {model} is not available for fine-tuning or does not exist.",
            param="model",
            code="model_not_available",
        )
    day = datetime.fromtimestamp(store.now(), UTC).date()
    availability = catalog.availability(info.name, on=day)
    if not availability.ok:
        raise bad_request(
            f"Model {model} is not available for fine-tuning: {availability.message}",
            param="model",
            code="model_not_available",
        )
    if kind not in info.methods:
        raise bad_request(
            f"Model {model} does not support the '{kind}' fine-tuning method (it supports: "
            f"{', '.join(sorted(info.methods))}).",
            param="method.type",
            code="invalid_value",
        )
    training_file = _training_file(store, body["training_file"], "training_file")
    validation_file = body.get("validation_file")
    if validation_file is not None:
        validation_file = _training_file(store, validation_file, "validation_file")
    now = store.now()
    with store.lock:
        job = JobRecord(
            id=fake.new_id("ftjob-", 24),
            seq=store.next_seq(),
            created_at=int(now),
            model=info.name if not model.startswith("ft:") else model,
            base_model=info.name,
            training_file=training_file,
            validation_file=validation_file,
            suffix=suffix,
            seed=int(seed) if seed is not None else int(fake.random() * 2147483647),
            method={"type": kind, "hyperparameters": hyper, "grader": grader},
            metadata=metadata,
            integrations=integrations,
            phase_ends_at=now + store.speed.validating,
            short_id=fake.new_id("", 8),
        )
        store.jobs[job.id] = job
        _event(fake, job, now, f"Created fine-tuning job: {job.id}")
        files = training_file + (f" and validation file: {validation_file}" if validation_file else "")
        _event(fake, job, now, f"Validating training file: {files}")
        return FakeResponse.json(job_to_api(fake, job))


# --- the lifecycle ----------------------------------------------------------------------------------------------


def _event(
    fake: FakeOpenAI,
    job: JobRecord,
    at: float,
    message: str,
    *,
    level: str = "info",
    data: dict[str, Any] | None = None,
) -> None:
    job.events.append(
        {
            "id": fake.new_id("ftevent-", 24),
            "object": "fine_tuning.job.event",
            "created_at": int(at),
            "level": level,
            "message": message,
            "type": "metrics" if data is not None else "message",
            "data": data if data is not None else {},
        }
    )


def _default_epochs(n: int) -> int:
    if n * 3 < 100:
        return min(25, max(1, 100 // n))
    if n * 3 > 25_000:
        return max(1, 25_000 // n)
    return 3


def _resolve(job: JobRecord) -> None:
    given = job.method["hyperparameters"]
    n = job.n_examples
    out: dict[str, Any] = {
        "batch_size": given.get("batch_size", "auto"),
        "learning_rate_multiplier": given.get("learning_rate_multiplier", "auto"),
        "n_epochs": given.get("n_epochs", "auto"),
    }
    if out["batch_size"] == "auto":
        out["batch_size"] = max(1, min(256, round(n * 0.002)))
    if out["learning_rate_multiplier"] == "auto":
        out["learning_rate_multiplier"] = 1.8
    if out["n_epochs"] == "auto":
        out["n_epochs"] = _default_epochs(n)
    if job.method["type"] == "dpo":
        beta = given.get("beta", "auto")
        out["beta"] = 0.1 if beta == "auto" else beta
    for key in ("reasoning_effort", "compute_multiplier", "eval_interval", "eval_samples"):
        if key in given:
            out[key] = given[key]
    job.resolved = out
    job.steps_per_epoch = math.ceil(n / int(out["batch_size"]))
    job.total_steps = job.steps_per_epoch * int(out["n_epochs"])


def _fail(fake: FakeOpenAI, job: JobRecord, at: float, code: str, message: str, param: str | None) -> None:
    job.status = "failed"
    job.error = {"code": code, "message": message, "param": param}
    job.finished_at = int(at)
    job.estimated_finish = None
    prefix = "The job failed due to a file format error in the training file. " if param else ""
    _event(fake, job, at, prefix + message, level="error")


def _validate_files(fake: FakeOpenAI, store: Store, job: JobRecord, at: float) -> bool:
    info = default_catalog().fine_tune_model(job.base_model, warn=False)
    max_tokens = info.max_example_tokens
    for param, file_id in (("training_file", job.training_file), ("validation_file", job.validation_file)):
        if file_id is None:
            continue
        rec = store.files.get(file_id)
        if rec is None:
            _fail(
                fake,
                job,
                at,
                "invalid_training_file",
                f"The file {file_id} was deleted before it was validated.",
                param,
            )
            return False
        try:
            stats = validate_training_file(
                rec.content,
                method=job.method["type"],
                prompt_completion=info.prompt_completion,
                encoding=info.encoding,
                min_examples=10 if param == "training_file" else 1,
                label="Training" if param == "training_file" else "Validation",
            )
        except TrainingFileError as err:
            _fail(fake, job, at, err.code, err.message, param)
            return False
        if param == "training_file":
            job.training_content = rec.content
            job.n_examples = stats.n_examples
            job.example_tokens = sum(min(t, max_tokens) if max_tokens else t for t in stats.tokens)
    return True


def _metrics(job: JobRecord, step: int) -> dict[str, float | int | None]:
    rng = random.Random(f"{job.id}:{job.seed}:{step}")
    progress = step / max(1, job.total_steps)
    loss = 0.12 + 2.2 * math.exp(-4.0 * progress) + 0.06 * (rng.random() - 0.5)
    acc = min(0.99, max(0.0, 1.0 - loss / 2.6 + 0.02 * (rng.random() - 0.5)))
    out: dict[str, float | int | None] = {
        "step": step,
        "train_loss": round(loss, 5),
        "train_mean_token_accuracy": round(acc, 5),
        "valid_loss": None,
        "valid_mean_token_accuracy": None,
        "full_valid_loss": None,
        "full_valid_mean_token_accuracy": None,
    }
    if job.validation_file:
        vloss = loss * 1.06 + 0.04 * (rng.random() - 0.5)
        out["valid_loss"] = round(vloss, 5)
        out["valid_mean_token_accuracy"] = round(min(0.99, max(0.0, 1.0 - vloss / 2.6)), 5)
        if step == job.total_steps:
            out["full_valid_loss"] = round(vloss * 1.01, 5)
            out["full_valid_mean_token_accuracy"] = out["valid_mean_token_accuracy"]
    return out


def _ft_name(fake: FakeOpenAI, job: JobRecord) -> str:
    org = fake.organization.removeprefix("org-")
    return f"ft:{job.base_model}:{org}:{job.suffix or ''}:{job.short_id}"


def _csv(job: JobRecord) -> bytes:
    def cell(v: float | int | None) -> str:
        return "" if v is None else str(v)

    rows = [CSV_HEADER]
    for m in job.metrics:
        rows.append(
            ",".join(
                cell(v)
                for v in (
                    m["step"],
                    m["train_loss"],
                    m["train_mean_token_accuracy"],
                    m["valid_loss"],
                    m["valid_mean_token_accuracy"],
                    None,
                    m["full_valid_loss"],
                    m["full_valid_mean_token_accuracy"],
                )
            )
        )
    return base64.b64encode(("\n".join(rows) + "\n").encode("utf-8"))


def _step(fake: FakeOpenAI, store: Store, job: JobRecord, at: float) -> None:
    job.step += 1
    m = _metrics(job, job.step)
    job.metrics.append(m)
    text = f"Step {job.step}/{job.total_steps}: training loss={m['train_loss']:.4f}"
    if m["valid_loss"] is not None:
        text += f", validation loss={m['valid_loss']:.4f}"
    data = {k: v for k, v in m.items() if v is not None}
    data["total_steps"] = job.total_steps
    _event(fake, job, at, text, data=data)
    if job.step % job.steps_per_epoch == 0:
        epoch = job.step // job.steps_per_epoch
        job.checkpoints.append(
            {
                "id": fake.new_id("ftckpt-", 24),
                "object": "fine_tuning.job.checkpoint",
                "created_at": int(at),
                "fine_tuned_model_checkpoint": f"{_ft_name(fake, job)}:ckpt-step-{job.step}",
                "fine_tuning_job_id": job.id,
                "step_number": job.step,
                "metrics": {k: v for k, v in m.items() if v is not None},
            }
        )
        del job.checkpoints[:-KEEP_CHECKPOINTS]
        _event(fake, job, at, f"Checkpoint created at step {job.step} (epoch {epoch})")


def advance_job(store: Store, job: JobRecord, now: float) -> None:
    """Run ``job`` through every transition due by ``now`` (timestamps are the scheduled times)."""
    fake = store.fake
    speed = store.speed
    while job.status in ("validating_files", "queued", "running") and now >= job.phase_ends_at:
        at = job.phase_ends_at
        if job.status == "validating_files":
            if not _validate_files(fake, store, job, at):
                return
            _resolve(job)
            job.status = "queued"
            job.phase_ends_at = at + speed.queued
            _event(fake, job, at, "Files validated, moving job to queued state")
        elif job.status == "queued":
            job.status = "running"
            job.phase_ends_at = at + speed.per_step
            job.estimated_finish = int(at + job.total_steps * speed.per_step + speed.finalizing)
            _event(fake, job, at, "Fine-tuning job started")
        elif job.step < job.total_steps:
            _step(fake, store, job, at)
            job.phase_ends_at = at + (speed.per_step if job.step < job.total_steps else speed.finalizing)
        else:
            _succeed(fake, store, job, at)


def _succeed(fake: FakeOpenAI, store: Store, job: JobRecord, at: float) -> None:
    name = _ft_name(fake, job)
    result = store.add_file("step_metrics.csv", "fine-tune-results", _csv(job), created_at=int(at))
    job.result_files = [result.id]
    job.fine_tuned_model = name
    job.trained_tokens = job.example_tokens * int(job.resolved["n_epochs"])
    job.status = "succeeded"
    job.finished_at = int(at)
    job.estimated_finish = None
    store.models[name] = ModelRecord(name, int(at), fake.organization)
    for ckpt in job.checkpoints:
        store.models.setdefault(
            ckpt["fine_tuned_model_checkpoint"],
            ModelRecord(ckpt["fine_tuned_model_checkpoint"], int(at), fake.organization),
        )
    _event(fake, job, at, f"New fine-tuned model created: {name}")
    _event(fake, job, at, "The job has successfully completed")


# --- responses --------------------------------------------------------------------------------------------------


def job_to_api(fake: FakeOpenAI, job: JobRecord) -> dict[str, Any]:
    """The ``FineTuningJob`` object."""
    kind = job.method["type"]
    hyper = (
        dict(job.resolved)
        if job.resolved
        else {
            "batch_size": job.method["hyperparameters"].get("batch_size", "auto"),
            "learning_rate_multiplier": job.method["hyperparameters"].get("learning_rate_multiplier", "auto"),
            "n_epochs": job.method["hyperparameters"].get("n_epochs", "auto"),
            **{
                k: v
                for k, v in job.method["hyperparameters"].items()
                if k not in ("batch_size", "n_epochs", "learning_rate_multiplier")
            },
        }
    )
    if kind == "dpo" and "beta" not in hyper:
        hyper["beta"] = "auto"
    common = {k: hyper[k] for k in ("batch_size", "learning_rate_multiplier", "n_epochs")}
    method_cfg: dict[str, Any] = {"hyperparameters": hyper}
    if kind == "reinforcement":
        method_cfg["grader"] = job.method["grader"]
    return {
        "id": job.id,
        "object": "fine_tuning.job",
        "created_at": job.created_at,
        "error": job.error,
        "fine_tuned_model": job.fine_tuned_model,
        "finished_at": job.finished_at,
        "hyperparameters": common,
        "model": job.model,
        "organization_id": fake.organization,
        "result_files": list(job.result_files),
        "seed": job.seed,
        "status": job.status,
        "trained_tokens": job.trained_tokens,
        "training_file": job.training_file,
        "validation_file": job.validation_file,
        "integrations": job.integrations,
        "estimated_finish": job.estimated_finish,
        "method": {"type": kind, kind: method_cfg},
        "metadata": job.metadata,
        "user_provided_suffix": job.suffix,
    }


def _get_job(fake: FakeOpenAI, job_id: str) -> JobRecord:
    job = fake.store.jobs.get(job_id)
    if job is None:
        raise not_found(f"Could not find fine-tuning job {job_id}.", param="fine_tuning_job_id", code="job_not_found")
    return job


def handle_list_jobs(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/fine_tuning/jobs`` (``after``, ``limit`` ≤ 100, ``metadata[k]=v`` filters)."""
    limit = parse_limit(req, default=20, maximum=100)
    wanted = {
        k[len("metadata[") : -1]: v[0] for k, v in req.query.items() if k.startswith("metadata[") and k.endswith("]")
    }
    null_metadata = req.q("metadata") == "null"
    with fake.store.lock:
        jobs = sorted(fake.store.jobs.values(), key=lambda j: (j.created_at, j.seq), reverse=True)
        jobs = [
            j
            for j in jobs
            if (not null_metadata or j.metadata is None)
            and all((j.metadata or {}).get(k) == v for k, v in wanted.items())
        ]
        items = [job_to_api(fake, j) for j in jobs]
    return FakeResponse.json(page(items, after=req.q("after"), limit=limit, ids=False))


def handle_retrieve_job(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/fine_tuning/jobs/{id}``."""
    with fake.store.lock:
        return FakeResponse.json(job_to_api(fake, _get_job(fake, req.params["job_id"])))


def handle_cancel_job(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/fine_tuning/jobs/{id}/cancel``."""
    with fake.store.lock:
        job = _get_job(fake, req.params["job_id"])
        if job.status in TERMINAL:
            raise bad_request(
                f"Job {job.id} has already {'been cancelled' if job.status == 'cancelled' else job.status}; only a "
                "job that has not finished can be cancelled.",
                param="fine_tuning_job_id",
            )
        now = fake.store.now()
        job.status = "cancelled"
        job.estimated_finish = None
        job.paused_remaining = None
        _event(fake, job, now, "Fine-tuning job cancelled")
        return FakeResponse.json(job_to_api(fake, job))


def handle_pause_job(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/fine_tuning/jobs/{id}/pause``: only a running job can be paused."""
    with fake.store.lock:
        job = _get_job(fake, req.params["job_id"])
        if job.status != "running":
            raise bad_request(
                f"Job {job.id} is {job.status}; only a running job can be paused.", param="fine_tuning_job_id"
            )
        now = fake.store.now()
        job.paused_remaining = max(0.0, job.phase_ends_at - now)
        job.status = "paused"
        job.estimated_finish = None
        _event(fake, job, now, "Fine-tuning job paused")
        return FakeResponse.json(job_to_api(fake, job))


def handle_resume_job(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``POST /v1/fine_tuning/jobs/{id}/resume``: only a paused job can be resumed."""
    with fake.store.lock:
        job = _get_job(fake, req.params["job_id"])
        if job.status != "paused":
            raise bad_request(
                f"Job {job.id} is {job.status}; only a paused job can be resumed.", param="fine_tuning_job_id"
            )
        now = fake.store.now()
        job.status = "running"
        job.phase_ends_at = now + (job.paused_remaining or 0.0)
        job.paused_remaining = None
        remaining_steps = job.total_steps - job.step
        job.estimated_finish = int(job.phase_ends_at + max(0, remaining_steps - 1) * fake.store.speed.per_step)
        _event(fake, job, now, "Fine-tuning job resumed")
        return FakeResponse.json(job_to_api(fake, job))


def handle_list_events(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/fine_tuning/jobs/{id}/events`` (newest first)."""
    limit = parse_limit(req, default=20, maximum=100)
    with fake.store.lock:
        job = _get_job(fake, req.params["job_id"])
        events = list(reversed(job.events))
    return FakeResponse.json(page(events, after=req.q("after"), limit=limit, ids=False))


def handle_list_checkpoints(fake: FakeOpenAI, req: FakeRequest) -> FakeResponse:
    """``GET /v1/fine_tuning/jobs/{id}/checkpoints`` (newest first)."""
    limit = parse_limit(req, default=10, maximum=100)
    with fake.store.lock:
        job = _get_job(fake, req.params["job_id"])
        checkpoints = list(reversed(job.checkpoints))
    return FakeResponse.json(page(checkpoints, after=req.q("after"), limit=limit))
