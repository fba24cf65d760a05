"""Testbed hosts are real: systemd as PID 1, sshd, their own identity and address,
no way out, and another testbed can live beside them."""

from __future__ import annotations

import time
from ipaddress import ip_interface
from pathlib import Path

import pytest

from prep_iac.testbed import Testbed, TestbedError, image
from prep_iac.testbed.leftovers import of_testbed
from prep_iac.testbed.network import TESTBED_RANGE
from prep_iac.testbed.pytest_plugin import TestbedFactory

from .testbed_support import cli

pytestmark = pytest.mark.testbed


def test_every_host_runs_systemd_as_pid_1_and_is_running(testbed: Testbed) -> None:
    assert len(testbed.hosts) >= 2
    for host in testbed.hosts:
        out = testbed.ssh(
            host.name, "systemctl is-system-running --wait; ps -o comm= -p 1; hostname", check=False
        ).stdout.split()
        state, pid1, hostname = out[0], out[1], out[2]
        failed = testbed.ssh(host.name, "systemctl --failed --no-legend --plain").stdout
        assert state == "running" or (state == "degraded" and failed.strip()), (host.name, failed)
        assert pid1 == "systemd"
        assert hostname == host.name


def test_a_host_sets_its_own_network_sysctls_but_not_the_machines_kernel(
    testbed: Testbed,
) -> None:
    first, second = testbed.hosts[0].name, testbed.hosts[1].name
    key = "/proc/sys/net/ipv4/conf/all/log_martians"
    before = testbed.ssh(second, f"cat {key}").stdout.strip()
    machine = Path(key).read_text()
    wanted = "0" if before == "1" else "1"
    try:
        testbed.ssh(first, f"echo {wanted} > {key}")
        assert testbed.ssh(first, f"cat {key}").stdout.strip() == wanted
        # The host's own namespace changed, not its neighbour's nor the machine's.
        assert testbed.ssh(second, f"cat {key}").stdout.strip() == before
        assert Path(key).read_text() == machine
    finally:
        testbed.ssh(first, f"echo {before} > {key}")
    kernel = testbed.ssh(first, "echo 1 > /proc/sys/kernel/kptr_restrict", check=False)
    assert kernel.returncode != 0 and "Read-only file system" in kernel.stderr


def test_hosts_have_their_own_host_key_and_machine_id(testbed: Testbed) -> None:
    keys = {host.host_key for host in testbed.hosts}
    ids = {testbed.ssh(h.name, "cat /etc/machine-id").stdout.strip() for h in testbed.hosts}
    assert len(keys) == len(ids) == len(testbed.hosts)


def test_a_unit_stopped_on_one_host_leaves_the_same_unit_on_another_alone(
    testbed: Testbed,
) -> None:
    """Each host's systemd has a cgroup tree of its own: when they shared one, a unit's
    stop on one host waited (90 s) on that unit's processes in every other host."""
    first, second = testbed.hosts[0].name, testbed.hosts[1].name
    unit = "prep-iac-probe"
    main_pid = f"systemctl show -p MainPID --value {unit}"
    for name in (first, second):
        testbed.ssh(name, f"systemd-run --unit={unit} -p TimeoutStopSec=60 sleep 600")
    try:
        before = testbed.ssh(second, main_pid).stdout.strip()
        status = testbed.ssh(first, f"systemctl status {unit} --no-pager", check=False)
        assert "Input/output error" not in status.stdout + status.stderr
        assert "sleep 600" in status.stdout
        start = time.monotonic()
        testbed.ssh(first, f"systemctl stop {unit}", timeout=120)
        assert time.monotonic() - start < 10
        assert testbed.ssh(second, main_pid).stdout.strip() == before != "0"
    finally:
        for name in (first, second):
            testbed.ssh(name, f"systemctl stop {unit}", check=False, timeout=120)


def test_every_address_on_every_host_is_in_the_benchmark_range(testbed: Testbed) -> None:
    for host in testbed.hosts:
        assert host.address in TESTBED_RANGE and host.gateway in TESTBED_RANGE
        out = testbed.ssh(host.name, "ip -o -4 addr show").stdout
        addresses = [ip_interface(line.split()[3]) for line in out.splitlines()]
        for address in addresses:
            assert address.ip.is_loopback or address.ip in TESTBED_RANGE, address


def test_hosts_have_no_route_out(testbed: Testbed) -> None:
    for host in testbed.hosts:
        assert "default" not in testbed.ssh(host.name, "ip route show").stdout
        # Asking the kernel for a route sends nothing.
        probe = testbed.ssh(host.name, "ip route get 192.0.2.2", check=False)
        assert probe.returncode != 0 and "unreachable" in probe.stderr


def test_a_second_testbed_coexists_and_its_down_spares_the_first(
    testbed: Testbed, testbed_factory: TestbedFactory
) -> None:
    other = testbed_factory("coexist", hosts=1)
    assert other.state.slot != testbed.state.slot
    mine = {str(h.address) for h in testbed.hosts}
    assert not mine & {str(h.address) for h in other.hosts}
    assert other.ssh("difusor-1", "hostname").stdout.strip() == "difusor-1"
    veths = [h.veth for h in other.hosts]
    other.down()
    assert of_testbed(other.name, veths, other.settings, other.state.slot) == []
    for host in testbed.hosts:
        assert testbed.ssh(host.name, "true").returncode == 0


def test_cli_lists_the_hosts_and_opens_ssh_on_them(testbed: Testbed) -> None:
    listing = cli("testbed", "list")
    assert listing.returncode == 0, listing.stderr
    for host in testbed.hosts:
        assert str(host.address) in listing.stdout
        ssh = cli("testbed", "ssh", "--name", testbed.name, host.name, "uname", "-n")
        assert ssh.returncode == 0 and ssh.stdout.strip() == host.name, ssh.stderr


def test_hosts_start_from_a_cached_host_neutral_image(testbed: Testbed) -> None:
    assert testbed.state.image == image.rootfs(testbed.settings)
    assert image.manifest(testbed.settings) is not None
    rootfs = image.rootfs(testbed.settings)
    assert not list((rootfs / "etc/ssh").glob("ssh_host_*"))
    assert (rootfs / "etc/machine-id").read_text() == ""
    # What a host wrote stays in its own overlay, never in the image.
    testbed.ssh(testbed.hosts[0].name, "touch /etc/written-by-host")
    assert not (rootfs / "etc/written-by-host").exists()


def test_the_image_is_not_rebuilt_under_running_hosts(testbed: Testbed) -> None:
    in_use = f"cannot rebuild the image while testbeds use it: .*{testbed.name}"
    with pytest.raises(TestbedError, match=in_use):
        image.ensure(testbed.settings, rebuild=True)
