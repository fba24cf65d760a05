"""Addresses, network namespaces, veth links and traffic shaping for testbed hosts.

Every address lives in 198.18.0.0/15 (RFC 2544's benchmarking range). A testbed
holds one slot ``s`` (1-255) and with it 198.18.s.0/24; host ``i`` (1-63) gets
the /30 198.18.s.4i: the machine side of its veth is .4i+1 and the host is
.4i+2. The shared apt proxy sits on 198.19.255.1, outside every slot. Hosts get
a route to the proxy and nothing else: no default route, so no way out.

A testbed made with a LAN also joins every host to one L2 segment, a bridge on
the machine: 198.19.s.0/24, the bridge (the machine, where visitors come from)
is .1, host ``i`` is .(4i+1) on its ``lan0`` and floating addresses (VRRP
between hosts, gratuitous ARP to the machine) are .(4k+3). Addresses .(4i+2) of
198.19.s.0/24 stay the machine's sources that play the IEC for host ``i``
(``prep_iac.testbed.difusor``), so the LAN never uses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path

from prep_iac.testbed.errors import TestbedError
from prep_iac.testbed.system import run

TESTBED_RANGE = IPv4Network("198.18.0.0/15")
MAX_SLOT = 255
MAX_HOSTS = 63
HOST_PREFIX = 30
LAN_PREFIX = 24
MAX_FLOATING = 63  # .3, .7, ... .251
# Above the bridge's own (connected) route to the LAN, which must win while it exists.
LAN_GUARD_METRIC = "4242"
LAN_INTERFACE = "lan0"
NETNS_DIR = Path("/run/netns")


@dataclass(frozen=True)
class Link:
    """The /30 of one host: the machine's end (gateway) and the host's address."""

    network: IPv4Network
    gateway: IPv4Address
    address: IPv4Address


def slot_network(slot: int) -> IPv4Network:
    if not 1 <= slot <= MAX_SLOT:
        raise TestbedError(f"slot {slot}: expected 1..{MAX_SLOT}")
    return IPv4Network(f"198.18.{slot}.0/24")


def host_link(slot: int, index: int) -> Link:
    """The addresses of host ``index`` (1-based) of the testbed in ``slot``."""
    if not 1 <= index <= MAX_HOSTS:
        raise TestbedError(f"host {index}: a testbed has 1..{MAX_HOSTS} hosts")
    base = int(slot_network(slot).network_address) + 4 * index
    network = IPv4Network((base, HOST_PREFIX))
    return Link(network, IPv4Address(base + 1), IPv4Address(base + 2))


def lan_network(slot: int) -> IPv4Network:
    """The LAN of the testbed in ``slot``: 198.19.s.0/24 (198.19.255.0 is the proxy's)."""
    slot_network(slot)
    if slot == MAX_SLOT:
        raise TestbedError(f"slot {slot}: its LAN would be the apt proxy's 198.19.255.0/24")
    return IPv4Network(f"198.19.{slot}.0/{LAN_PREFIX}")


def lan_link(slot: int, index: int) -> Link:
    """Host ``index``'s address on the testbed's LAN, and the machine's (the bridge)."""
    host_link(slot, index)  # validates the index
    network = lan_network(slot)
    base = int(network.network_address)
    return Link(network, IPv4Address(base + 1), IPv4Address(base + 4 * index + 1))


def floating_address(slot: int, number: int = 0) -> IPv4Address:
    """The ``number``-th address of the LAN left for floating addresses."""
    if not 0 <= number < MAX_FLOATING:
        raise TestbedError(f"floating address {number}: expected 0..{MAX_FLOATING - 1}")
    return IPv4Address(int(lan_network(slot).network_address) + 4 * number + 3)


def lan_bridge(slot: int) -> str:
    return f"pi{slot}lan"


def create_lan(slot: int) -> None:
    """The testbed's bridge with the machine's LAN address, guarded like the slot."""
    bridge = lan_bridge(slot)
    link = lan_link(slot, 1)
    if not link_exists(bridge):
        # No STP: ports forward at once; a bridge of veths has no loops.
        run(["ip", "link", "add", bridge, "type", "bridge", "stp_state", "0"])
    run(["ip", "addr", "replace", f"{link.gateway}/{LAN_PREFIX}", "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])
    run(["ip", "route", "replace", "unreachable", _lan_guard(slot), "proto", GUARD_PROTO,
         "metric", LAN_GUARD_METRIC])  # fmt: skip


def join_lan(netns: str, veth: str, slot: int, index: int) -> None:
    """Plug host ``index`` (in ``netns``) into the LAN: ``lan0`` inside, ``veth`` on the bridge."""
    link = lan_link(slot, index)
    if not link_exists(veth):
        run(
            [
                "ip",
                "link",
                "add",
                veth,
                "type",
                "veth",
                "peer",
                "name",
                LAN_INTERFACE,
                "netns",
                netns,
            ]
        )
    run(["ip", "link", "set", veth, "master", lan_bridge(slot)])
    run(["ip", "link", "set", veth, "up"])
    address = f"{link.address}/{LAN_PREFIX}"
    run(in_netns(netns, "ip", "addr", "replace", address, "dev", LAN_INTERFACE))
    run(in_netns(netns, "ip", "link", "set", LAN_INTERFACE, "up"))


def destroy_lan(slot: int) -> None:
    bridge = lan_bridge(slot)
    if link_exists(bridge):
        run(["ip", "link", "del", bridge], check=False)
    guard = ["unreachable", _lan_guard(slot), "proto", GUARD_PROTO, "metric", LAN_GUARD_METRIC]
    run(["ip", "route", "del", *guard], check=False)  # absent when the LAN never was


def _lan_guard(slot: int) -> str:
    # Nothing of the LAN may leave by the default route when the bridge is gone.
    return f"198.19.{slot}.0/24"


def require_testbed_address(address: str | IPv4Address) -> IPv4Address:
    """Return ``address`` if it is in 198.18.0.0/15; refuse anything else as a target."""
    parsed = ip_address(str(address))
    if not isinstance(parsed, IPv4Address) or parsed not in TESTBED_RANGE:
        raise TestbedError(f"{address} is not in {TESTBED_RANGE}; the testbed targets nothing else")
    return parsed


def used_networks() -> list[IPv4Network]:
    """Networks of the IPv4 addresses configured on the machine's interfaces."""
    out = run(["ip", "-o", "-4", "addr", "show"]).stdout
    nets = []
    for line in out.splitlines():
        fields = line.split()
        if "inet" in fields:
            nets.append(ip_network(fields[fields.index("inet") + 1], strict=False))
    return [n for n in nets if isinstance(n, IPv4Network)]


def free_slot(taken: set[int]) -> int:
    """The lowest slot that no testbed holds and no machine address overlaps."""
    busy = used_networks()
    for slot in range(1, MAX_SLOT + 1):
        if slot in taken:
            continue
        net = slot_network(slot)
        if not any(net.overlaps(other) for other in busy):
            return slot
    raise TestbedError(f"no free testbed slot in {TESTBED_RANGE} (all {MAX_SLOT} in use)")


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def in_netns(netns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *cmd]


def create(netns: str, veth: str, link: Link, proxy: IPv4Address) -> None:
    """Create ``netns`` with ``host0`` inside, ``veth`` outside, addresses and the proxy route."""
    if not netns_exists(netns):
        run(["ip", "netns", "add", netns])
    if not link_exists(veth):
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "host0", "netns", netns])
    run(["ip", "addr", "replace", f"{link.gateway}/{HOST_PREFIX}", "dev", veth])
    run(["ip", "link", "set", veth, "up"])
    run(in_netns(netns, "ip", "addr", "replace", f"{link.address}/{HOST_PREFIX}", "dev", "host0"))
    run(in_netns(netns, "ip", "link", "set", "host0", "up"))
    run(in_netns(netns, "ip", "link", "set", "lo", "up"))
    run(in_netns(netns, "ip", "route", "replace", f"{proxy}/32", "via", str(link.gateway)))


def destroy(netns: str, veth: str) -> None:
    """Delete the namespace (which takes ``host0`` and so the veth pair with it)."""
    if netns_exists(netns):
        run(["ip", "netns", "del", netns])
    if link_exists(veth):
        run(["ip", "link", "del", veth], check=False)


def our_netns(prefix: str) -> list[str]:
    """Namespaces whose name starts with ``prefix``."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


# Marks our guard routes (any protocol number the system does not use).
GUARD_PROTO = "242"


def guard(slot: int) -> None:
    """Make the slot's /24 unreachable from the machine unless a host link is up.

    Without it, a host whose link is down (or gone) would be reached through the
    machine's default route: traffic for 198.18.0.0/15 would leave the machine.
    """
    net = str(slot_network(slot))
    run(["ip", "route", "replace", "unreachable", net, "proto", GUARD_PROTO])


def guarded_slots() -> list[int]:
    out = run(["ip", "-4", "route", "show", "type", "unreachable", "proto", GUARD_PROTO]).stdout
    slots = []
    for line in out.splitlines():
        net = ip_network(line.split()[1], strict=False)
        if net.prefixlen == 24 and net.subnet_of(TESTBED_RANGE):  # type: ignore[arg-type]
            slots.append(int(str(net.network_address).split(".")[2]))
    return slots


def unguard(slot: int) -> None:
    """Remove the slot's guard route, and its LAN (bridge and guard) if it had one."""
    out = run(["ip", "-4", "route", "show", "type", "unreachable", "proto", GUARD_PROTO]).stdout
    present = {line.split()[1] for line in out.splitlines() if line.split()[1:]}
    if str(slot_network(slot)) in present:
        run(["ip", "route", "del", "unreachable", str(slot_network(slot)), "proto", GUARD_PROTO])
    if _lan_guard(slot) in present:
        destroy_lan(slot)


def set_link(veth: str, up: bool) -> None:
    run(["ip", "link", "set", veth, "up" if up else "down"])


def shape(veth: str, netns: str, rate_mbit: float) -> None:
    """Limit both directions of the link to ``rate_mbit`` with a token bucket (tbf).

    netem is not in this kernel; tbf is. The burst (32 kbit) and latency (400 ms)
    are the values measured by hand to give the nominal rate.
    """
    tbf = ["root", "tbf", "rate", f"{rate_mbit:g}mbit", "burst", "32kbit", "latency", "400ms"]
    run(["tc", "qdisc", "replace", "dev", veth, *tbf])
    run(in_netns(netns, "tc", "qdisc", "replace", "dev", "host0", *tbf))


def unshape(veth: str, netns: str) -> None:
    run(["tc", "qdisc", "del", "dev", veth, "root"], check=False)
    run(in_netns(netns, "tc", "qdisc", "del", "dev", "host0", "root"), check=False)


def qdisc(veth: str) -> str:
    return run(["tc", "qdisc", "show", "dev", veth]).stdout
