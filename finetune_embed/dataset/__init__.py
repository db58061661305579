"""Fine-tuning datasets: build, load, validate, describe, estimate, split and fix.

>>> from finetune_embed.dataset import Dataset
>>> report = Dataset.validate_file("train.jsonl", model="gpt-4o-mini", stats=True)  # doctest: +SKIP
>>> report.ok, report.stats.billed_tokens, report.stats.cost_usd  # doctest: +SKIP

Formats (auto-detected per file; mixing them is an error): chat (``messages``), preference / DPO (``input``,
``preferred_output``, ``non_preferred_output``) and legacy prompt/completion. Every issue carries a stable
:class:`IssueCode` (``docs/errors.md#<code>``), the 1-based line, a JSON path and a message saying how to fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._codes import CODE_INFO, CodeInfo, IssueCode
from ._dataset import Dataset, DatasetSplits
from ._fix import FixResult, fix_file
from ._images import image_tokens
from ._memory import ExampleTokens
from ._report import DatasetIssue, ValidationReport
from ._stats import DatasetStats, Distribution, default_epochs

if TYPE_CHECKING:
    from ._models import (
        AssistantMessage,
        ChatExample,
        CompletionExample,
        DeveloperMessage,
        FunctionCall,
        FunctionDefinition,
        FunctionMessage,
        ImagePart,
        ImageURL,
        PreferenceExample,
        PreferenceInput,
        SystemMessage,
        TextPart,
        Tool,
        ToolCall,
        ToolMessage,
        UserMessage,
    )

_MODELS = frozenset(
    {
        "AssistantMessage",
        "ChatExample",
        "CompletionExample",
        "DeveloperMessage",
        "FunctionCall",
        "FunctionDefinition",
        "FunctionMessage",
        "ImagePart",
        "ImageURL",
        "PreferenceExample",
        "PreferenceInput",
        "SystemMessage",
        "TextPart",
        "Tool",
        "ToolCall",
        "ToolMessage",
        "UserMessage",
    }
)  # the pydantic models: imported on first use, so that validating a file never loads pydantic

__all__ = [
    "CODE_INFO",
    "AssistantMessage",
    "ChatExample",
    "CodeInfo",
    "CompletionExample",
    "Dataset",
    "DatasetIssue",
    "DatasetSplits",
    "DatasetStats",
    "DeveloperMessage",
    "Distribution",
    "ExampleTokens",
    "FixResult",
    "FunctionCall",
    "FunctionDefinition",
    "FunctionMessage",
    "ImagePart",
    "ImageURL",
    "IssueCode",
    "PreferenceExample",
    "PreferenceInput",
    "SystemMessage",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolMessage",
    "UserMessage",
    "ValidationReport",
    "default_epochs",
    "fix_file",
    "image_tokens",
]


def __getattr__(name: str) -> Any:
    if name in _MODELS:
        from . import _models

        return getattr(_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
