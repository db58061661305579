"""Progress bars: ``tqdm.auto`` (a widget in Jupyter), on only where someone is watching.

``progress=None`` (the default everywhere) shows a bar only when stderr is a terminal or the code runs in a
notebook; ``True`` forces it, ``False`` silences it. ``FINETUNE_EMBED_PROGRESS=0`` silences every bar.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["progress_bar", "progress_enabled"]


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_enabled(progress: bool | None) -> bool:
    """Resolve a ``progress`` argument to on or off."""
    if os.environ.get("FINETUNE_EMBED_PROGRESS", "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    if progress is not None:
        return progress
    try:
        return sys.stderr.isatty() or _in_notebook()
    except (AttributeError, ValueError):
        return False


def progress_bar(
    *, total: float | None, desc: str, unit: str = "it", progress: bool | None = None, **kwargs: Any
) -> tqdm[Any]:
    """A tqdm bar, disabled unless :func:`progress_enabled` says otherwise."""
    from tqdm.auto import tqdm as auto_tqdm

    return auto_tqdm(
        total=total, desc=desc, unit=unit, disable=not progress_enabled(progress), dynamic_ncols=True, **kwargs
    )
