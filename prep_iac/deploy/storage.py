"""Redundant storage (clause II.c: "disco duro redundante"): detect, report, monitor.

Facts (``facts/storage.py``) find what holds ``publication_root``: an md RAID
array, an LVM RAID volume, a btrfs filesystem with a RAID profile, a ZFS pool
with mirror/raidz vdevs, or disks behind a hardware RAID controller (visible
to ``smartctl --scan-open``). The deploy says whether the publication sits on
redundant storage; a host that does not is deployed with a warning, as with
the hardware minimums (the deploy cannot add a disk).

Monitoring reports degradation through the event hook (source ``mdadm``,
``smartd`` or ``btrfs``): ``mdadm --monitor`` with ``PROGRAM`` when there are md
arrays, ``smartd`` when smartctl sees disks, a weekly scrub and device-stats
check when the publication is on btrfs. Nothing is installed for layouts the
host does not have.
"""

from __future__ import annotations

from typing import NamedTuple

from pyinfra import logger
from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from prep_iac.deploy.events import HOOK
from prep_iac.deploy.facts.storage import (
    REDUNDANT_BTRFS,
    REDUNDANT_LVM,
    REDUNDANT_MD,
    BtrfsFilesystem,
    BtrfsUsage,
    LogicalVolume,
    LvmVolumes,
    MdArray,
    MdStat,
    Mount,
    MountOf,
    Pool,
    SmartDevice,
    SmartDevices,
    ZpoolStatus,
)
from prep_iac.deploy.platform import platform_for
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings

EVENT_SCRIPT = "/usr/local/sbin/prep-storage-event"
HARDWARE_RAID = ("megaraid", "cciss", "areca", "3ware", "hpt", "aacraid")


class Redundancy(NamedTuple):
    redundant: bool
    reason: str


def redundancy(
    mount: Mount,
    md: list[MdArray],
    lvs: list[LogicalVolume],
    pools: list[Pool],
    btrfs: BtrfsUsage | None,
    smart: list[SmartDevice],
) -> Redundancy:
    """Whether the filesystem ``mount`` survives the loss of a disk, with the reason."""
    where = f"{mount.target} ({mount.source}, {mount.fstype})"
    if btrfs is not None:
        ok = btrfs.data_profile in REDUNDANT_BTRFS and btrfs.data_profile != "DUP"
        state = f"btrfs data {btrfs.data_profile}, metadata {btrfs.metadata_profile}"
        if btrfs.device_errors:
            state += f", device errors {btrfs.device_errors}"
        return Redundancy(ok, f"{where}: {state}")
    name = mount.source.rsplit("/", 1)[-1]
    for array in md:
        if array.name == name:
            state = "DEGRADED" if array.degraded else "in sync"
            ok = array.level in REDUNDANT_MD
            return Redundancy(ok, f"{where}: md {array.level} of {len(array.devices)}, {state}")
    for lv in lvs:
        if mount.source in (f"/dev/mapper/{lv.vg.replace('-', '--')}-{lv.lv.replace('-', '--')}",
                            f"/dev/{lv.vg}/{lv.lv}"):  # fmt: skip
            ok = lv.segtype in REDUNDANT_LVM
            health = f", {lv.health}" if lv.health else ""
            return Redundancy(ok, f"{where}: LVM {lv.segtype}{health}")
    if mount.fstype == "zfs":
        pool_name = mount.source.split("/", 1)[0]
        for pool in pools:
            if pool.name == pool_name:
                layout = "mirror/raidz" if pool.redundant else "no mirror or raidz vdev"
                return Redundancy(pool.redundant, f"{where}: ZFS {layout}, {pool.state}")
    controllers = sorted({d.type.split(",")[0] for d in smart} & set(HARDWARE_RAID))
    if controllers:
        return Redundancy(
            True,
            f"{where}: disks behind a hardware RAID controller ({', '.join(controllers)});"
            " its RAID level is not visible from the OS, check it in the controller",
        )
    return Redundancy(False, f"{where}: a single device, no RAID, mirror or redundant profile")


@deploy("Redundant storage (clause II.c)")
def storage(settings: DifusorSettings) -> None:
    """
    Report whether the publication is on redundant storage; monitor the layouts present.

    + settings: the validated difusor settings

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.storage import storage
        from prep_iac.deploy.settings import settings_from_host

        storage(settings=settings_from_host(host))
    """
    platform = platform_for(host)
    path = settings.publication_root
    md = host.get_fact(MdStat)
    smart = host.get_fact(SmartDevices)
    btrfs = host.get_fact(BtrfsFilesystem, path=path)
    verdict = redundancy(
        host.get_fact(MountOf, path=path),
        md,
        host.get_fact(LvmVolumes),
        host.get_fact(ZpoolStatus),
        btrfs,
        smart,
    )
    if verdict.redundant:
        logger.info(f"{host.name}: the publication is on redundant storage: {verdict.reason}")
    else:
        logger.warning(
            f"WARNING {host.name}: the publication is NOT on redundant storage"
            f' (clause II.c asks for "disco duro redundante"): {verdict.reason}'
        )
    if not (md or smart or btrfs):
        return
    files.put(
        name="Storage monitors' event hook",
        src=rendered("prep-storage-event.sh.j2", hook=HOOK),
        dest=EVENT_SCRIPT,
        mode="755",
    )
    if md:
        apt.packages(name="Install mdadm", packages=[platform.package("mdadm")])
        files.line(
            name="mdadm --monitor reports through the event hook",
            path="/etc/mdadm/mdadm.conf",
            line="^PROGRAM ",
            replace=f"PROGRAM {EVENT_SCRIPT}",
        )
        systemd.service(name="mdadm monitor running", service=platform.service("mdmonitor"),
                        running=True)  # fmt: skip
    if smart:
        apt.packages(name="Install smartmontools", packages=[platform.package("smartd")])
        conf = files.put(
            name="smartd watches every disk and reports through the event hook",
            src=rendered("smartd.conf.j2", script=EVENT_SCRIPT),
            dest="/etc/smartd.conf",
        )
        systemd.service(name="smartd running", service=platform.service("smartd"),
                        running=True, enabled=True)  # fmt: skip
        systemd.service(name="Restart smartd when its config changed",
                        service=platform.service("smartd"), restarted=True,
                        _if=conf.did_change)  # fmt: skip
    if btrfs:
        unit = files.put(
            name="Weekly btrfs scrub and error check of the publication",
            src=rendered("prep-btrfs-check.service.j2", path=path, script=EVENT_SCRIPT),
            dest="/etc/systemd/system/prep-btrfs-check.service",
        )
        timer = files.put(
            name="Timer of the btrfs check",
            src=rendered("prep-btrfs-check.timer.j2"),
            dest="/etc/systemd/system/prep-btrfs-check.timer",
        )
        systemd.daemon_reload(name="systemd reads the btrfs check",
                              _if=any_changed(unit, timer))  # fmt: skip
        systemd.service(name="btrfs check timer enabled", service="prep-btrfs-check.timer",
                        running=True, enabled=True)  # fmt: skip
