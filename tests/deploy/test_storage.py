"""Whether the publication sits on redundant storage, judged from captured fact output.

The fact fixtures (``facts/storage.*``) are parsed by ``facts/test_facts.py``;
here their parsed values feed ``redundancy`` the way a deploy does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prep_iac.deploy.facts.storage import (
    BtrfsFilesystem,
    LvmVolumes,
    MdStat,
    Mount,
    SmartDevices,
    ZpoolStatus,
)
from prep_iac.deploy.storage import redundancy

FACTS = Path(__file__).parent / "facts"


def output(fact: str, case: str) -> list[str]:
    data: dict[str, Any] = json.loads((FACTS / f"storage.{fact}" / f"{case}.json").read_text())
    return list(data["output"])


def test_single_disk_vm_root_is_not_redundant() -> None:
    verdict = redundancy(Mount("/dev/vda", "ext4", "/"), [], [], [], None, [])
    assert not verdict.redundant
    assert "a single device" in verdict.reason


def test_btrfs_raid1_is_redundant_and_single_is_not() -> None:
    mount = Mount("/dev/loop7", "btrfs", "/mnt/bt")
    raid1 = BtrfsFilesystem().process(output("BtrfsFilesystem", "btrfs-raid1-two-loop-devices"))
    single = BtrfsFilesystem().process(output("BtrfsFilesystem", "btrfs-single-one-loop-device"))
    assert redundancy(mount, [], [], [], raid1, []).redundant
    verdict = redundancy(mount, [], [], [], single, [])
    assert not verdict.redundant  # metadata DUP is two copies on one disk
    assert "data single" in verdict.reason


def test_btrfs_device_errors_are_reported() -> None:
    usage = BtrfsFilesystem().process(output("BtrfsFilesystem", "btrfs-raid1-device-write-errors"))
    verdict = redundancy(Mount("/dev/loop7", "btrfs", "/srv"), [], [], [], usage, [])
    assert "write_io_errs': 7" in verdict.reason


def test_md_raid1_is_redundant_and_a_degraded_array_says_so() -> None:
    mount = Mount("/dev/md0", "ext4", "/srv")
    healthy = MdStat().process(output("MdStat", "raid1-in-sync"))
    degraded = MdStat().process(output("MdStat", "raid1-degraded-failed-member"))
    assert redundancy(mount, healthy, [], [], None, []).reason.endswith("md raid1 of 2, in sync")
    verdict = redundancy(mount, degraded, [], [], None, [])
    assert verdict.redundant and "DEGRADED" in verdict.reason


def test_lvm_raid1_volume_is_redundant_and_linear_is_not() -> None:
    volumes = LvmVolumes().process(output("LvmVolumes", "raid1-and-linear"))
    srv = redundancy(Mount("/dev/mapper/vg0-srv", "xfs", "/srv"), [], volumes, [], None, [])
    root = redundancy(Mount("/dev/mapper/vg0-root", "ext4", "/"), [], volumes, [], None, [])
    assert srv.redundant and "LVM raid1, partial" in srv.reason
    assert not root.redundant


def test_zfs_mirror_is_redundant_and_a_single_vdev_pool_is_not() -> None:
    pools = ZpoolStatus().process(output("ZpoolStatus", "mirror-degraded-and-single"))
    tank = redundancy(Mount("tank/prep", "zfs", "/srv/prep"), [], [], pools, None, [])
    scratch = redundancy(Mount("scratch", "zfs", "/srv"), [], [], pools, None, [])
    assert tank.redundant and "DEGRADED" in tank.reason
    assert not scratch.redundant


def test_disks_behind_a_raid_controller_count_as_redundant_with_a_caveat() -> None:
    smart = SmartDevices().process(output("SmartDevices", "megaraid-controller"))
    verdict = redundancy(Mount("/dev/sda2", "ext4", "/"), [], [], [], None, smart)
    assert verdict.redundant and "megaraid" in verdict.reason
    plain = SmartDevices().process(output("SmartDevices", "two-sata-disks"))
    assert not redundancy(Mount("/dev/sda2", "ext4", "/"), [], [], [], None, plain).redundant
