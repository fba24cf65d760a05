"""One orchestrator per state: the lock, the commands that take it, the manual push."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from prep_iac.drill.mailbox import free_port
from prep_iac.models.difusor import Registry
from prep_iac.orchestrate.lock import StateLocked, state_lock
from prep_iac.orchestrate.store import Store
from prep_iac.publish.signing import generate_signing_key

from .helpers import Night
from .test_cli import run as cli

HOLD = """
import sys
from pathlib import Path
from prep_iac.orchestrate.lock import state_lock
with state_lock(Path(sys.argv[1]), "run"):
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """(SSH key, signing key)."""
    ssh = generate_signing_key(tmp_path / "keys" / "iec_ed25519")
    return ssh, generate_signing_key(tmp_path / "keys" / "signing")


@pytest.fixture
def loopback_registry(registry: Registry, tmp_path: Path) -> Path:
    """The test registry with one node per difusor, on a loopback port where nothing listens."""
    data = registry.model_dump(mode="json")
    for difusor in data["difusores"]:
        difusor["nodes"] = [{**difusor["nodes"][0], "host": "127.0.0.1", "port": free_port()}]
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.fixture
def holder(night: Night) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the state's lock, until the test ends."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(night.store.path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    yield child
    child.kill()
    child.wait(timeout=30)


def test_second_holder_is_refused_naming_the_first(
    night: Night, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(StateLocked) as refused, state_lock(night.store.path, "disable uadec"):
        pass
    found = refused.value.holder
    assert found is not None
    assert (found.pid, found.host, found.command) == (holder.pid, socket.gethostname(), "run")
    message = str(refused.value)
    assert f"'run' (pid {holder.pid} on {socket.gethostname()}, since" in message
    assert found.since.isoformat(timespec="seconds") in message


def test_a_killed_holder_leaves_no_stale_lock(night: Night, holder: subprocess.Popen[str]) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    with state_lock(night.store.path, "run") as mine:
        assert mine.pid == os.getpid()


def test_every_state_changing_command_refuses_while_another_holds_the_state(
    night: Night, holder: subprocess.Popen[str], loopback_registry: Path, one_cut: Path,
    keys: tuple[Path, Path], tmp_path: Path,
) -> None:  # fmt: skip
    ssh, signing = keys
    db = str(night.store.path)
    common = ["--difusores", str(loopback_registry), "--ssh-key", str(ssh),
              "--signing-key", str(signing)]  # fmt: skip
    orchestrator = [*common, "--cuts", str(one_cut.parent), "--db", db,
                    "--workdir", str(tmp_path / "work")]  # fmt: skip
    commands = {
        "run": ["run", *orchestrator, "--drill", "1"],
        "reinstate": ["reinstate", "uadec", *orchestrator],
        "disable": ["disable", "uadec", "--reason", "prueba", "--db", db,
                    "--difusores", str(loopback_registry)],
        "push": ["push", "--cut", str(one_cut), *common, "--db", db],
    }  # fmt: skip
    before = night.store.events()
    for name, args in commands.items():
        result = cli(*args)
        assert result.returncode == 1, (name, result.stderr)
        assert f"is in use by 'run' (pid {holder.pid} on {socket.gethostname()}" in result.stderr
    assert night.store.events() == before  # nothing was done or recorded


def test_manual_push_skips_what_the_store_disabled_unless_forced(
    night: Night, loopback_registry: Path, one_cut: Path, keys: tuple[Path, Path]
) -> None:
    for index in range(3):  # uadec fails three periods: the store disables it
        night.period(index, {"uadec": False, "vanguardia": True})
    ssh, signing = keys
    args = ["push", "--cut", str(one_cut), "--difusores", str(loopback_registry),
            "--ssh-key", str(ssh), "--signing-key", str(signing), "--db", str(night.store.path),
            "--operator", "guardia", "--json", "--budget", "5"]  # fmt: skip
    plain = cli(*args)
    assert plain.returncode == 1  # vanguardia is unreachable here
    assert [d["difusor"] for d in json.loads(plain.stdout)["difusores"]] == ["vanguardia"]
    assert "not pushed, disabled by the orchestrator: uadec (--force to push anyway)" in (
        plain.stderr
    )
    forced = cli(*args, "--force")
    assert sorted(d["difusor"] for d in json.loads(forced.stdout)["difusores"]) == [
        "uadec", "vanguardia",
    ]  # fmt: skip
    records = [e.detail for e in night.store.events(kinds=("manual-push",))]
    assert [(r["operator"], r["skipped"], r["forced"], r["failed"]) for r in records] == [
        ("guardia", ["uadec"], [], ["vanguardia"]),
        ("guardia", [], ["uadec"], ["uadec", "vanguardia"]),
    ]
    assert {r["cut_id"] for r in records} == {one_cut.name}
    # The store still has uadec disabled: a manual push is no reinstatement.
    with Store(night.store.path) as store:
        assert store.state("uadec").status.value == "disabled"


def test_force_without_the_state_or_a_missing_state_is_refused(
    loopback_registry: Path, one_cut: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    ssh, signing = keys
    args = ["push", "--cut", str(one_cut), "--difusores", str(loopback_registry),
            "--ssh-key", str(ssh), "--signing-key", str(signing)]  # fmt: skip
    forced = cli(*args, "--force")
    assert forced.returncode == 2
    assert "--force applies to the orchestrator's state: pass --db" in forced.stderr
    typo = tmp_path / "orchestrator.sqlite"
    missing = cli(*args, "--db", str(typo))
    assert missing.returncode == 1
    assert f"no orchestrator database at {typo}" in missing.stderr
    assert not typo.exists()
