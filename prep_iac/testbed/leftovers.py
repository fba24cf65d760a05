"""What a testbed leaves on the machine, found by listing the machine itself
(not the state file), so tests can assert that ``down`` left nothing."""

from __future__ import annotations

from pathlib import Path

from prep_iac.testbed import host, network, proxy
from prep_iac.testbed.settings import TestbedSettings
from prep_iac.testbed.state import state_dir
from prep_iac.testbed.system import find_processes, loop_devices_backed_by, mounts_under


def netns_prefix(name: str) -> str:
    """Prefix of every namespace of testbed ``name``; the dot keeps 'ci' apart from 'ci-2'."""
    return f"prep-iac-{name}."


def of_testbed(
    name: str, veths: list[str], settings: TestbedSettings, slot: int | None = None
) -> list[str]:
    """Everything of testbed ``name`` (in ``slot``) still on the machine, one line each."""
    directory = state_dir(settings.state_root, name)
    found = [f"netns {ns}" for ns in network.our_netns(netns_prefix(name))]
    found += [f"veth {v}" for v in veths if network.link_exists(v)]
    if slot is not None and slot in network.guarded_slots():
        found.append(f"guard route of slot {slot}")
    if slot is not None and network.link_exists(network.lan_bridge(slot)):
        found.append(f"bridge {network.lan_bridge(slot)}")
    found += [f"mount {m}" for m in mounts_under(directory)]
    found += [f"loop device {d}" for d in loop_devices_backed_by(directory)]
    found += [
        f"process {pid} (systemd-nspawn)"
        for pid in find_processes("systemd-nspawn", f"{network.NETNS_DIR}/{netns_prefix(name)}")
    ]
    for parent in host.cgroup_parents():
        found += [f"cgroup {g}" for g in parent.glob(f"{name}.*")]
    if directory.exists():
        found.append(f"state directory {directory}")
    return found


def of_proxy(settings: TestbedSettings) -> list[str]:
    """The shared proxy's process, address and files, if any are left."""
    found = [
        f"process {pid} (apt-cacher-ng)"
        for pid in find_processes("apt-cacher-ng", str(settings.proxy_root / "conf"))
    ]
    if proxy.has_address(settings):
        found.append(f"address {settings.proxy_address} on lo")
    if Path(settings.proxy_root).exists():
        found.append(f"proxy directory {settings.proxy_root}")
    return found
