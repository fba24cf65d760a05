"""Per-distribution package names, service names and paths, in one place.

Deploy modules ask for ``platform.package("nginx")`` or ``platform.paths.nologin``
instead of spelling Debian's names, so adding Ubuntu LTS or the RHEL family
is adding an entry here (and testing it), not editing every module.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    """What differs between distributions (and their releases) for the difusor deploy."""

    name: str
    release: str
    codename: str
    packages: dict[str, str]
    services: dict[str, str]
    paths: Paths
    # Where packages newer than the release come from (Suricata 7 on Debian 12).
    backports: str = ""
    # OpenSSH 9.8 and later refuse sources that failed to authenticate for a while
    # (PerSourcePenalties); older sshd rejects the options that exempt sources.
    sshd_penalties: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} {self.release} ({self.codename})"

    def package(self, role: str) -> str:
        return self.packages[role]

    def service(self, role: str) -> str:
        return self.services[role]


_DEBIAN_PACKAGES = {
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
}
_DEBIAN_SERVICES = {
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
}
_DEBIAN_PATHS = Paths(
    nologin="/usr/sbin/nologin",
    nginx_conf="/etc/nginx/nginx.conf",
    nginx_user="www-data",
    nginx_logrotate="/etc/logrotate.d/nginx",
    unattended_conf_dir="/etc/apt/apt.conf.d",
    chrony_sources_dir="/etc/chrony/sources.d",
)

DEBIAN_12 = Platform(
    name="Debian",
    release="12",
    codename="bookworm",
    packages=_DEBIAN_PACKAGES,
    services=_DEBIAN_SERVICES,
    paths=_DEBIAN_PATHS,
    backports="bookworm-backports",
)

# Debian 13 is Debian 12 but for these: Suricata 7 is in main, OpenSSH 10
# penalises sources.
DEBIAN_13 = replace(DEBIAN_12, release="13", codename="trixie", backports="", sshd_penalties=True)

SUPPORTED = {(p.name, p.release): p for p in (DEBIAN_12, DEBIAN_13)}
# Named in the refusal, so an operator knows they are planned, not forgotten.
NOT_YET_SUPPORTED = ("Ubuntu LTS", "the RHEL family (Rocky, Alma, RHEL)")


def platform_for(host: Any) -> Platform:
    """The platform of ``host``; refuse distributions the deploy was not tested on."""
    distro = host.get_fact(LinuxDistribution)
    major = str(distro["major"]) if distro["major"] is not None else ""
    platform = SUPPORTED.get((distro["name"] or "", major))
    if platform is None:
        found = " ".join(str(p) for p in (distro["name"] or "an unknown distribution", major) if p)
        supported = ", ".join(p.label for p in SUPPORTED.values())
        raise DeployError(
            f"{host.name}: {found} is not supported by the difusor deploy"
            f" (supported: {supported}; not yet: {', '.join(NOT_YET_SUPPORTED)})"
        )
    return platform
