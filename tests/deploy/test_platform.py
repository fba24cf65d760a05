"""The platform layer: which host gets which names, and a clear refusal for the rest."""

from __future__ import annotations

from typing import Any

import pytest
from pyinfra.api.exceptions import DeployError

from prep_iac.deploy.platform import DEBIAN_12, DEBIAN_13, platform_for


class FakeHost:
    """Just enough of a pyinfra host: a name and its LinuxDistribution fact."""

    def __init__(self, name: str | None, major: int | None) -> None:
        self.name = "web-1"
        self.distro: dict[str, Any] = {"name": name, "major": major, "minor": 0, "release_meta": {}}

    def get_fact(self, fact: Any) -> dict[str, Any]:
        return self.distro


@pytest.mark.parametrize(("major", "expected"), [(12, DEBIAN_12), (13, DEBIAN_13)])
def test_debian_12_and_13_get_their_platform(major: int, expected: Any) -> None:
    assert platform_for(FakeHost("Debian", major)) is expected


def test_releases_differ_only_where_the_distribution_does() -> None:
    # Suricata 7 comes from bookworm-backports on 12 and from main on 13.
    assert DEBIAN_12.backports == "bookworm-backports"
    assert DEBIAN_13.backports == ""
    assert DEBIAN_12.packages == DEBIAN_13.packages
    assert DEBIAN_12.label == "Debian 12 (bookworm)"
    assert DEBIAN_13.label == "Debian 13 (trixie)"


@pytest.mark.parametrize(
    ("name", "major", "found"),
    [
        ("Debian", 11, "Debian 11"),
        ("Debian", 14, "Debian 14"),
        ("Ubuntu", 24, "Ubuntu 24"),
        ("Rocky Linux", 9, "Rocky Linux 9"),
        (None, None, "an unknown distribution"),
    ],
)
def test_other_systems_are_refused_naming_what_was_found(
    name: str | None, major: int | None, found: str
) -> None:
    with pytest.raises(DeployError) as refused:
        platform_for(FakeHost(name, major))
    message = str(refused.value)
    assert message.startswith(f"web-1: {found} is not supported by the difusor deploy")
    assert "Debian 12 (bookworm), Debian 13 (trixie)" in message
    assert "Ubuntu LTS" in message
