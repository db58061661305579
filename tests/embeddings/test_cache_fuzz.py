"""Hypothesis over damaged cache files: every outcome is exact vectors or a typed error (#11)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from cache_fuzz import Damage, base_file, run_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, Path]:
    folder = tmp_path_factory.mktemp("cache-fuzz")
    path, truth = base_file(folder)
    return path, truth, folder


damages = st.one_of(
    st.builds(
        Damage,
        flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), min_size=1, max_size=16).map(tuple),
    ),
    st.builds(
        Damage,
        overwrites=st.lists(st.tuples(st.integers(0, 1 << 20), st.binary(min_size=1, max_size=512)), min_size=1,
                            max_size=3).map(tuple),
    ),
    st.builds(Damage, length=st.integers(0, 1 << 20), pad=st.integers(0, 255)),
    st.builds(Damage, garbage=st.binary(max_size=8192)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=damages)
def test_a_damaged_cache_file_never_gives_a_wrong_vector_or_an_untyped_error(
    base: tuple[Path, np.ndarray, Path], damage: Damage, caplog: pytest.LogCaptureFixture
) -> None:
    path, truth, folder = base
    with caplog.at_level(logging.ERROR):
        outcome = run_case(path, truth, damage, folder)
    assert outcome in ("ok", "typed")
