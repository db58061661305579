"""Progress bars: tqdm when someone watches, otherwise a silent bar that starts no thread."""

from __future__ import annotations

import threading

import pytest

from finetune_embed._progress import SilentBar, progress_bar, progress_enabled


def test_silent_bar_starts_no_thread() -> None:
    before = {t.ident for t in threading.enumerate()}
    with progress_bar(total=10, desc="quiet", progress=False) as bar:
        bar.update(4)
        bar.set_postfix_str("x", refresh=False)
        bar.set_postfix({"a": 1}, refresh=False)
        bar.total = 20
        bar.refresh()
    assert isinstance(bar, SilentBar)
    assert bar.n == 4
    assert {t.ident for t in threading.enumerate()} <= before


def test_shown_bar_is_tqdm(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from tqdm import tqdm

    monkeypatch.delenv("FINETUNE_EMBED_PROGRESS", raising=False)
    before = {t.ident for t in threading.enumerate()}
    with progress_bar(total=3, desc="loud", progress=True) as bar:
        bar.update(3)
        assert {t.ident for t in threading.enumerate()} <= before  # no tqdm monitor thread
    assert isinstance(bar, tqdm)
    assert "loud" in capsys.readouterr().err


def test_environment_silences_every_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_EMBED_PROGRESS", "0")
    assert not progress_enabled(True)
    assert isinstance(progress_bar(total=1, desc="x", progress=True), SilentBar)
