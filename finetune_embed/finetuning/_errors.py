"""Exceptions of the fine-tuning subpackage (defined in the one tree, :mod:`finetune_embed._exceptions`)."""

from __future__ import annotations

from .._exceptions import FileProcessingError, FileProcessingTimeoutError, ResultsUnavailableError

__all__ = ["FileProcessingError", "FileProcessingTimeoutError", "ResultsUnavailableError"]
