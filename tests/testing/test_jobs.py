"""Fine-tuning jobs through the official SDK: lifecycle on the fake clock, events, checkpoints, result file,
models, and every refusal."""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any

import openai
import pytest
from openai.types import Model, ModelDeleted
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from finetune_embed.testing import FakeOpenAI, JobSpeed
from finetune_embed.tokenizer import Tokenizer

from ._data import chat_example, chat_file, jsonl

SPEED = JobSpeed(validating=10, queued=5, per_step=2, finalizing=3)


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI(job_speed=SPEED)


def _upload(sdk: openai.OpenAI, content: bytes, purpose: str = "fine-tune") -> str:
    return sdk.files.create(file=("train.jsonl", content), purpose=purpose).id  # type: ignore[arg-type]


def _message(err: openai.APIStatusError) -> str:
    assert isinstance(err.body, dict)
    return str(err.body["message"])


def _tokens(example: dict[str, Any]) -> int:
    tok = Tokenizer.for_model("gpt-4o-mini")
    strings = [v for m in example["messages"] for v in m.values()]
    return 3 + sum(3 + tok.count(s) for s in strings)


def test_full_lifecycle(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    file_id = _upload(sdk, chat_file(12))
    job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id, suffix="math", seed=7)
    assert isinstance(job, FineTuningJob)
    assert job.status == "validating_files"
    assert job.model == "gpt-4o-mini-2024-07-18"
    assert job.organization_id == "org-fake"
    assert (job.fine_tuned_model, job.finished_at, job.trained_tokens, job.error) == (None, None, None, None)
    assert job.hyperparameters.n_epochs == "auto"
    assert job.seed == 7

    fake.advance(10)
    queued = sdk.fine_tuning.jobs.retrieve(job.id)
    assert queued.status == "queued"
    assert (queued.hyperparameters.n_epochs, queued.hyperparameters.batch_size) == (8, 1)  # 100 // 12 epochs
    fake.advance(5)
    running = sdk.fine_tuning.jobs.retrieve(job.id)
    assert running.status == "running"
    assert running.estimated_finish == job.created_at + 15 + 96 * 2 + 3
    fake.advance(2 * 13)
    events = list(sdk.fine_tuning.jobs.list_events(job.id, limit=100).data)
    assert all(isinstance(e, FineTuningJobEvent) for e in events)
    metrics = [e for e in events if e.type == "metrics"]
    assert len(metrics) == 13
    assert metrics[0].message.startswith("Step 13/96: training loss=")
    assert isinstance(metrics[0].data, dict)
    assert set(metrics[0].data) == {"step", "train_loss", "train_mean_token_accuracy", "total_steps"}
    assert [c.step_number for c in sdk.fine_tuning.jobs.checkpoints.list(job.id)] == [12]

    fake.advance(2 * 83 + 3)
    done = sdk.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    assert done.fine_tuned_model is not None
    assert done.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:fake:math:{done.fine_tuned_model.split(':')[-1]}"
    assert len(done.fine_tuned_model.split(":")[-1]) == 8
    assert done.finished_at == job.created_at + 15 + 96 * 2 + 3
    assert done.trained_tokens == 8 * sum(_tokens(chat_example(i)) for i in range(12))
    messages = [e.message for e in sdk.fine_tuning.jobs.list_events(job.id, limit=3)][:3]
    assert messages[0] == "The job has successfully completed"
    assert messages[1] == f"New fine-tuned model created: {done.fine_tuned_model}"

    checkpoints = list(sdk.fine_tuning.jobs.checkpoints.list(job.id))
    assert all(isinstance(c, FineTuningJobCheckpoint) for c in checkpoints)
    assert [c.step_number for c in checkpoints] == [96, 84, 72]  # newest first, last three epochs kept
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-96"
    assert checkpoints[0].metrics.train_loss is not None

    assert len(done.result_files) == 1
    result = sdk.files.retrieve(done.result_files[0])
    assert (result.purpose, result.filename) == ("fine-tune-results", "step_metrics.csv")
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(sdk.files.content(result.id).content).decode())))
    assert list(rows[0]) == [
        "step",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
        "train_mean_reward",
        "full_valid_loss",
        "full_valid_mean_token_accuracy",
    ]
    assert [int(r["step"]) for r in rows] == list(range(1, 97))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert rows[0]["valid_loss"] == ""

    model = sdk.models.retrieve(done.fine_tuned_model)
    assert isinstance(model, Model)
    assert model.owned_by == "org-fake"
    removed = sdk.models.delete(model.id)
    assert isinstance(removed, ModelDeleted)
    assert removed.deleted
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.models.retrieve(model.id)
    assert exc.value.code == "model_not_found"


def test_validation_file_adds_validation_metrics(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=_upload(sdk, chat_file(40)),
        validation_file=_upload(sdk, chat_file(3)),
        hyperparameters={"n_epochs": 1, "batch_size": 4},
    )
    fake.run_until_idle()
    done = sdk.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    assert (done.hyperparameters.n_epochs, done.hyperparameters.batch_size) == (1, 4)
    rows = base64.b64decode(sdk.files.content(done.result_files[0]).content).decode().splitlines()
    assert len(rows) == 1 + 10
    last = rows[-1].split(",")
    assert all(last[i] for i in (3, 4, 6, 7))  # valid and full-valid metrics on the final step
    event = next(e for e in sdk.fine_tuning.jobs.list_events(job.id) if e.type == "metrics")
    assert "validation loss=" in event.message


def test_dpo_and_method_hyperparameters(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    row = {
        "input": {"messages": [{"role": "user", "content": "Hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello!"}],
        "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
    }
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4.1-mini",
        training_file=_upload(sdk, jsonl([row] * 10)),
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2, "n_epochs": 2}}},
    )
    assert job.method is not None
    assert job.method.dpo is not None
    fake.run_until_idle()
    done = sdk.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded"
    assert done.method is not None
    assert done.method.dpo is not None
    assert done.method.dpo.hyperparameters is not None
    assert done.method.dpo.hyperparameters.beta == 0.2


def test_pause_resume_and_cancel(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=_upload(sdk, chat_file(12)))
    with pytest.raises(openai.BadRequestError):
        sdk.fine_tuning.jobs.pause(job.id)  # not running yet
    fake.advance(15 + 2 * 5)
    paused = sdk.fine_tuning.jobs.pause(job.id)
    assert paused.status == "paused"  # type: ignore[comparison-overlap]  # not in the SDK's Literal
    fake.advance(10_000)
    steps = [e for e in sdk.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"]
    assert len(steps) == 5  # nothing happens while paused
    assert sdk.fine_tuning.jobs.resume(job.id).status == "running"
    fake.advance(2)
    assert len([e for e in sdk.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"]) == 6
    cancelled = sdk.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled"
    fake.advance(10_000)
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        sdk.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.BadRequestError):
        sdk.fine_tuning.jobs.resume(job.id)


def test_list_pagination_and_metadata_filter(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    file_id = _upload(sdk, chat_file(12))
    ids = []
    for i in range(5):
        ids.append(
            sdk.fine_tuning.jobs.create(
                model="gpt-4o-mini", training_file=file_id, metadata={"team": "a" if i % 2 else "b"}
            ).id
        )
        fake.advance(1)
    page = sdk.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == ids[::-1][:2]
    assert page.has_more
    assert [j.id for j in sdk.fine_tuning.jobs.list(limit=2)] == ids[::-1]
    assert [j.id for j in sdk.fine_tuning.jobs.list(metadata={"team": "a"})] == [ids[3], ids[1]]
    events = sdk.fine_tuning.jobs.list_events(ids[0], limit=1)
    assert len(events.data) == 1
    assert events.has_more


def test_continue_training_from_a_fine_tuned_model(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    file_id = _upload(sdk, chat_file(12))
    first = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id, hyperparameters={"n_epochs": 1})
    fake.run_until_idle()
    name = sdk.fine_tuning.jobs.retrieve(first.id).fine_tuned_model
    assert name is not None
    second = sdk.fine_tuning.jobs.create(
        model=name, training_file=file_id, suffix="v2", hyperparameters={"n_epochs": 1}
    )
    assert second.model == name
    fake.run_until_idle()
    second_name = sdk.fine_tuning.jobs.retrieve(second.id).fine_tuned_model
    assert second_name is not None
    assert second_name.startswith("ft:gpt-4o-mini-2024-07-18:fake:v2:")


def test_base_models_cannot_be_deleted(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        sdk.models.delete("gpt-4o-mini")
    assert sdk.models.retrieve("gpt-4o-mini").owned_by == "system"
    assert "text-embedding-3-small" in {m.id for m in sdk.models.list()}


# --- refusals at create time -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"suffix": "x" * 65}, "suffix", "string_above_max_length"),
        ({"suffix": ""}, "suffix", "string_below_min_length"),
        ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs", "integer_below_min_value"),
        ({"hyperparameters": {"n_epochs": 51}}, "hyperparameters.n_epochs", "integer_above_max_value"),
        ({"hyperparameters": {"batch_size": 257}}, "hyperparameters.batch_size", "integer_above_max_value"),
        (
            {"hyperparameters": {"learning_rate_multiplier": 0}},
            "hyperparameters.learning_rate_multiplier",
            "decimal_below_min_value",
        ),
        ({"hyperparameters": {"n_epochs": "many"}}, "hyperparameters.n_epochs", "invalid_type"),
        (
            {"method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 0}}}},
            "method.supervised.hyperparameters.batch_size",
            "integer_below_min_value",
        ),
        ({"method": {"type": "sft"}}, "method.type", "invalid_value"),
        ({"seed": -1}, "seed", "integer_below_min_value"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "object_above_max_properties"),
        ({"integrations": [{"type": "comet", "comet": {}}]}, "integrations[0].comet", "unknown_parameter"),
        ({"learning_rate": 0.1}, "learning_rate", "unknown_parameter"),
    ],
)
def test_create_refusals(sdk: openai.OpenAI, extra: dict[str, Any], param: str, code: str) -> None:
    file_id = _upload(sdk, chat_file(12))
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id, extra_body=extra)
    body = exc.value.body
    assert isinstance(body, dict)
    assert (body["param"], body["code"], body["type"]) == (param, code, "invalid_request_error")


@pytest.mark.parametrize(("beta", "code"), [(0, "decimal_below_min_value"), (2.5, "decimal_above_max_value")])
def test_dpo_beta_range(sdk: openai.OpenAI, beta: float, code: str) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.fine_tuning.jobs.create(
            model="gpt-4.1-mini",
            training_file=_upload(sdk, chat_file(12)),
            method={"type": "dpo", "dpo": {"hyperparameters": {"beta": beta}}},
        )
    assert exc.value.code == code
    assert exc.value.param == "method.dpo.hyperparameters.beta"


def test_suffix_message_is_the_services(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=_upload(sdk, chat_file(12)), suffix="s" * 70)
    assert _message(exc.value) == (
        "Invalid 'suffix': string too long. Expected a string with maximum length 64, but got a string with length "
        "70 instead."
    )


def test_missing_and_wrong_purpose_training_file(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file="file-doesnotexist")
    assert (exc.value.param, _message(exc.value)) == ("training_file", "invalid training_file: file-doesnotexist")
    batch_file = _upload(sdk, chat_file(12), purpose="batch")
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=batch_file)
    assert exc.value.param == "training_file"
    assert "purpose 'batch'" in _message(exc.value)
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=_upload(sdk, chat_file(12)), validation_file="file-nope"
        )
    assert exc.value.param == "validation_file"


@pytest.mark.parametrize("model", ["gpt-5-turbo-ultra", "ft:gpt-4o-mini-2024-07-18:other:x:abc"])
def test_unknown_model(sdk: openai.OpenAI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.fine_tuning.jobs.create(model=model, training_file=_upload(sdk, chat_file(12)))
    assert (exc.value.code, exc.value.param) == ("model_not_available", "model")


def test_method_the_model_lacks(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=_upload(sdk, chat_file(12)), method={"type": "dpo"}
        )
    assert exc.value.param == "method.type"


def test_job_not_found(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.fine_tuning.jobs.retrieve("ftjob-nope")


# --- training-file contents: the job fails while validating ------------------------------------------------------

BAD_FILES: list[tuple[str, bytes, str, str]] = [
    (
        "too-few",
        chat_file(7),
        "invalid_n_examples",
        "Training file has 7 example(s), but must have at least 10 examples",
    ),
    (
        "not-json",
        jsonl([chat_example(0), "{oops", *[chat_example(i) for i in range(10)]]),
        "invalid_file_format",
        "Invalid file format. Example 2 cannot be parsed as JSON (line 2).",
    ),
    (
        "not-a-dict",
        jsonl([[1, 2]] + [chat_example(i) for i in range(10)]),
        "invalid_file_format",
        "Invalid file format. Line 1 is not a dictionary.",
    ),
    (
        "missing-messages",
        jsonl([{"prompt": "a", "completion": "b"}] * 10),
        "invalid_file_format",
        "Invalid file format. Example 1 is missing key 'messages'.",
    ),
    (
        "extra-key",
        jsonl([{**chat_example(i), "weight": 1} for i in range(10)]),
        "invalid_file_format",
        'Invalid file format. Example 1 contains an extra "weight".',
    ),
    (
        "no-role",
        jsonl(
            [chat_example(i) for i in range(99)] + [{"messages": [{"role": "user", "content": "a"}, {"content": "b"}]}]
        ),
        "invalid_training_file",
        "Example 100, message 2 Discriminator 'role' is missing in value",
    ),
    (
        "no-assistant",
        jsonl([{"messages": [{"role": "user", "content": "a"}]}] * 10),
        "invalid_training_file",
        "Example 1 has no assistant messages; each example needs at least one to train on.",
    ),
    (
        "special-token",
        jsonl(
            [chat_example(i) for i in range(5)]
            + [{"messages": [{"role": "user", "content": "a <|fim_suffix|>"}, {"role": "assistant", "content": "b"}]}]
            + [chat_example(i) for i in range(5)]
        ),
        "invalid_file_format",
        "Invalid file format. Example 6 message contains an invalid token: <|fim_suffix|>.",
    ),
]


@pytest.mark.parametrize(("name", "content", "code", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_training_file_contents_fail_the_job(
    fake: FakeOpenAI, sdk: openai.OpenAI, name: str, content: bytes, code: str, message: str
) -> None:
    job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=_upload(sdk, content))
    assert job.status == "validating_files"  # accepted first, like the service
    fake.advance(10)
    failed = sdk.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert (failed.error.code, failed.error.message, failed.error.param) == (code, message, "training_file")
    assert failed.finished_at == job.created_at + 10
    last = sdk.fine_tuning.jobs.list_events(job.id, limit=1).data[0]
    assert last.level == "error"
    assert last.message.endswith(message)


def test_prompt_completion_format_for_legacy_models(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    rows = [{"prompt": f"{i}+{i}=", "completion": f" {2 * i}"} for i in range(10)]
    job = sdk.fine_tuning.jobs.create(model="babbage-002", training_file=_upload(sdk, jsonl(rows)))
    fake.run_until_idle()
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "succeeded"


def test_job_json_matches_what_the_sdk_sent(fake: FakeOpenAI, sdk: openai.OpenAI) -> None:
    job = sdk.fine_tuning.jobs.with_raw_response.create(
        model="gpt-4o-mini",
        training_file=_upload(sdk, chat_file(12)),
        integrations=[{"type": "wandb", "wandb": {"project": "p", "tags": ["a"]}}],
    )
    body = json.loads(job.http_response.content)
    assert body["integrations"] == [{"type": "wandb", "wandb": {"project": "p", "tags": ["a"]}}]
    assert body["method"] == {
        "type": "supervised",
        "supervised": {
            "hyperparameters": {"batch_size": "auto", "learning_rate_multiplier": "auto", "n_epochs": "auto"}
        },
    }
