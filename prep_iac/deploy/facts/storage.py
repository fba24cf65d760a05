"""Storage layout facts: what holds the publication and whether it survives a disk's loss.

Each fact parses one tool's output; a host without the tool (or the kernel
feature) gives an empty answer, never an error. Redundancy is judged by
``prep_iac.deploy.storage.redundancy`` from these facts.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, NamedTuple

from pyinfra.api.facts import FactBase
from typing_extensions import override

# Layouts that survive the loss of one disk.
REDUNDANT_MD = ("raid1", "raid4", "raid5", "raid6", "raid10")
REDUNDANT_LVM = ("raid1", "raid4", "raid5", "raid6", "raid10", "mirror")
ARRAY = re.compile(r"^(md\S+) : (\S+) (?:\((?:auto-)?read-only\) )?(raid\d+|linear)\s+(.*)")
REDUNDANT_BTRFS = ("RAID1", "RAID1C3", "RAID1C4", "RAID10", "RAID5", "RAID6", "DUP")


class MdArray(NamedTuple):
    name: str
    level: str
    devices: list[str]
    failed: list[str]
    degraded: bool


class MdStat(FactBase[list[MdArray]]):
    """
    Returns the md RAID arrays of ``/proc/mdstat`` (none when the kernel has no md).

    .. code:: python

        [MdArray(name="md0", level="raid1", devices=["sdb1", "sda1"], failed=["sdb1"],
                 degraded=True)]
    """

    @staticmethod
    @override
    def default() -> list[MdArray]:
        return []

    @override
    def command(self) -> str:
        return "cat /proc/mdstat 2>/dev/null || true"

    @override
    def process(self, output: list[str]) -> list[MdArray]:
        arrays: list[MdArray] = []
        for index, line in enumerate(output):
            match = ARRAY.match(line)
            if not match:
                continue
            name, _, level, members = match.groups()
            devices = [re.sub(r"\[\d+\].*", "", m) for m in members.split()]
            failed = [re.sub(r"\[\d+\].*", "", m) for m in members.split() if "(F)" in m]
            status = output[index + 1] if index + 1 < len(output) else ""
            slots = re.search(r"\[([U_]+)\]\s*$", status)
            degraded = bool(failed) or bool(slots and "_" in slots.group(1))
            arrays.append(MdArray(name, level, devices, failed, degraded))
        return arrays


class LogicalVolume(NamedTuple):
    vg: str
    lv: str
    segtype: str
    health: str
    devices: str


class LvmVolumes(FactBase[list[LogicalVolume]]):
    """
    Returns LVM logical volumes with their segment type and RAID health (none without LVM).

    .. code:: python

        [LogicalVolume(vg="vg0", lv="srv", segtype="raid1", health="", devices="...")]
    """

    @staticmethod
    @override
    def default() -> list[LogicalVolume]:
        return []

    @override
    def command(self) -> str:
        return (
            "lvs --reportformat json -o vg_name,lv_name,segtype,lv_health_status,devices"
            " 2>/dev/null || true"
        )

    @override
    def process(self, output: list[str]) -> list[LogicalVolume]:
        text = "\n".join(output).strip()
        if not text:
            return []
        report: dict[str, Any] = json.loads(text)
        volumes = []
        for part in report.get("report", []):
            for lv in part.get("lv", []):
                volumes.append(
                    LogicalVolume(lv["vg_name"], lv["lv_name"], lv["segtype"],
                                  lv.get("lv_health_status", ""), lv.get("devices", ""))
                )  # fmt: skip
        return volumes


class Pool(NamedTuple):
    name: str
    state: str
    redundant: bool
    errors: str


class ZpoolStatus(FactBase[list[Pool]]):
    """
    Returns ZFS pools: state (ONLINE, DEGRADED...), whether a vdev is a mirror or raidz.

    .. code:: python

        [Pool(name="tank", state="ONLINE", redundant=True, errors="No known data errors")]
    """

    @staticmethod
    @override
    def default() -> list[Pool]:
        return []

    @override
    def command(self) -> str:
        return "zpool status 2>/dev/null || true"

    @override
    def process(self, output: list[str]) -> list[Pool]:
        pools: list[Pool] = []
        name = state = errors = ""
        redundant = False
        for line in [*output, "pool: "]:
            stripped = line.strip()
            if stripped.startswith("pool:"):
                if name:
                    pools.append(Pool(name, state, redundant, errors))
                name, state, errors, redundant = stripped[5:].strip(), "", "", False
            elif stripped.startswith("state:"):
                state = stripped[6:].strip()
            elif stripped.startswith("errors:"):
                errors = stripped[7:].strip()
            elif re.match(r"^(mirror|raidz\d?|draid\d?)\S*\s", stripped):
                redundant = True
        return pools


class BtrfsUsage(NamedTuple):
    data_profile: str
    metadata_profile: str
    device_errors: dict[str, int]


class BtrfsFilesystem(FactBase[BtrfsUsage | None]):
    """
    Returns the data and metadata profiles of the btrfs filesystem holding ``path`` and
    the non-zero error counters of its devices (``None`` when it is not btrfs).

    .. code:: python

        BtrfsUsage(data_profile="RAID1", metadata_profile="RAID1",
                   device_errors={"[/dev/loop1].write_io_errs": 3})
    """

    @override
    def command(self, path: str) -> str:
        p = shlex.quote(path)
        return (
            f'p={p}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; '
            '[ "$(stat -f -c %T "$p")" = btrfs ] || exit 0; '
            'btrfs filesystem df "$p"; btrfs device stats "$p"'
        )

    @override
    def process(self, output: list[str]) -> BtrfsUsage | None:
        profiles: dict[str, str] = {}
        errors: dict[str, int] = {}
        for line in output:
            match = re.match(r"^(Data|Metadata), (\S+):", line)
            if match:
                profiles[match.group(1)] = match.group(2)
            counter = re.match(r"^(\S+)\s+(\d+)$", line)
            if counter and int(counter.group(2)):
                errors[counter.group(1)] = int(counter.group(2))
        if not profiles:
            return None
        return BtrfsUsage(profiles.get("Data", ""), profiles.get("Metadata", ""), errors)


class SmartDevice(NamedTuple):
    device: str
    type: str


class SmartDevices(FactBase[list[SmartDevice]]):
    """
    Returns the disks smartctl can open, including those behind hardware RAID
    controllers (``megaraid,N``, ``cciss,N``...); none in a container or VM without them.

    .. code:: python

        [SmartDevice(device="/dev/bus/0", type="megaraid,0")]
    """

    @staticmethod
    @override
    def default() -> list[SmartDevice]:
        return []

    @override
    def command(self) -> str:
        return "smartctl --scan-open 2>/dev/null || true"

    @override
    def process(self, output: list[str]) -> list[SmartDevice]:
        devices = []
        for line in output:
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[1] == "-d":
                devices.append(SmartDevice(parts[0], parts[2]))
        return devices


class Mount(NamedTuple):
    source: str
    fstype: str
    target: str


class MountOf(FactBase[Mount]):
    """
    Returns the filesystem holding ``path`` (its nearest existing ancestor).

    .. code:: python

        Mount(source="/dev/md0", fstype="ext4", target="/srv")
    """

    @override
    def command(self, path: str) -> str:
        return (
            f'p={shlex.quote(path)}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; '
            'findmnt -J -o SOURCE,FSTYPE,TARGET -T "$p"'
        )

    @override
    def process(self, output: list[str]) -> Mount:
        found = json.loads("\n".join(output))["filesystems"][0]
        return Mount(found["source"], found["fstype"], found["target"])
