"""Fault injection on a running host: link rate and state (its LAN link too), blocked ports,
stopped services, a full disk and a skewed clock. Each has its undo.

All act from the machine side (``ip``/``tc`` on the veth, ``nft`` in the host's
namespace, ``nsenter`` for systemctl, files on the host's disk), so they work
even when the fault itself has cut SSH off.

Clock skew is applied with libfaketime, not to the kernel clock: a container
shares the machine's CLOCK_REALTIME, and Linux time namespaces only offset the
monotonic and boot clocks. The offset is written to ``/etc/faketimerc`` and
``LD_PRELOAD`` is set for SSH sessions through pam_env (``/etc/environment``),
so every command run over SSH (shells, ``date``, sftp-server, pyinfra's
commands) sees the skewed time, and for the systemd units named (a drop-in,
then a restart). Other processes already running, systemd itself, the kernel's
file timestamps and statically linked programs keep the real time; a global
``/etc/ld.so.preload`` was tried and breaks sshd.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path

from prep_iac.testbed import network, render
from prep_iac.testbed.errors import TestbedError
from prep_iac.testbed.host import HostPaths, nsenter
from prep_iac.testbed.state import HostState
from prep_iac.testbed.system import run

NFT_TABLE = "prep_iac_faults"
FAKETIME_GLOB = "usr/lib/*/faketime/libfaketime.so.1"


def shape(host: HostState, rate_mbit: float) -> None:
    """Limit the host's link (both directions) to ``rate_mbit`` Mbit/s."""
    network.shape(host.veth, host.netns, rate_mbit)
    host.faults["shape"] = f"{rate_mbit:g} Mbit/s"


def unshape(host: HostState) -> None:
    network.unshape(host.veth, host.netns)
    host.faults.pop("shape", None)


def link_down(host: HostState) -> None:
    """Take the host's link down, as a cut cable would."""
    network.set_link(host.veth, up=False)
    host.faults["link"] = "down"


def link_up(host: HostState) -> None:
    network.set_link(host.veth, up=True)
    host.faults.pop("link", None)


def lan_down(host: HostState) -> None:
    """Take the host's LAN link down (on the bridge's side), as a cut cable would."""
    network.set_link(_lan_veth(host), up=False)
    host.faults["lan"] = "down"


def lan_up(host: HostState) -> None:
    network.set_link(_lan_veth(host), up=True)
    host.faults.pop("lan", None)


def _lan_veth(host: HostState) -> str:
    if host.lan_veth is None:
        raise TestbedError(f"host {host.name} is not on a LAN")
    return host.lan_veth


def _nft(host: HostState, *args: str, input: str | None = None, check: bool = True) -> str:
    cmd = network.in_netns(host.netns, "nft", *args)
    return run(cmd, input=input, check=check).stdout


def _blocked(host: HostState) -> list[str]:
    return sorted(v for k, v in host.faults.items() if k.startswith("block "))


def block_port(host: HostState, port: int, proto: str = "tcp") -> None:
    """Drop every incoming packet to ``port``/``proto`` inside the host."""
    if proto not in ("tcp", "udp"):
        raise TestbedError(f"protocol {proto!r}: expected 'tcp' or 'udp'")
    if not _blocked(host):
        _nft(host, "-f", "-", input=render.render("faults.nft.j2", table=NFT_TABLE))
    _nft(host, "add", "element", "inet", NFT_TABLE, f"blocked_{proto}", f"{{ {port} }}")
    host.faults[f"block {proto}/{port}"] = f"{proto}/{port} dropped"


def unblock_port(host: HostState, port: int, proto: str = "tcp") -> None:
    """Undo ``block_port``; the table goes when no port is blocked any more."""
    key = f"block {proto}/{port}"
    if key in host.faults:
        _nft(host, "delete", "element", "inet", NFT_TABLE, f"blocked_{proto}", f"{{ {port} }}")
        del host.faults[key]
    if not _blocked(host):
        _nft(host, "delete", "table", "inet", NFT_TABLE, check=False)


def stop_service(host: HostState, unit: str) -> None:
    """``systemctl stop`` a unit inside the host."""
    run(nsenter(host, "systemctl", "stop", unit))
    host.faults[f"service {unit}"] = "stopped"


def start_service(host: HostState, unit: str) -> None:
    run(nsenter(host, "systemctl", "start", unit))
    host.faults.pop(f"service {unit}", None)


def fill_disk(paths: HostPaths, host: HostState, leave_bytes: int = 0) -> int:
    """Fill the host's disk until at most ``leave_bytes`` are free; return bytes taken."""
    clear_disk(paths, host)
    stat = os.statvfs(paths.disk)
    wanted = max(stat.f_bavail * stat.f_frsize - leave_bytes, 0)
    taken = 0
    fd = os.open(paths.filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        # Reserve most of it at once (metadata needs a little room, hence the
        # step back), then write zeros until the filesystem says it is full.
        size = wanted
        while size > 0:
            try:
                os.posix_fallocate(fd, 0, size)
                taken = size
                break
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size -= 4 * 1024 * 1024
        os.lseek(fd, taken, os.SEEK_SET)
        chunk = b"\0" * 65536
        while taken < wanted:
            try:
                taken += os.write(fd, chunk[: wanted - taken])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        os.fsync(fd)
    finally:
        os.close(fd)
    host.faults["disk"] = "full"
    return taken


def clear_disk(paths: HostPaths, host: HostState) -> None:
    paths.filler.unlink(missing_ok=True)
    host.faults.pop("disk", None)


def skew_clock(paths: HostPaths, host: HostState, seconds: int, units: Sequence[str] = ()) -> None:
    """Make the host's clock read ``seconds`` ahead (behind, if negative).

    Seen by SSH sessions, and by each of ``units`` (restarted with a drop-in).
    """
    clear_clock(paths, host)
    library = _faketime_library(paths.root)
    render.write(paths.root / "etc/faketimerc", "faketimerc.j2", seconds=seconds)
    render.write(paths.root / "etc/environment", "environment.j2", preload=library)
    for unit in units:
        render.write(_drop_in(paths, unit), "faketime-unit.conf.j2", preload=library)
    _restart(host, units)
    host.faults["clock"] = f"{seconds:+d} s" + (f" ({', '.join(units)})" if units else "")


def clear_clock(paths: HostPaths, host: HostState) -> None:
    """Back to the real time for SSH sessions and every unit that was skewed."""
    render.write(paths.root / "etc/environment", "environment.j2", preload=None)
    (paths.root / "etc/faketimerc").unlink(missing_ok=True)
    skewed = [d.parent.name.removesuffix(".d") for d in _drop_ins(paths)]
    for drop_in in _drop_ins(paths):
        drop_in.unlink()
    _restart(host, skewed)
    host.faults.pop("clock", None)


DROP_IN = "prep-iac-faketime.conf"


def _drop_in(paths: HostPaths, unit: str) -> Path:
    return paths.root / "etc/systemd/system" / f"{unit}.d" / DROP_IN


def _drop_ins(paths: HostPaths) -> list[Path]:
    return sorted((paths.root / "etc/systemd/system").glob(f"*.d/{DROP_IN}"))


def _restart(host: HostState, units: Sequence[str]) -> None:
    if units:
        run(nsenter(host, "systemctl", "daemon-reload"))
        run(nsenter(host, "systemctl", "restart", *units))


def _faketime_library(root: Path) -> str:
    found = sorted(root.glob(FAKETIME_GLOB))
    if not found:
        raise TestbedError(
            f"libfaketime is not in the host image ({FAKETIME_GLOB}); rebuild the image"
        )
    return "/" + str(found[0].relative_to(root))
