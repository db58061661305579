"""Resolving what a validation checks against: the model's catalog facts, availability, method and format."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from .._exceptions import InvalidArgumentError
from ._checks import Profile
from ._codes import IssueCode
from ._tokens import COOKBOOK_ENCODING

__all__ = [
    "METHODS",
    "PROVIDERS",
    "FileIssue",
    "Method",
    "Resolved",
    "check_int",
    "check_options",
    "format_issues",
    "resolve",
]

Method = Literal["supervised", "dpo", "reinforcement"]
METHODS = ("supervised", "dpo", "reinforcement")
COOKBOOK_DEFAULT_LIMIT = 16_385  # the notebook's MAX_TOKENS_PER_EXAMPLE


@dataclass(frozen=True)
class FileIssue:
    """A problem with the whole file or run (no line)."""

    code: IssueCode
    message: str
    severity: str | None = None


@dataclass
class Resolved:
    """A profile plus what the catalog said."""

    profile: Profile
    issues: list[FileIssue]
    info: Any  # FineTuneModelInfo | None
    price_per_1m: float | None
    price_unit: str | None
    price_as_of: date | None


PROVIDERS = ("openai", "azure", "compatible")


def check_int(name: str, value: Any, *, minimum: int, maximum: int | None = None, optional: bool = False) -> None:
    """Refuse an argument that is not an integer in ``minimum..maximum`` (``None`` too when ``optional``)."""
    if value is None and optional:
        return
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        span = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        none = " or None" if optional else ""
        raise InvalidArgumentError(f"{name} must be an integer {span}{none}, not {value!r}", argument=name)


def check_options(*, max_issues: Any, n_epochs: Any, min_examples: Any) -> None:
    """The numeric options every validation takes."""
    check_int("max_issues", max_issues, minimum=0)
    check_int("n_epochs", n_epochs, minimum=1, maximum=50, optional=True)  # the API's range
    check_int("min_examples", min_examples, minimum=0)


def resolve(
    model: str | None,
    method: str | None,
    *,
    counting: str = "model",
    want_stats: bool = False,
    on: date | None = None,
    provider: str = "openai",
    max_example_tokens: int | None = None,
) -> Resolved:
    """Look the model up and build the :class:`Profile` (raises :class:`InvalidArgumentError` on a bad method or
    counting)."""
    if method is not None and method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {', '.join(METHODS)}, not {method!r}", argument="method")
    if counting not in ("model", "cookbook"):
        raise InvalidArgumentError(f"counting must be 'model' or 'cookbook', not {counting!r}", argument="counting")
    if provider not in PROVIDERS:
        raise InvalidArgumentError(
            f"provider must be one of {', '.join(PROVIDERS)}, not {provider!r}", argument="provider"
        )
    if model is not None and not isinstance(model, str):
        raise InvalidArgumentError(f"model must be a model name (str), not {type(model).__name__}", argument="model")
    if on is not None and not isinstance(on, date):
        raise InvalidArgumentError(
            f"on must be a datetime.date (e.g. date(2026, 12, 1)), not {type(on).__name__}", argument="on"
        )
    check_int("max_example_tokens", max_example_tokens, minimum=1, optional=True)
    issues: list[FileIssue] = []
    info = None
    price = unit = None
    as_of = None
    encoding: str | None = None
    limit = max_example_tokens
    name = model
    vision: bool | None = None
    if model:
        from ..catalog import default_catalog

        cat = default_catalog()
        as_of = cat.as_of
        info = cat.find_fine_tune_model(model)
        if info is None:
            issues.append(
                FileIssue(
                    IssueCode.UNKNOWN_MODEL,
                    f"{model} is not in finetune_embed's catalog (as of {cat.as_of}): its token limit, methods and "
                    "price are unknown; check the name or add it with catalog.override_fine_tune_model()",
                )
            )
            from ..tokenizer import encoding_name_for_model

            encoding = encoding_name_for_model(model)
        else:
            name = info.name
            encoding = info.encoding
            vision = info.vision
            if limit is None:
                limit = info.max_example_tokens
            price = info.training_price_per_1m
            unit = info.training_price_unit
            avail = cat.availability(model, on=on, provider=provider)  # type: ignore[arg-type]
            if not avail.ok:
                issues.append(FileIssue(IssueCode.MODEL_UNAVAILABLE, avail.message))
            elif avail.status == "shutting_down":
                issues.append(FileIssue(IssueCode.MODEL_SHUTTING_DOWN, avail.message))
            if method is not None and method not in info.methods:
                issues.append(
                    FileIssue(
                        IssueCode.METHOD_NOT_SUPPORTED,
                        f"{info.name} cannot be fine-tuned with method {method!r} (it supports "
                        f"{', '.join(sorted(info.methods))}); pick another model or method",
                    )
                )
    if encoding is None and (want_stats or limit is not None):
        from ..tokenizer import DEFAULT_ENCODING

        encoding = DEFAULT_ENCODING
    if counting == "cookbook":
        encoding = COOKBOOK_ENCODING
        if limit is None:
            limit = COOKBOOK_DEFAULT_LIMIT
    profile = Profile(
        method=method,
        model=name,
        vision=vision,
        max_example_tokens=limit,
        encoding=encoding if (want_stats or limit is not None) else None,
        counting=counting,
        want_stats=want_stats,
    )
    return Resolved(profile, issues, info, price, unit, as_of)


_EXPECTED = {"dpo": "preference", "reinforcement": "chat"}


def format_issues(fmt: str, resolved: Resolved) -> list[FileIssue]:
    """Check the data's format against the method and model; set the profile's effective method."""
    p = resolved.profile
    info = resolved.info
    out: list[FileIssue] = []
    method = p.method
    if method is None:
        if fmt == "preference":
            method = "dpo"
        elif info is not None and set(info.methods) == {"reinforcement"}:
            method = "reinforcement"
        else:
            method = "supervised"
        if info is not None and method not in info.methods:
            out.append(
                FileIssue(
                    IssueCode.METHOD_NOT_SUPPORTED,
                    f"{fmt} data trains with method {method!r}, which {info.name} does not support (it supports "
                    f"{', '.join(sorted(info.methods))}); pick another model",
                )
            )
    expected = _EXPECTED.get(method) or ("completion" if info is not None and info.prompt_completion else "chat")
    if fmt != expected:
        if expected == "completion":
            why = f"{info.name if info else 'the model'} takes prompt/completion examples only"
        elif fmt == "completion":
            why = (
                f"prompt/completion data is only for babbage-002 and davinci-002; {method} fine-tuning of "
                f"{info.name if info else 'chat models'} needs chat examples (`finetune-embed dataset convert`)"
            )
        else:
            key = "input" if expected == "preference" else "messages"
            why = (
                f'method {method!r} needs {expected} examples (the service answers "Example 1 is missing key '
                f"'{key}'\")"
            )
        out.append(FileIssue(IssueCode.FORMAT_NOT_SUPPORTED, f"The data is in the {fmt} format but {why}."))
    p.method = method
    return out
