"""Progress bars: ``tqdm.auto`` (a widget in Jupyter), on only where someone is watching.

``progress=None`` (the default everywhere) shows a bar only when stderr is a terminal or the code runs in a
notebook; ``True`` forces it, ``False`` silences it. ``FINETUNE_EMBED_PROGRESS=0`` silences every bar.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any, Protocol, Self

__all__ = ["ProgressBar", "SilentBar", "progress_bar", "progress_enabled"]


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


class ProgressBar(Protocol):
    """What callers use of a bar: a ``tqdm`` when shown, a :class:`SilentBar` when not."""

    n: float
    total: float | None

    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None, /
    ) -> None: ...
    def update(self, n: float = 1) -> bool | None: ...
    def close(self) -> None: ...
    def refresh(self) -> None: ...
    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...


class SilentBar:
    """A bar that shows nothing. Unlike ``tqdm(disable=True)`` it starts no monitor thread: a process that has a
    thread running can no longer fork safely, which would slow down parallel dataset validation."""

    def __init__(self, total: float | None = None) -> None:
        self.n: float = 0
        self.total = total

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None, /
    ) -> None:
        return None

    def update(self, n: float = 1) -> bool | None:
        self.n += n
        return None

    def close(self) -> None:
        return None

    def refresh(self) -> None:
        return None

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        return None

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        return None


def progress_bar(
    *, total: float | None, desc: str, unit: str = "it", progress: bool | None = None, **kwargs: Any
) -> ProgressBar:
    """A tqdm bar when :func:`progress_enabled` says so, else a :class:`SilentBar`."""
    if not progress_enabled(progress):
        return SilentBar(total)
    bar: ProgressBar = _bar_class()(total=total, desc=desc, unit=unit, dynamic_ncols=True, **kwargs)
    return bar


_BAR_CLASS: Any = None


def _bar_class() -> Any:
    """``tqdm.auto.tqdm`` without its monitor thread (``monitor_interval = 0``): our bars are updated often enough,
    and a process with a thread running cannot fork its dataset-validation workers safely."""
    global _BAR_CLASS
    if _BAR_CLASS is None:
        from tqdm.auto import tqdm as auto_tqdm

        _BAR_CLASS = type("Bar", (auto_tqdm,), {"monitor_interval": 0})
    return _BAR_CLASS
