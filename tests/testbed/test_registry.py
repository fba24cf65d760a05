"""The registry the testbed emits is a valid difusor registry whose pinned keys are
the ones the hosts really present."""

from __future__ import annotations

from pathlib import Path

import pytest

from prep_iac.models.difusor import Registry
from prep_iac.models.loading import load_model
from prep_iac.testbed import Testbed
from prep_iac.testbed.ssh import keyscan

from .testbed_support import cli

pytestmark = pytest.mark.testbed


def test_emitted_registry_validates_and_pins_the_keys_hosts_present(
    testbed: Testbed, tmp_path: Path
) -> None:
    path = tmp_path / "registry.yaml"
    result = cli("testbed", "registry", "--name", testbed.name, "-o", str(path))
    assert result.returncode == 0, result.stderr
    registry = load_model(Registry, path)
    assert [d.id for d in registry.difusores] == [h.name for h in testbed.hosts]
    for difusor in registry.difusores:
        (node,) = difusor.nodes
        assert node.host_key in keyscan(node.host)


def test_known_hosts_file_pins_every_host(testbed: Testbed) -> None:
    lines = testbed.known_hosts.read_text().splitlines()
    assert sorted(lines) == sorted(f"{h.address} {h.host_key}" for h in testbed.hosts)
