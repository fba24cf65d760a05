"""Where the testbed keeps things and the defaults it uses, in one visible place."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

# What every host image carries: systemd as PID 1, sshd (with sftp-server),
# python3 for pyinfra/testinfra, iproute2 for checks, procps for ps/free, and
# libfaketime for the clock-skew fault.
IMAGE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "iproute2",
    "procps",
    "libfaketime",
)


# The Debian releases a host can run (``--release``), by codename, with their numbers.
RELEASES = {"bookworm": "12", "trixie": "13"}


def release_suite(release: str) -> str:
    """The codename for ``release`` ("trixie", "13" or "debian13")."""
    wanted = release.strip().lower().removeprefix("debian").strip("- ")
    for suite, number in RELEASES.items():
        if wanted in (suite, number):
            return suite
    known = ", ".join(f"{suite} ({number})" for suite, number in RELEASES.items())
    raise ValueError(f"release {release!r}: expected one of {known}")


class TestbedSettings(BaseModel):
    """Paths and defaults of the testbed; every value has a documented default."""

    __test__ = False  # not a pytest test class, despite the name
    model_config = ConfigDict(frozen=True, extra="forbid")

    state_root: Path = Field(
        default=Path("/var/lib/prep-iac/testbed"),
        description="One directory per testbed: state.json, keys, ssh_config, host disks.",
    )
    image_cache: Path = Field(
        default=Path("/var/cache/prep-iac/images"),
        description="Base images built by debootstrap, one per suite + package list.",
    )
    apt_cache: Path = Field(
        default=Path("/var/cache/prep-iac/apt-cacher-ng"),
        description="apt-cacher-ng's cache; kept across runs so later runs are warm.",
    )
    proxy_root: Path = Field(
        default=Path("/var/lib/prep-iac/apt-cacher-ng"),
        description="The shared proxy's config and user list (removed with its last user).",
    )
    proxy_log: Path = Field(
        default=Path("/var/log/prep-iac/apt-cacher-ng"),
        description="apt-cacher-ng's logs; kept after teardown, so a stalled fetch can be read.",
    )
    run_dir: Path = Field(default=Path("/run/prep-iac"), description="Lock files.")
    suite: str = Field(
        default="bookworm", description="The release hosts get unless asked for another."
    )
    mirror: str = "http://deb.debian.org/debian"
    security_mirror: str = "http://deb.debian.org/debian-security"
    packages: tuple[str, ...] = IMAGE_PACKAGES
    proxy_address: IPv4Address = Field(
        default=IPv4Address("198.19.255.1"),
        description="The apt proxy's address, on the machine's loopback; every host routes to it.",
    )
    proxy_port: int = 3142
    proxy_label: str = Field(
        default="lo:prepiac", max_length=15, description="Label marking the proxy address as ours."
    )
    disk_mib: int = Field(
        default=2048, ge=256, description="Size of each host's writable disk (ext4 on a loop)."
    )
    rate_mbit: float = Field(default=10, gt=0, description="The calls' link: 10 Mbit/s.")
    boot_timeout: float = Field(default=90, gt=0, description="Seconds until sshd must answer.")
    stop_timeout: float = Field(default=6, gt=0, description="Seconds for a clean poweroff.")
