"""Cuts generated once per session: generation is the expensive part of these tests."""

from __future__ import annotations

import pytest

from prep_iac.cuts import CutInfo, generate_night
from prep_iac.presets import load_election

NIGHT_EVERY = 21
"""With 10-minute periods: 18:00, 21:30, 01:00 and 04:30, the night's whole curve in 4 cuts."""


@pytest.fixture(scope="session")
def night(tmp_path_factory: pytest.TempPathFactory) -> list[CutInfo]:
    """Four coahuila-2018 cuts spread over the night."""
    out = tmp_path_factory.mktemp("night")
    return generate_night(load_election("coahuila-2018"), out, cuts=4, seed=7, every=NIGHT_EVERY)


@pytest.fixture(scope="session")
def consecutive(tmp_path_factory: pytest.TempPathFactory) -> list[CutInfo]:
    """Three consecutive coahuila-2018 cuts, 10 minutes apart."""
    out = tmp_path_factory.mktemp("consecutive")
    return generate_night(load_election("coahuila-2018"), out, cuts=3, seed=7)


@pytest.fixture(scope="session")
def night_2017(tmp_path_factory: pytest.TempPathFactory) -> list[CutInfo]:
    """Two coahuila-2017 cuts (three contests), at 18:00 and at 03:00."""
    out = tmp_path_factory.mktemp("night2017")
    return generate_night(load_election("coahuila-2017"), out, cuts=2, seed=7, every=36)
