"""High availability (clause II.a): a floating address held by one node of the difusor.

With ``ha_address`` and ``ha_peers`` in the inventory, every node runs
keepalived (Debian's package): VRRP between the nodes, unicast over the link
they share, authenticated (VRRPv2) unless the adverts are sub-second (VRRPv3
has no authentication; the firewall admits VRRP from the peers alone either
way). All nodes start as BACKUP: the highest priority holds the address, and
between equal priorities the one that has it keeps it, so a node that comes
back does not take the address (and a moment of service) for nothing.

What a node is worth is decided by ``prep-ha-monitor`` (a small stdlib
program, templates/prep-ha-monitor.py.j2), which keepalived tracks through two
files: nginx not answering puts the node in FAULT (the address moves at once);
a peer serving a newer cut, or a cut while this node shows the notice (its own
vouch ran out), or the same cut while this disk is nearly full, makes this node
the last choice. nginx answers the monitor on ``HEALTH_PORT`` (loopback and the
peers only, never logged as a visit). nginx already listens on every address,
so it serves the floating address as soon as the node holds it.

Every transition (keepalived's notify) and every change of the monitor's
verdict goes to the event hook: they belong in the memoria's incident report.

The IEC keeps pushing to each node's own address; visitors and the IEC's list
use the public name that resolves to the floating address.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.context import host
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from prep_iac.deploy.events import GROUP, HOOK, LOG_DIR
from prep_iac.deploy.facts.network import Ipv4Interfaces
from prep_iac.deploy.operations.files import validated_template
from prep_iac.deploy.packages import refresh_lists_if_missing
from prep_iac.deploy.platform import platform_for
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings

HEALTH_PORT = 8081
MONITOR = "/usr/local/sbin/prep-ha-monitor"
NOTIFY = "/usr/local/sbin/prep-ha-notify"
RUN_DIR = "/run/prep-ha"
FAULT_FILE = f"{RUN_DIR}/fault"
PENALTY_FILE = f"{RUN_DIR}/penalty"
HEARTBEAT_FILE = f"{RUN_DIR}/heartbeat"
STATE_FILE = f"{RUN_DIR}/state.json"
KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
SCRIPT_USER = "keepalived_script"
MONITOR_USER = "prep-ha"
MONITOR_UNIT = "/etc/systemd/system/prep-ha-monitor.service"
# keepalived 2.2.7's --config-test ends killed by its own SIGTERM (status 143)
# when instances track files or scripts or notify, valid config or not; it
# prints every problem it finds, though. A candidate passes when the test prints
# nothing and ends 0 or 143 (it segfaults, 139, on some wrong configs).
CONFIG_TEST = (
    "out=$(keepalived --config-test -f {path} 2>&1); status=$?;"
    ' printf "%s" "$out" >&2; [ -z "$out" ] && {{ [ $status -eq 0 ] || [ $status -eq 143 ]; }}'
)
# The monitor's rounds: this node's nginx every 0.2 s, the peers every second.
INTERVAL = 0.2
PEER_INTERVAL = 1.0
STALE_SECONDS = 5


def ha_link(
    name: str, settings: DifusorSettings, addresses: list[tuple[str, str]]
) -> tuple[str, IPv4Interface]:
    """This node's interface and address on the network of ``ha_address``.

    Raises ``DeployError`` naming what the host has when none fits, or when a
    peer is not on that network.
    """
    assert settings.ha_address is not None
    found = [
        (name, IPv4Interface(address))
        for name, address in addresses
        if IPv4Interface(address).ip != settings.ha_address
        and settings.ha_address in IPv4Interface(address).network
        and settings.ha_interface in (None, name)
    ]
    if not found:
        have = ", ".join(f"{i} {a}" for i, a in addresses) or "no IPv4 address"
        on = f" on {settings.ha_interface}" if settings.ha_interface else ""
        raise DeployError(
            f"{name}: ha_address {settings.ha_address} is outside this node's networks{on}"
            f" ({have}); the floating address must be on the link the nodes share"
        )
    interface, own = found[0]
    for peer in settings.ha_peers:
        if peer not in own.network or peer == own.ip:
            raise DeployError(
                f"{name}: ha_peers {peer} is not another node on {interface}'s network"
                f" {own.network} (this node is {own.ip})"
            )
    return interface, own


def check_inventory(
    name: str, settings: DifusorSettings, own: IPv4Address, others: list[Any]
) -> None:
    """Every peer must be another inventory host of the same floating address that
    names this node among its peers and agrees on who the nodes are."""
    assert settings.ha_address is not None
    nodes = {str(own), *(str(p) for p in settings.ha_peers)}
    views = []
    for other in others:
        data = other.data
        if str(data.get("ha_address") or "") != str(settings.ha_address):
            continue
        views.append((other.name, {str(p) for p in data.get("ha_peers") or []}))
    for peer in settings.ha_peers:
        if not any(view | {str(peer)} == nodes and str(peer) not in view for _, view in views):
            named = ", ".join(f"{h} ({', '.join(sorted(v))})" for h, v in views) or "none"
            raise DeployError(
                f"{name}: ha_peers {peer} is no node of the inventory: no other host with"
                f" ha_address {settings.ha_address} has this node ({own}) and the same other"
                f" nodes as its ha_peers (hosts with that ha_address and their peers: {named})"
            )


def _retire(package: str, service: str) -> None:
    """A node that no longer has a floating address gives it up: keepalived and the
    monitor stopped and disabled (left installed)."""
    if package in host.get_fact(DebPackages):
        systemd.service(
            name="No floating address: keepalived stopped", service=service, running=False,
            enabled=False,
        )  # fmt: skip
    if host.get_fact(File, path=MONITOR_UNIT):
        systemd.service(
            name="No floating address: prep-ha-monitor stopped", service="prep-ha-monitor",
            running=False, enabled=False,
        )  # fmt: skip


@deploy("High availability (keepalived VRRP)")
def high_availability(settings: DifusorSettings) -> None:
    """
        Hold ``ha_address`` on one node at a time (keepalived), tracked by prep-ha-monitor.

        + settings: the validated difusor settings

        **Example:**

        .. code:: python

            from pyinfra.context import host
    from pyinfra.facts.deb import DebPackages
    from pyinfra.facts.files import File
            from prep_iac.deploy.ha import high_availability
            from prep_iac.deploy.settings import settings_from_host

            high_availability(settings=settings_from_host(host))
    """
    platform = platform_for(host)
    if settings.ha_address is None:
        _retire(platform.package("keepalived"), platform.service("keepalived"))
        return
    interface, own = ha_link(host.name, settings, host.get_fact(Ipv4Interfaces))
    others = [h for h in host.inventory if h.name != host.name]
    check_inventory(host.name, settings, own.ip, others)
    peers = [str(p) for p in settings.ha_peers]
    packages = [platform.package("keepalived")]
    refresh_lists_if_missing(packages, "Refresh package lists to install keepalived")
    apt.packages(name="Install keepalived", packages=packages, no_recommends=True)
    for user, who in ((SCRIPT_USER, "keepalived's scripts"), (MONITOR_USER, "prep-ha-monitor")):
        server.user(
            name=f"{who} run unprivileged (and may write the event log)",
            user=user,
            system=True,
            shell=platform.paths.nologin,
            home="/nonexistent",
            create_home=False,
            ensure_home=False,  # else pyinfra makes /nonexistent
            groups=[GROUP],
            append=True,  # its own primary group stays; prep-events is added
        )
    program = rendered(
        "prep-ha-monitor.py.j2",
        program=MONITOR, port=HEALTH_PORT, peers=peers, root=settings.publication_root,
        reserve_mib=settings.ha_reserve_mib, priority=settings.ha_priority,
        interval=INTERVAL, peer_interval=PEER_INTERVAL, fault=FAULT_FILE,
        penalty=PENALTY_FILE, heartbeat=HEARTBEAT_FILE, state=STATE_FILE,
        stale=STALE_SECONDS, event_hook=HOOK,
    )  # fmt: skip
    monitor = files.put(
        name="prep-ha-monitor: is this node fit to hold the floating address",
        src=program,
        dest=MONITOR,
        mode="755",
    )
    unit_file = rendered(
        "prep-ha-monitor.service.j2",
        program=MONITOR,
        user=MONITOR_USER,
        event_group=GROUP,
        event_log_dir=LOG_DIR,
    )
    unit = files.put(
        name="prep-ha-monitor service",
        src=unit_file,
        dest=MONITOR_UNIT,
    )
    files.put(
        name="keepalived's transitions go to the event hook",
        src=rendered("prep-ha-notify.sh.j2", address=str(settings.ha_address), event_hook=HOOK),
        dest=NOTIFY,
        mode="755",
    )
    systemd.daemon_reload(name="systemd reads prep-ha-monitor's unit", _if=unit.did_change)
    systemd.service(
        name="prep-ha-monitor running and enabled",
        service="prep-ha-monitor",
        running=True,
        enabled=True,
    )
    systemd.service(
        name="Restart prep-ha-monitor when it changed",
        service="prep-ha-monitor",
        restarted=True,
        _if=any_changed(monitor, unit),
    )
    config = validated_template(
        name="keepalived.conf, checked with keepalived --config-test",
        src="keepalived.conf.j2",
        dest=KEEPALIVED_CONF,
        validate=CONFIG_TEST,
        mode="600",
        address=str(settings.ha_address), prefix=own.network.prefixlen, interface=interface,
        own=str(own.ip), peers=peers, version=settings.vrrp_version,
        advert=f"{settings.ha_advert_seconds:g}", priority=settings.ha_priority,
        router_id=settings.ha_router_id, router_name=host.name, password=settings.ha_password,
        script_user=SCRIPT_USER, event_group=GROUP, program=MONITOR, fault=FAULT_FILE,
        penalty=PENALTY_FILE, notify=NOTIFY,
    )  # fmt: skip
    systemd.service(
        name="keepalived running and enabled",
        service=platform.service("keepalived"),
        running=True,
        enabled=True,
    )
    systemd.service(
        name="Reload keepalived when its config changed",
        service=platform.service("keepalived"),
        reloaded=True,
        _if=config.did_change,
    )
