"""Fixtures: the coahuila-2018 election, the test registry, a fresh SQLite store, one cut."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from prep_iac.models.difusor import Registry
from prep_iac.models.election import Election
from prep_iac.models.loading import load_model
from prep_iac.orchestrate.store import Store
from prep_iac.presets import load_election

from .helpers import Night, small_night

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def registry() -> Registry:
    return load_model(Registry, FIXTURES / "registry-ok.yaml")


@pytest.fixture
def election() -> Election:
    return load_election("coahuila-2018")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "orchestrator.sqlite3") as opened:
        yield opened


@pytest.fixture
def night(store: Store, registry: Registry, election: Election) -> Night:
    return Night(store, registry, election)


@pytest.fixture(scope="session")
def one_cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 18:00 cut of coahuila-2018, reduced (``small_night``)."""
    base = tmp_path_factory.mktemp("one-cut")
    [cut] = small_night(load_election("coahuila-2018"), base, cuts=1, seed=5)
    return cut
