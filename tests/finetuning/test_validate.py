"""Local argument checks of jobs.create: every API constraint, with clear messages."""

from __future__ import annotations

from datetime import date

import pytest

from finetune_embed import ConfigError, UnsupportedModelError
from finetune_embed.finetuning import ModelRetirementWarning
from finetune_embed.finetuning._validate import (
    build_method,
    check_integrations,
    check_metadata,
    check_model,
    check_seed,
    check_suffix,
)

QUIET_DAY = date(2026, 6, 1)  # far from every shutdown date in the catalog
TODAY = date(2026, 11, 25)


@pytest.mark.parametrize("suffix", ["a", "x" * 64, "support-bot_v2"])
def test_suffix_accepts_1_to_64_chars(suffix: str) -> None:
    assert check_suffix(suffix) == suffix


@pytest.mark.parametrize("suffix", ["", "x" * 65])
def test_suffix_rejects_out_of_range(suffix: str) -> None:
    with pytest.raises(ConfigError, match=r"suffix must be 1-64 characters, got \d+"):
        check_suffix(suffix)


def test_suffix_rejects_non_string() -> None:
    with pytest.raises(ConfigError, match="suffix must be a string"):
        check_suffix(12)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 42, 2_147_483_647])
def test_seed_range(seed: int) -> None:
    assert check_seed(seed) == seed


@pytest.mark.parametrize("seed", [-1, 2_147_483_648, 1.5, True, "7"])
def test_seed_rejects(seed: object) -> None:
    with pytest.raises(ConfigError, match="seed must be an integer in 0-2147483647"):
        check_seed(seed)  # type: ignore[arg-type]


def test_metadata_limits() -> None:
    assert check_metadata({f"k{i}": "v" for i in range(16)}) is not None
    with pytest.raises(ConfigError, match="at most 16 key-value pairs, got 17"):
        check_metadata({f"k{i}": "v" for i in range(17)})
    with pytest.raises(ConfigError, match="has 65 characters; the limit is 64"):
        check_metadata({"k" * 65: "v"})
    with pytest.raises(ConfigError, match=r"metadata\['k'\] has 513 characters; the limit is 512"):
        check_metadata({"k": "v" * 513})
    with pytest.raises(ConfigError, match=r"metadata\['n'\] must be a string, got int 3"):
        check_metadata({"n": 3})  # type: ignore[dict-item]
    assert check_metadata({"k" * 64: "v" * 512}) == {"k" * 64: "v" * 512}


def test_supervised_hyperparameters() -> None:
    kind, method = build_method("supervised", {"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": 0.1})
    assert kind == "supervised"
    assert method == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": 0.1}},
    }
    assert build_method("supervised") == ("supervised", {"type": "supervised", "supervised": {}})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_epochs": 0}, "n_epochs must be an integer 1-50"),
        ({"n_epochs": 51}, "n_epochs must be an integer 1-50"),
        ({"n_epochs": 2.0}, "n_epochs must be an integer 1-50"),
        ({"n_epochs": True}, "n_epochs must be an integer 1-50"),
        ({"batch_size": 0}, "batch_size must be an integer 1-256"),
        ({"batch_size": 257}, "batch_size must be an integer 1-256"),
        ({"learning_rate_multiplier": 0}, "learning_rate_multiplier must be a number > 0"),
        ({"learning_rate_multiplier": float("nan")}, "learning_rate_multiplier must be a number > 0"),
        ({"beta": 0.5}, "unknown hyperparameter 'beta' for method='supervised'"),
    ],
)
def test_supervised_hyperparameters_rejected(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_method("supervised", params)


@pytest.mark.parametrize("beta", [0.01, 1, 2, "auto"])
def test_dpo_beta_accepted(beta: object) -> None:
    _, method = build_method("dpo", {"beta": beta})
    assert method["dpo"]["hyperparameters"]["beta"] == beta


@pytest.mark.parametrize("beta", [0, -0.1, 2.0001, "high"])
def test_dpo_beta_rejected(beta: object) -> None:
    with pytest.raises(ConfigError, match=r"beta must be a number in \(0, 2\]"):
        build_method("dpo", {"beta": beta})


def test_reinforcement_needs_a_grader() -> None:
    with pytest.raises(ConfigError, match="needs a grader"):
        build_method("reinforcement", {"n_epochs": 2})
    grader = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
              "reference": "{{item.answer}}", "operation": "eq"}
    kind, method = build_method("reinforcement", {"reasoning_effort": "low", "compute_multiplier": 2}, grader)
    assert kind == "reinforcement"
    assert method["reinforcement"]["grader"] == grader
    with pytest.raises(ConfigError, match="reasoning_effort must be one of default, low, medium, high"):
        build_method("reinforcement", {"reasoning_effort": "max"}, grader)
    with pytest.raises(ConfigError, match="grader type must be one of"):
        build_method("reinforcement", None, {"type": "vibes"})
    with pytest.raises(ConfigError, match="a grader is only used with method='reinforcement'"):
        build_method("dpo", None, grader)


def test_method_object_form() -> None:
    kind, method = build_method({"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}})
    assert (kind, method) == ("dpo", {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}})
    with pytest.raises(ConfigError, match="method type must be one of"):
        build_method({"type": "lora"})
    with pytest.raises(ConfigError, match="either inside the method object or as arguments"):
        build_method({"type": "dpo"}, {"beta": 1})
    with pytest.raises(ConfigError, match=r"n_epochs must be an integer 1-50"):
        build_method({"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 99}}})
    with pytest.raises(ConfigError, match="method must be one of supervised, dpo, reinforcement, got 'sft'"):
        build_method("sft")


def test_integrations() -> None:
    ok = [{"type": "wandb", "wandb": {"project": "ft", "tags": ["a"]}}]
    assert check_integrations(ok) == ok
    with pytest.raises(ConfigError, match=r"integrations\[0\].wandb.project is required"):
        check_integrations([{"type": "wandb", "wandb": {}}])
    with pytest.raises(ConfigError, match="at most 5 integrations"):
        check_integrations(ok * 6)
    with pytest.raises(ConfigError, match="must have type 'wandb'"):
        check_integrations([{"type": "mlflow"}])


def test_model_available_far_from_shutdown() -> None:
    check_model("gpt-4o-mini", method="supervised", provider="openai", on=QUIET_DAY)


def test_model_near_shutdown_warns_with_the_openai_cutoff() -> None:
    with pytest.warns(ModelRetirementWarning, match=r"no new fine-tuning jobs after 2027-01-06.*Azure OpenAI keeps"):
        check_model("gpt-4o-mini", method="supervised", provider="openai", on=TODAY)


def test_model_after_shutdown_is_an_error() -> None:
    with pytest.raises(UnsupportedModelError, match=r"gpt-4\.1-nano.*shut down by OpenAI on 2026-10-23") as info:
        check_model("gpt-4.1-nano", method="supervised", provider="openai", on=TODAY)
    assert info.value.model == "gpt-4.1-nano"


def test_openai_cutoff_is_an_error_after_2027_01_06_but_azure_keeps_fine_tuning() -> None:
    with pytest.raises(UnsupportedModelError, match="OpenAI accepts no new fine-tuning jobs after 2027-01-06"):
        check_model("gpt-4.1-mini", method="supervised", provider="openai", on=date(2027, 1, 7))
    check_model("gpt-4.1-mini", method="supervised", provider="azure", on=date(2027, 1, 7))


def test_model_must_support_the_method() -> None:
    with pytest.raises(UnsupportedModelError, match=r"gpt-4o-mini-2024-07-18 cannot be fine-tuned with method='dpo'"):
        check_model("gpt-4o-mini", method="dpo", provider="openai", on=QUIET_DAY)
    check_model("gpt-4.1-mini", method="dpo", provider="openai", on=QUIET_DAY)


def test_unknown_model_passes_quietly() -> None:
    check_model("my-own-base-model", method="supervised", provider="compatible")
    check_model("my-own-base-model", method="supervised", provider="openai", on=QUIET_DAY)
