"""``testbed down`` leaves nothing behind, repeats safely and cleans up after an
``up`` that was killed, even one that lost its state file."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from prep_iac.testbed import Testbed, TestbedSettings
from prep_iac.testbed.leftovers import of_proxy, of_testbed
from prep_iac.testbed.pytest_plugin import require_testbed_machine
from prep_iac.testbed.state import STATE_FILE, Phase, load, recorded_names
from prep_iac.testbed.system import find_processes

from .testbed_support import PREP_IAC, cli

pytestmark = pytest.mark.testbed

SETTINGS = TestbedSettings()


@pytest.fixture(autouse=True)
def _machine() -> None:
    require_testbed_machine()


def assert_nothing_left(name: str, veths: list[str], slot: int) -> None:
    assert of_testbed(name, veths, SETTINGS, slot) == []
    if not recorded_names(SETTINGS.state_root):  # the proxy is shared with other testbeds
        assert of_proxy(SETTINGS) == []


def test_down_removes_every_trace_and_can_be_repeated() -> None:
    name = f"down{os.getpid()}"
    up = cli("testbed", "up", "--name", name, "--hosts", "2")
    assert up.returncode == 0, up.stderr
    bed = Testbed.load(name)
    veths, slot = [h.veth for h in bed.hosts], bed.state.slot
    assert of_testbed(name, veths, SETTINGS, slot)  # the listing does see a live testbed
    assert all(bed.is_running(h.name) for h in bed.hosts)
    for _ in range(2):
        down = cli("testbed", "down", "--name", name)
        assert down.returncode == 0, down.stderr
        assert_nothing_left(name, veths, slot)


def kill_up_midway(name: str) -> tuple[list[str], int]:
    """Start ``testbed up`` and SIGKILL it once a host is booting; return veths and slot."""
    process = subprocess.Popen(
        [*PREP_IAC, "testbed", "up", "--name", name, "--hosts", "3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    state = None
    while time.monotonic() < deadline:
        try:
            state = load(SETTINGS.state_root, name)
        except ValueError:
            state = None  # caught between writes
        if state and any(h.phase == Phase.STARTED for h in state.hosts):
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert state is not None and state.phase != Phase.UP, "up finished before it was killed"
    return [h.veth for h in state.hosts], state.slot


def test_down_after_a_killed_up_leaves_nothing() -> None:
    name = f"crash{os.getpid()}"
    veths, slot = kill_up_midway(name)
    # The killed up left hosts behind, as a crash would.
    assert find_processes("systemd-nspawn", f"prep-iac-{name}.")
    down = cli("testbed", "down", "--name", name)
    assert down.returncode == 0, down.stderr
    assert_nothing_left(name, veths, slot)


def test_down_cleans_up_by_name_when_the_state_file_is_lost() -> None:
    name = f"lost{os.getpid()}"
    veths, slot = kill_up_midway(name)
    (SETTINGS.state_root / name / STATE_FILE).unlink()
    down = cli("testbed", "down", "--name", name)
    assert down.returncode == 0, down.stderr
    assert_nothing_left(name, veths, slot)


def test_up_refuses_a_name_already_in_use_and_touches_nothing() -> None:
    name = f"twice{os.getpid()}"
    first = cli("testbed", "up", "--name", name, "--hosts", "1")
    try:
        assert first.returncode == 0, first.stderr
        second = cli("testbed", "up", "--name", name, "--hosts", "1")
        assert second.returncode != 0 and "already exists" in second.stderr
        assert Testbed.load(name).ssh("difusor-1", "true").returncode == 0
    finally:
        cli("testbed", "down", "--name", name)
