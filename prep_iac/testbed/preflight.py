"""What the machine must have for the testbed, checked before anything is touched."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prep_iac.testbed.errors import MissingPrerequisites

# Each tool and the Debian package that provides it, so the error says what to install.
TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "tc": "iproute2",
    "nft": "nftables",
    "apt-cacher-ng": "apt-cacher-ng",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ssh-keyscan": "openssh-client",
    "nsenter": "util-linux",
    "mount": "mount",
    "losetup": "mount",
    "mkfs.ext4": "e2fsprogs",
    "fallocate": "util-linux",
}


def _filesystems(proc: Path) -> set[str]:
    try:
        text = (proc / "filesystems").read_text()
    except OSError:
        return set()
    return {line.split()[-1] for line in text.splitlines() if line.strip()}


def missing_prerequisites(euid: int | None = None, proc: Path = Path("/proc")) -> list[str]:
    """Everything the testbed needs and this machine lacks, each named exactly."""
    missing: list[str] = []
    if (os.geteuid() if euid is None else euid) != 0:
        missing.append("root: run as root (the testbed creates namespaces, mounts and links)")
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            missing.append(f"command '{tool}' (apt-get install {package})")
    filesystems = _filesystems(proc)
    for fs, why in (("overlay", "each host's root is an overlay"), ("ext4", "host disks")):
        if fs not in filesystems:
            missing.append(f"kernel filesystem '{fs}' ({why}; not in {proc}/filesystems)")
    if not (proc / "self" / "ns" / "net").exists():
        missing.append(f"kernel network namespaces ({proc}/self/ns/net is missing)")
    if not Path("/dev/loop-control").exists():
        missing.append("loop devices (/dev/loop-control is missing; modprobe loop)")
    return missing


def require() -> None:
    """Raise ``MissingPrerequisites`` naming every missing thing, or return."""
    missing = missing_prerequisites()
    if missing:
        raise MissingPrerequisites(missing)
