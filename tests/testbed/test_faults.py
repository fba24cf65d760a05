"""Fault injection takes effect, is seen from outside as it would be in real
life, and reverts: shaped and cut links, blocked ports, stopped services, a full
disk and a skewed clock."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prep_iac.testbed import Testbed
from prep_iac.testbed.network import qdisc
from prep_iac.testbed.pytest_plugin import TestbedFactory
from prep_iac.testbed.state import HostState

from .testbed_support import cli, tcp_outcome

pytestmark = pytest.mark.testbed


@pytest.fixture
def host(testbed: Testbed) -> Iterator[HostState]:
    """The last host, with every fault undone after the test whatever happened."""
    chosen = testbed.hosts[-1]  # hosts[0] is the one other suites deploy on
    yield chosen
    testbed.unshape(chosen.name)
    testbed.link_up(chosen.name)
    testbed.unblock_port(chosen.name, 22)
    testbed.start_service(chosen.name, "ssh")
    testbed.clear_disk(chosen.name)
    testbed.clear_clock(chosen.name)


def scp_seconds(testbed: Testbed, host: HostState, source: Path) -> float:
    started = time.monotonic()
    subprocess.run(
        ["scp", "-q", "-F", str(testbed.ssh_config), str(source), f"{host.name}:/tmp/payload"],
        check=True,
        timeout=120,
    )
    return time.monotonic() - started


def test_shaped_link_carries_the_rate_and_unshaping_restores_it(
    testbed: Testbed, host: HostState, tmp_path: Path
) -> None:
    payload = tmp_path / "payload"
    payload.write_bytes(os.urandom(2_500_000))  # 20 Mbit: 2.0 s at 10 Mbit/s
    result = cli("testbed", "shape", "--name", testbed.name, host.name)  # default 10 Mbit/s
    assert result.returncode == 0, result.stderr
    testbed.state = Testbed.load(testbed.name).state
    assert "tbf" in qdisc(host.veth)
    shaped = scp_seconds(testbed, host, payload)
    assert 1.9 <= shaped <= 6, shaped
    testbed.unshape(host.name)
    assert "tbf" not in qdisc(host.veth)
    assert scp_seconds(testbed, host, payload) < 1.0


def test_link_down_cuts_the_host_off_and_link_up_restores_it(
    testbed: Testbed, host: HostState
) -> None:
    testbed.link_down(host.name)
    # Unreachable, and not through the machine's default route either.
    assert tcp_outcome(str(host.address)).startswith("error: [Errno 113]")
    assert testbed.ssh(host.name, "true", check=False).returncode == 255
    testbed.link_up(host.name)
    assert tcp_outcome(str(host.address)) == "open"
    assert testbed.ssh(host.name, "true").returncode == 0


def test_blocked_port_drops_silently_and_unblocking_restores(
    testbed: Testbed, host: HostState
) -> None:
    testbed.block_port(host.name, 22)
    assert tcp_outcome(str(host.address)) == "timeout"
    testbed.unblock_port(host.name, 22)
    assert tcp_outcome(str(host.address)) == "open"
    # The fault leaves nothing behind in the host's firewall.
    tables = subprocess.run(
        ["ip", "netns", "exec", host.netns, "nft", "list", "tables"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "prep_iac_faults" not in tables.stdout


def test_stopped_service_refuses_and_started_service_answers(
    testbed: Testbed, host: HostState
) -> None:
    testbed.stop_service(host.name, "ssh")
    assert tcp_outcome(str(host.address)) == "refused"
    testbed.start_service(host.name, "ssh")
    assert testbed.ssh(host.name, "systemctl is-active ssh").stdout.strip() == "active"


def test_full_disk_fails_writes_and_clearing_frees_it(testbed: Testbed, host: HostState) -> None:
    testbed.fill_disk(host.name)
    write = testbed.ssh(host.name, "dd if=/dev/zero of=/root/w bs=64k count=16", check=False)
    assert write.returncode != 0 and "No space left on device" in write.stderr
    assert testbed.ssh(host.name, "df --output=pcent / | tail -1").stdout.strip() == "100%"
    testbed.clear_disk(host.name)
    testbed.ssh(host.name, "dd if=/dev/zero of=/root/w bs=64k count=16 && rm /root/w")


@pytest.mark.parametrize("skew", [3600, -900])
def test_skewed_clock_is_what_ssh_sessions_see_and_clears(
    testbed: Testbed, host: HostState, skew: int
) -> None:
    testbed.skew_clock(host.name, skew)
    seen = int(testbed.ssh(host.name, "date +%s").stdout)
    assert abs(seen - (time.time() + skew)) < 30
    testbed.clear_clock(host.name)
    seen = int(testbed.ssh(host.name, "date +%s").stdout)
    assert abs(seen - time.time()) < 30


# Oneshot: "systemctl restart" returns once the probe has written the time.
PROBE_UNIT = """[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'date +%%s > /run/clockprobe'
"""


def test_skewed_clock_reaches_the_units_named_and_clears(testbed: Testbed, host: HostState) -> None:
    unit = "/etc/systemd/system/clockprobe.service"
    testbed.ssh(host.name, f"cat > {unit} <<'EOF'\n{PROBE_UNIT}EOF\nsystemctl daemon-reload")
    try:
        testbed.skew_clock(host.name, 7200, units=["clockprobe.service"])
        seen = int(testbed.ssh(host.name, "cat /run/clockprobe").stdout)
        assert abs(seen - (time.time() + 7200)) < 30
        testbed.clear_clock(host.name)
        seen = int(testbed.ssh(host.name, "cat /run/clockprobe").stdout)
        assert abs(seen - time.time()) < 30
    finally:
        testbed.ssh(host.name, f"systemctl stop clockprobe; rm -f {unit}; systemctl daemon-reload")


def test_lan_hosts_meet_each_other_and_a_cut_lan_cable_isolates_one(
    testbed_factory: TestbedFactory,
) -> None:
    bed = testbed_factory("lan", hosts=2, lan=True)
    first, second = (bed.lan_address(h.name) for h in bed.hosts)
    assert tcp_outcome(first) == tcp_outcome(second) == "open"  # from the machine (the bridge)
    peer = f"exec 3<>/dev/tcp/{second}/22 && head -c 4 <&3"
    assert bed.ssh("difusor-1", f"bash -c '{peer}'").stdout == "SSH-"
    assert bed.floating_address() not in (first, second)
    bed.lan_down("difusor-2")
    assert tcp_outcome(second, timeout=1) != "open"
    assert bed.ssh("difusor-1", f"timeout 2 bash -c '{peer}'", check=False).returncode != 0
    assert bed.ssh("difusor-2", "true").returncode == 0  # its own link is untouched
    bed.lan_up("difusor-2")
    assert tcp_outcome(second) == "open"


def test_a_pulled_plug_kills_the_host_at_once_and_it_boots_again_from_its_disk(
    testbed_factory: TestbedFactory,
) -> None:
    bed = testbed_factory("plug", hosts=1)
    bed.ssh("difusor-1", "echo kept > /var/tmp/before-power-cut && sync")
    bed.power_off("difusor-1")
    assert not bed.is_running("difusor-1")
    assert Testbed.load(bed.name).host("difusor-1").faults == {"power": "off"}
    assert tcp_outcome(str(bed.host("difusor-1").address), timeout=1) != "open"
    bed.power_on("difusor-1")
    assert bed.is_running("difusor-1")
    assert bed.ssh("difusor-1", "cat /var/tmp/before-power-cut").stdout.strip() == "kept"
    booted = bed.ssh("difusor-1", "systemctl is-system-running --wait", check=False)
    assert booted.stdout.strip() in ("running", "degraded")
    assert Testbed.load(bed.name).host("difusor-1").faults == {}
