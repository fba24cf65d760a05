"""Firewall (clause II.d.i) with nftables: default drop, SSH only from the IEC and admins.

The ruleset (``templates/nftables.conf.j2``) owns one table, ``inet prep``:

- ``input`` drops by default; loopback and established traffic pass first, then
  admin sources to SSH, *before* any drop rule, so no later rule (or a
  blocklist entry) can lock an admin out;
- invalid packets, blocklisted sources (sets ``blocklist4``/``blocklist6`` with
  timeouts, fed later by the IDS) and new connections not opened by a SYN drop;
- ICMP: errors needed for path MTU and IPv6 neighbour discovery pass, pings are
  rate-limited;
- the IEC's sources may open SSH connections, at most ``ssh_new_connections_per_minute``
  per source;
- HTTP/HTTPS are open, with per-source meters: new connections above
  ``new_connections_per_second`` drop (SYN floods, with kernel SYN cookies as
  the backstop), more than ``max_connections_per_source`` concurrent get a reset;
- with a floating address (``ha.py``): VRRP and the HA monitor's port from the
  peers only;
- anything else is logged (at most 10 lines a minute) and dropped.

The file is checked with ``nft -c -f`` on the host and loaded with ``nft -f``
as one transaction, together with the blocklist's current elements (what is
left of each ban's timeout), so a re-deploy during an attack unbans no one;
see ``operations/nftables.py`` for change detection.
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import systemd

from prep_iac.deploy.ha import HEALTH_PORT
from prep_iac.deploy.operations import nftables
from prep_iac.deploy.platform import platform_for
from prep_iac.deploy.settings import DifusorSettings, IPNetwork
from prep_iac.deploy.ssh import SSH_PORT

TABLE = "inet prep"
# The IDS's bans: carried over when the table is replaced, so a re-deploy unbans no one.
BAN_SETS = ("blocklist4", "blocklist6")
WEB_PORTS = (80, 443)


def _split(networks: list[IPNetwork]) -> tuple[list[str], list[str]]:
    return (
        [str(n) for n in networks if n.version == 4],
        [str(n) for n in networks if n.version == 6],
    )


@deploy("Firewall (nftables)")
def firewall(settings: DifusorSettings) -> None:
    """
    Load the difusor's nftables ruleset when it differs; keep it loaded at boot.

    + settings: the validated difusor settings

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.firewall import firewall
        from prep_iac.deploy.settings import settings_from_host

        firewall(settings=settings_from_host(host))
    """
    platform = platform_for(host)
    admin4, admin6 = _split(settings.admin_sources)
    iec4, iec6 = _split(settings.iec_sources)
    nftables.ruleset(
        name="nftables ruleset, checked with nft -c",
        src="nftables.conf.j2",
        table=TABLE,
        keep=BAN_SETS,
        admin4=admin4,
        admin6=admin6,
        iec4=iec4,
        iec6=iec6,
        ssh_port=SSH_PORT,
        ssh_per_minute=settings.ssh_new_connections_per_minute,
        web_ports=WEB_PORTS,
        new_per_second=settings.new_connections_per_second,
        new_burst=settings.new_connections_per_second * 2,
        max_conn=settings.max_connections_per_source,
        ha_peers=[str(p) for p in settings.ha_peers] if settings.ha_address else [],
        ha_health_port=HEALTH_PORT,
    )
    # Enabled only: starting the unit would flush and reload what is loaded already.
    systemd.service(
        name="nftables loaded at boot",
        service=platform.service("nftables"),
        running=None,
        enabled=True,
    )
