"""Without root, or without a tool or kernel feature, the testbed says exactly what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from prep_iac.testbed.preflight import missing_prerequisites

ROOT = Path(__file__).resolve().parents[2]


def test_a_non_root_user_is_told_that_root_is_missing() -> None:
    missing = missing_prerequisites(euid=1000)
    assert missing[0].startswith("root: run as root")


def test_a_machine_without_overlay_or_namespaces_is_told_which(tmp_path: Path) -> None:
    fake_proc = tmp_path / "proc"
    fake_proc.mkdir()
    (fake_proc / "filesystems").write_text("nodev\tproc\n\text4\n")
    missing = missing_prerequisites(euid=0, proc=fake_proc)
    assert any("kernel filesystem 'overlay'" in m for m in missing)
    assert any("network namespaces" in m for m in missing)
    assert not any("'ext4'" in m for m in missing)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop to nobody"
)
def test_the_cli_run_as_nobody_names_root_and_changes_nothing() -> None:
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            str(ROOT / ".venv/bin/prep-iac"),
            "testbed",
            "up",
            "--name",
            "nobodytest",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"},
    )
    assert result.returncode != 0
    assert "root: run as root" in result.stderr
    assert not Path("/var/lib/prep-iac/testbed/nobodytest").exists()
