"""``inventories/testbed.py`` lets pyinfra target the running testbed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from prep_iac.testbed import Testbed

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parents[2]


def test_pyinfra_reaches_every_host_through_the_testbed_inventory(testbed: Testbed) -> None:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/pyinfra"), "-y", "inventories/testbed.py", "exec", "--", "uname -n"],
        cwd=ROOT,
        env={**os.environ, "PREP_IAC_TESTBED": testbed.name},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for host in testbed.hosts:
        assert f"[{host.name}] {host.name}" in result.stdout + result.stderr
