"""Local checks of every ``jobs.create`` argument against the API's documented constraints.

Each check raises :class:`~finetune_embed.ConfigError` (a ``ValueError``) naming the argument, the value, the
rule and how to fix it, before any request is sent. The limits come from the OpenAPI spec
(``CreateFineTuningJobRequest``, ``FineTuneMethod``) and its prose (metadata). Every hyperparameter also
accepts ``"auto"`` (the server picks).
"""

from __future__ import annotations

import math
import reprlib
import warnings
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Literal

from .._exceptions import ConfigError, UnsupportedModelError
from .._logging import get_logger

__all__ = [
    "HYPERPARAMETERS",
    "METHODS",
    "ModelRetirementWarning",
    "build_method",
    "check_integrations",
    "check_metadata",
    "check_model",
    "check_seed",
    "check_suffix",
]

logger = get_logger("finetuning")

Method = Literal["supervised", "dpo", "reinforcement"]
METHODS: tuple[str, ...] = ("supervised", "dpo", "reinforcement")

SUFFIX_MAX_CHARS = 64
SEED_MAX = 2_147_483_647
METADATA_MAX_PAIRS = 16
METADATA_KEY_MAX_CHARS = 64
METADATA_VALUE_MAX_CHARS = 512
INTEGRATIONS_MAX = 5
GRADER_TYPES = frozenset({"string_check", "text_similarity", "python", "score_model", "multi"})
REASONING_EFFORTS = ("default", "low", "medium", "high")

_COMMON = ("batch_size", "learning_rate_multiplier", "n_epochs")
HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "supervised": _COMMON,
    "dpo": (*_COMMON, "beta"),
    "reinforcement": (*_COMMON, "reasoning_effort", "compute_multiplier", "eval_interval", "eval_samples"),
}


class ModelRetirementWarning(UserWarning):
    """The base model (or OpenAI's fine-tuning service) stops accepting new jobs soon."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(float(value))


def check_suffix(suffix: str | None) -> str | None:
    """``suffix`` must be 1-64 characters; it becomes part of ``ft:<base>:<org>:<suffix>:<id>``."""
    if suffix is None:
        return None
    if not isinstance(suffix, str):
        raise ConfigError(f"suffix must be a string of 1-{SUFFIX_MAX_CHARS} characters, got {type(suffix).__name__}.")
    if not 1 <= len(suffix) <= SUFFIX_MAX_CHARS:
        raise ConfigError(
            f"suffix must be 1-{SUFFIX_MAX_CHARS} characters, got {len(suffix)} ({suffix[:80]!r}); "
            "shorten it (it ends up in the model name ft:<base>:<org>:<suffix>:<id>)."
        )
    return suffix


def check_seed(seed: int | None) -> int | None:
    """``seed`` must be an integer in 0-2147483647."""
    if seed is None:
        return None
    if not _is_int(seed) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed must be an integer in 0-{SEED_MAX}, got {seed!r}.")
    return seed


def check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str] | None:
    """At most 16 pairs; keys of at most 64 characters, values of at most 512, both strings."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise ConfigError(f"metadata must be a mapping of strings to strings, got {type(metadata).__name__}.")
    if len(metadata) > METADATA_MAX_PAIRS:
        raise ConfigError(
            f"metadata may hold at most {METADATA_MAX_PAIRS} key-value pairs, got {len(metadata)}; drop some."
        )
    clean: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"metadata keys must be non-empty strings, got {key!r}.")
        if len(key) > METADATA_KEY_MAX_CHARS:
            raise ConfigError(
                f"metadata key {key[:80]!r} has {len(key)} characters; the limit is {METADATA_KEY_MAX_CHARS}."
            )
        if not isinstance(value, str):
            raise ConfigError(
                f"metadata[{key!r}] must be a string, got {type(value).__name__} {reprlib.repr(value)}; convert it "
                "with str()."
            )
        if len(value) > METADATA_VALUE_MAX_CHARS:
            raise ConfigError(
                f"metadata[{key!r}] has {len(value)} characters; the limit is {METADATA_VALUE_MAX_CHARS}."
            )
        clean[key] = value
    return clean


def _check_range_int(name: str, value: object, low: int, high: int | None) -> None:
    if value == "auto":
        return
    top = "" if high is None else f"-{high}"
    if not _is_int(value) or value < low or (high is not None and value > high):  # type: ignore[operator]
        bound = f"{low}{top}" if high is not None else f">= {low}"
        raise ConfigError(f"{name} must be an integer {bound} or 'auto', got {value!r}.")


def _check_hyperparameter(method: str, name: str, value: object) -> None:
    where = f"{method} hyperparameter {name}"
    if name == "n_epochs":
        _check_range_int(where, value, 1, 50)
    elif name == "batch_size":
        _check_range_int(where, value, 1, 256)
    elif name in ("eval_interval", "eval_samples"):
        _check_range_int(where, value, 1, None)
    elif name == "learning_rate_multiplier":
        if value != "auto" and (not _is_number(value) or float(value) <= 0):  # type: ignore[arg-type]
            raise ConfigError(f"{where} must be a number > 0 or 'auto', got {value!r}.")
    elif name == "beta":
        if value != "auto" and (not _is_number(value) or not 0 < float(value) <= 2):  # type: ignore[arg-type]
            raise ConfigError(f"{where} must be a number in (0, 2] or 'auto', got {value!r}.")
    elif name == "compute_multiplier":
        if value != "auto" and (not _is_number(value) or not 1e-5 < float(value) <= 10):  # type: ignore[arg-type]
            raise ConfigError(f"{where} must be a number in (0.00001, 10] or 'auto', got {value!r}.")
    elif name == "reasoning_effort" and value not in REASONING_EFFORTS:
        raise ConfigError(f"{where} must be one of {', '.join(REASONING_EFFORTS)}, got {value!r}.")


def check_hyperparameters(method: str, hyperparameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check the hyperparameters of ``method``: known names only, each within the API's range."""
    if hyperparameters is None:
        return {}
    if not isinstance(hyperparameters, Mapping):
        raise ConfigError(f"hyperparameters must be a mapping, got {type(hyperparameters).__name__}.")
    allowed = HYPERPARAMETERS[method]
    clean: dict[str, Any] = {}
    for name, value in hyperparameters.items():
        if name not in allowed:
            raise ConfigError(
                f"unknown hyperparameter {name!r} for method={method!r}; allowed: {', '.join(allowed)}."
            )
        if value is None:
            continue
        _check_hyperparameter(method, name, value)
        clean[name] = value
    return clean


def _check_grader(grader: object) -> dict[str, Any]:
    if not isinstance(grader, Mapping):
        raise ConfigError(
            "method='reinforcement' needs a grader: a mapping such as {'type': 'string_check', 'name': ..., "
            "'input': '{{sample.output_text}}', 'reference': '{{item.answer}}', 'operation': 'eq'}."
        )
    kind = grader.get("type")
    if kind not in GRADER_TYPES:
        raise ConfigError(f"grader type must be one of {', '.join(sorted(GRADER_TYPES))}, got {kind!r}.")
    return dict(grader)


def build_method(
    method: str | Mapping[str, Any],
    hyperparameters: Mapping[str, Any] | None = None,
    grader: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Check ``method`` and its settings; returns ``(method_type, the API's method object)``.

    ``method`` is ``"supervised"``, ``"dpo"`` or ``"reinforcement"``, or the API's own method object
    (``{"type": "dpo", "dpo": {"hyperparameters": {...}}}``), in which case ``hyperparameters`` / ``grader``
    must not be given again.
    """
    if isinstance(method, Mapping):
        if hyperparameters is not None or grader is not None:
            raise ConfigError(
                "pass hyperparameters/grader either inside the method object or as arguments, not both."
            )
        kind = method.get("type")
        if kind not in METHODS:
            raise ConfigError(f"method type must be one of {', '.join(METHODS)}, got {kind!r}.")
        extra = set(method) - {"type", kind}
        if extra:
            raise ConfigError(f"unexpected keys in the method object: {', '.join(sorted(extra))}.")
        settings = method.get(kind) or {}
        if not isinstance(settings, Mapping):
            raise ConfigError(f"method[{kind!r}] must be a mapping, got {type(settings).__name__}.")
        unknown = set(settings) - {"hyperparameters", "grader"}
        if unknown or (kind != "reinforcement" and "grader" in settings):
            raise ConfigError(f"unexpected keys in method[{kind!r}]: {', '.join(sorted(unknown or {'grader'}))}.")
        return build_method(str(kind), settings.get("hyperparameters"), settings.get("grader"))
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}.")
    params = check_hyperparameters(method, hyperparameters)
    body: dict[str, Any] = {}
    if params:
        body["hyperparameters"] = params
    if method == "reinforcement":
        body["grader"] = _check_grader(grader)
    elif grader is not None:
        raise ConfigError(f"a grader is only used with method='reinforcement', not {method!r}.")
    return method, {"type": method, method: body}


def check_integrations(integrations: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    """At most 5 integrations, each ``{"type": "wandb", "wandb": {"project": ..., ...}}``."""
    if integrations is None:
        return None
    if isinstance(integrations, Mapping | str) or not isinstance(integrations, Sequence):
        raise ConfigError("integrations must be a list of {'type': 'wandb', 'wandb': {'project': ...}} objects.")
    if len(integrations) > INTEGRATIONS_MAX:
        raise ConfigError(f"at most {INTEGRATIONS_MAX} integrations are allowed, got {len(integrations)}.")
    clean: list[dict[str, Any]] = []
    for i, item in enumerate(integrations):
        if not isinstance(item, Mapping) or item.get("type") != "wandb":
            raise ConfigError(f"integrations[{i}] must have type 'wandb' (the only integration the API has).")
        wandb = item.get("wandb")
        if not isinstance(wandb, Mapping) or not isinstance(wandb.get("project"), str) or not wandb["project"]:
            raise ConfigError(f"integrations[{i}].wandb.project is required (the W&B project to log to).")
        tags = wandb.get("tags")
        if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
            raise ConfigError(f"integrations[{i}].wandb.tags must be a list of strings.")
        clean.append({"type": "wandb", "wandb": dict(wandb)})
    return clean


def check_model(model: str, *, method: str, provider: str, on: date | None = None) -> None:
    """Check ``model`` against the catalog: an error after its shutdown (or after OpenAI's last day for new
    jobs), a :class:`ModelRetirementWarning` shortly before, an error when it cannot use ``method``."""
    from ..catalog import default_catalog

    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model must be a non-empty model name, got {model!r}.")
    cat = default_catalog()
    avail = cat.availability(model, on=on, provider=provider)  # type: ignore[arg-type]
    if not avail.ok:
        raise UnsupportedModelError(f"Cannot fine-tune {model!r}: {avail.message}", model=model)
    if avail.status == "shutting_down":
        warnings.warn(avail.message, ModelRetirementWarning, stacklevel=4)
    elif avail.status == "unknown":
        logger.info("%s", avail.message)
    info = cat.find_fine_tune_model(model)
    if info is not None and method not in info.methods:
        raise UnsupportedModelError(
            f"{info.name} cannot be fine-tuned with method={method!r}; it supports "
            f"{', '.join(sorted(info.methods))}. Pick another base model or method "
            "(`finetune-embed models list` shows which model supports which method).",
            model=model,
        )
