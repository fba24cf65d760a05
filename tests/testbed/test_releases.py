"""Hosts of either Debian release: names and images. (Both in one testbed: the drill's,
which runs one host on Debian 13; a Debian 13 host's suites: test_debian13_deploy_e2e.)"""

from __future__ import annotations

import pytest

from prep_iac.testbed import TestbedError, TestbedSettings, image
from prep_iac.testbed.settings import release_suite
from prep_iac.testbed.testbed import Testbed


@pytest.mark.parametrize(
    ("asked", "suite"),
    [("bookworm", "bookworm"), ("12", "bookworm"), ("trixie", "trixie"), ("13", "trixie"),
     ("Debian13", "trixie"), ("debian-12", "bookworm")],
)  # fmt: skip
def test_a_release_is_named_by_codename_or_number(asked: str, suite: str) -> None:
    assert release_suite(asked) == suite


def test_an_unknown_release_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'sid': expected one of bookworm \(12\), trixie \(13\)"):
        release_suite("sid")


def test_releases_are_given_for_all_hosts_or_one_per_host() -> None:
    settings = TestbedSettings()
    assert Testbed._suites(2, settings, None) == ["bookworm", "bookworm"]
    assert Testbed._suites(2, settings, "13") == ["trixie", "trixie"]
    assert Testbed._suites(2, settings, ["12", "trixie"]) == ["bookworm", "trixie"]
    with pytest.raises(TestbedError, match="3 releases given for 2 hosts"):
        Testbed._suites(2, settings, ["12", "13", "13"])
    with pytest.raises(TestbedError, match="--release: release 'focal'"):
        Testbed._suites(1, settings, "focal")


def test_each_release_has_its_own_cached_image() -> None:
    settings = TestbedSettings()
    assert image.image_dir(settings) == image.image_dir(settings, "bookworm")
    assert image.image_dir(settings, "trixie") != image.image_dir(settings, "bookworm")
    assert image.image_dir(settings, "trixie").name.startswith("trixie-")
