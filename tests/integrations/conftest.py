"""The LangChain / LlamaIndex adapters' tests need their extras.

Locally, a module whose ecosystem is not installed is skipped with the reason; under ``CI=true`` it fails
(``.ci/run`` installs ``.[dev,pgvector,langchain,llamaindex]``).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or skip the calling test module (fail under CI=true)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if IN_CI:
            raise RuntimeError(f"CI=true but {module} is missing ({exc}): pip install -e '.[dev,{extra}]'") from exc
        pytest.skip(f"{module} is not installed (pip install -e '.[dev,{extra}]')", allow_module_level=True)
        raise
