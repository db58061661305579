"""Progress bars: tqdm, shown only where someone watches, and never with a thread of its own."""

from __future__ import annotations

import threading

import pytest
from tqdm import tqdm

from finetune_embed._progress import progress_bar, progress_enabled


def _threads() -> set[int | None]:
    return {t.ident for t in threading.enumerate()}


def test_silent_bar_starts_no_thread() -> None:
    before = _threads()
    with progress_bar(total=10, desc="quiet", progress=False) as bar:
        bar.update(4)
        bar.set_postfix_str("x", refresh=False)
        assert _threads() <= before
    assert isinstance(bar, tqdm)
    assert bar.disable
    assert _threads() <= before


def test_shown_bar_starts_no_thread(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FINETUNE_EMBED_PROGRESS", raising=False)
    before = _threads()
    with progress_bar(total=3, desc="loud", progress=True) as bar:
        assert not bar.disable
        bar.update(3)
        assert _threads() <= before  # no tqdm monitor thread
    assert isinstance(bar, tqdm)
    assert "loud" in capsys.readouterr().err
    assert _threads() <= before


def test_environment_silences_every_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_EMBED_PROGRESS", "0")
    assert not progress_enabled(True)
    assert progress_bar(total=1, desc="x", progress=True).disable
