"""The drill's scenario file: what it may ask for, and clear errors for the rest."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from prep_iac.drill.night import Scenario, default_scenario


def scenario(**changes: Any) -> Scenario:
    data = default_scenario().model_dump()
    data.update(changes)
    return Scenario.model_validate(data)


def test_the_default_night_runs_one_host_on_debian_13() -> None:
    night = default_scenario()
    assert night.host_releases("bookworm") == ["bookworm", "bookworm", "bookworm", "trixie",
                                               "bookworm"]  # fmt: skip


def test_releases_by_number_or_codename() -> None:
    night = scenario(releases={1: "13", 5: "debian12"})
    assert night.host_releases("bookworm") == ["trixie", "bookworm", "bookworm", "bookworm",
                                               "bookworm"]  # fmt: skip


@pytest.mark.parametrize(
    ("releases", "message"),
    [({9: "trixie"}, r"releases name hosts \[9\], not in 1..5"),
     ({2: "sid"}, r"releases, host 2: release 'sid': expected one of bookworm \(12\)")],
)  # fmt: skip
def test_a_wrong_release_is_refused_naming_the_host(releases: dict[int, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        scenario(releases=releases)


def test_faults_that_chain_into_three_strikes_are_refused() -> None:
    """Period 6 may fail after period 5's failover; sshd stopped in 7-8 makes it three."""
    faults = [f.model_dump() for f in default_scenario().faults if f.kind != "stop-sshd"]
    faults.append({"kind": "stop-sshd", "difusor": "milenio", "node": 0, "start": 7, "periods": 2})
    with pytest.raises(ValidationError, match=r"faults on 'milenio' may fail periods 6-8 in a row"):
        scenario(faults=faults)
    assert scenario(faults=faults, expect_disabled={"vanguardia": 6, "milenio": 8})
