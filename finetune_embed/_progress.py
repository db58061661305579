"""Progress bars: ``tqdm.auto`` (a widget in Jupyter), on only where someone is watching.

``progress=None`` (the default everywhere) shows a bar only when stderr is a terminal or the code runs in a
notebook; ``True`` forces it, ``False`` silences it. ``FINETUNE_EMBED_PROGRESS=0`` silences every bar.
"""

from __future__ import annotations

import functools
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
    """A tqdm bar (one that starts no thread), disabled unless :func:`progress_enabled` says otherwise."""
    return _bar_class()(
        total=total, desc=desc, unit=unit, disable=not progress_enabled(progress), dynamic_ncols=True, **kwargs
    )


@functools.cache
def _bar_class() -> type[tqdm[Any]]:
    """``tqdm.auto.tqdm`` without its monitor thread (``monitor_interval = 0``; tqdm starts it with every bar, even
    a disabled one, and never stops it): our bars are updated often enough, and a process with a thread running
    cannot fork its dataset-validation workers safely."""
    from tqdm.auto import tqdm as auto_tqdm

    return type("Bar", (auto_tqdm,), {"monitor_interval": 0})
