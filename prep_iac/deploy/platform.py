"""Per-distribution package names, service names and paths, in one place.

Deploy modules ask for ``platform.package("nginx")`` or ``platform.paths.nologin``
instead of spelling Debian's names, so adding Ubuntu LTS or the RHEL family
is adding an entry here (and testing it), not editing every module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import LinuxDistribution


@dataclass(frozen=True)
class Paths:
    nologin: str
    nginx_conf: str
    nginx_user: str
    nginx_logrotate: str
    unattended_conf_dir: str
    chrony_sources_dir: str
    # nginx.conf includes these globs (main and http context) for optional parts.
    nginx_modules_dir: str = "/etc/nginx/prep-modules.d"
    nginx_http_dir: str = "/etc/nginx/prep-http.d"
    nginx_error_log: str = "/var/log/nginx/error.log"
    modsecurity_unicode_mapping: str = "/etc/nginx/unicode.mapping"
    crs_rules: str = "/usr/share/modsecurity-crs/rules"
    nut_dir: str = "/etc/nut"
    nut_drivers: str = "/lib/nut"


@dataclass(frozen=True)
class Platform:
    """What differs between distributions for the difusor deploy."""

    name: str
    releases: tuple[str, ...]
    packages: dict[str, str]
    services: dict[str, str]
    paths: Paths
    # Where packages newer than the release come from (Suricata 7 on Debian 12).
    backports: str = ""

    def package(self, role: str) -> str:
        return self.packages[role]

    def service(self, role: str) -> str:
        return self.services[role]


DEBIAN = Platform(
    name="Debian",
    releases=("12",),
    packages={
        "ssh": "openssh-server",
        "nginx": "nginx",
        "nftables": "nftables",
        "chrony": "chrony",
        "unattended": "unattended-upgrades",
        "logrotate": "logrotate",
        "python": "python3",
        "ca": "ca-certificates",
        "modsecurity": "libnginx-mod-http-modsecurity",
        "crs": "modsecurity-crs",
        "fail2ban": "fail2ban",
        "fail2ban_journal": "python3-systemd",
        "suricata": "suricata",
        "ethtool": "ethtool",
        "nut_server": "nut-server",
        "nut_client": "nut-client",
        "mdadm": "mdadm",
        "smartd": "smartmontools",
        "btrfs": "btrfs-progs",
        "keepalived": "keepalived",
    },
    services={
        "ssh": "ssh",
        "nginx": "nginx",
        "nftables": "nftables",
        "chrony": "chrony",
        "journald": "systemd-journald",
        "unattended": "unattended-upgrades",
        "fail2ban": "fail2ban",
        "suricata": "suricata",
        "nut_server": "nut-server",
        "nut_monitor": "nut-monitor",
        "nut_driver": "nut-driver.target",
        "smartd": "smartmontools",
        "mdmonitor": "mdmonitor",
        "keepalived": "keepalived",
    },
    paths=Paths(
        nologin="/usr/sbin/nologin",
        nginx_conf="/etc/nginx/nginx.conf",
        nginx_user="www-data",
        nginx_logrotate="/etc/logrotate.d/nginx",
        unattended_conf_dir="/etc/apt/apt.conf.d",
        chrony_sources_dir="/etc/chrony/sources.d",
    ),
    backports="bookworm-backports",
)

SUPPORTED = {DEBIAN.name: DEBIAN}


def platform_for(host: Any) -> Platform:
    """The platform of ``host``; refuse distributions the deploy was not tested on."""
    distro = host.get_fact(LinuxDistribution)
    platform = SUPPORTED.get(distro["name"] or "")
    major = str(distro["major"]) if distro["major"] is not None else ""
    if platform is None or major not in platform.releases:
        supported = ", ".join(f"{p.name} {'/'.join(p.releases)}" for p in SUPPORTED.values())
        raise DeployError(
            f"{host.name}: {distro['name']} {major} is not supported by the difusor deploy"
            f" (supported: {supported})"
        )
    return platform
