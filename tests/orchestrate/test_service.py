"""``prep-iac run --systemd-unit``: a unit systemd accepts, running the same command."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from prep_iac.presets import load_election
from prep_iac.publish.signing import generate_signing_key

from .test_cli import REGISTRY, run


@pytest.fixture
def setup(tmp_path: Path) -> list[str]:
    """``prep-iac run`` options for a service under ``tmp_path``."""
    key = tmp_path / "keys" / "iec_ed25519"
    key.parent.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    signing = generate_signing_key(tmp_path / "keys" / "signing")
    config = tmp_path / "orchestrator.yaml"
    config.write_text("iec_list: {directory: sitio}\ninstructions_dir: instrucciones\n")
    return [
        "--difusores", str(REGISTRY), "--cuts", str(tmp_path / "cortes"),
        "--db", str(tmp_path / "estado" / "orchestrator.sqlite3"), "--ssh-key", str(key),
        "--signing-key", str(signing), "--config", str(config), "--workdir", str(tmp_path / "w"),
    ]  # fmt: skip


def unit_of(*args: str) -> str:
    result = run("run", "--systemd-unit", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def service(text: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser["Service"]


def test_rendered_unit_passes_systemd_analyze_verify(setup: list[str], tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None and not os.environ.get("CI"):
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "prep-iac-run.service"
    unit.write_text(unit_of(*setup))
    verify = subprocess.run(
        # --man=no: verify runs man(1) for Documentation=man:..., and man-db is not on
        # every machine (Debian 13's minimal images lack it); the keys and values are the test.
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.strip() == "", verify.stderr  # no unknown key, no bad value


def test_unit_stops_after_the_transfer_budget_and_writes_only_its_paths(
    setup: list[str], tmp_path: Path
) -> None:
    section = service(unit_of(*setup))
    budget = load_election("coahuila-2018").transfer_budget_seconds
    assert section["Restart"] == "on-failure"
    assert section["KillSignal"] == "SIGTERM"
    assert int(section["TimeoutStopSec"]) > budget
    assert (section["ProtectSystem"], section["NoNewPrivileges"], section["PrivateTmp"]) == (
        "strict", "yes", "yes",
    )  # fmt: skip
    assert sorted(section["ReadWritePaths"].split()) == [
        str(tmp_path / name) for name in ("estado", "instrucciones", "sitio", "w")
    ]
    command = shlex.split(section["ExecStart"])
    assert Path(command[0]).is_absolute() and os.access(command[0], os.X_OK)
    assert command[1:4] == ["run", "--election", "coahuila-2018"]
    # The in-flight pushes get the whole transfer budget unless told otherwise.
    assert command[command.index("--stop-grace") + 1] == str(budget)
    assert int(service(unit_of(*setup, "--stop-grace", "600"))["TimeoutStopSec"]) > 600


def test_exec_start_is_the_same_run_command(setup: list[str]) -> None:
    text = unit_of(*setup)
    command = shlex.split(service(text)["ExecStart"])
    # ExecStart's options, given back to `run --systemd-unit`, make the same unit.
    assert unit_of(*command[2:]) == text


def test_systemd_unit_refuses_a_drill(setup: list[str]) -> None:
    result = run("run", "--systemd-unit", "--drill", "10", *setup)
    assert result.returncode == 2
    assert "not --drill" in result.stderr
