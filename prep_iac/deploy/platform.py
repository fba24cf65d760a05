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


@dataclass(frozen=True)
class Platform:
    """What differs between distributions for the difusor deploy."""

    name: str
    releases: tuple[str, ...]
    packages: dict[str, str]
    services: dict[str, str]
    paths: Paths

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
    },
    services={
        "ssh": "ssh",
        "nginx": "nginx",
        "nftables": "nftables",
        "chrony": "chrony",
        "journald": "systemd-journald",
        "unattended": "unattended-upgrades",
    },
    paths=Paths(
        nologin="/usr/sbin/nologin",
        nginx_conf="/etc/nginx/nginx.conf",
        nginx_user="www-data",
        nginx_logrotate="/etc/logrotate.d/nginx",
        unattended_conf_dir="/etc/apt/apt.conf.d",
        chrony_sources_dir="/etc/chrony/sources.d",
    ),
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
