"""One host's lifecycle: its disk and overlay root, its identity, its
``systemd-nspawn`` process, waiting for sshd, and stopping it.

Layout under the testbed's state directory, per host::

    hosts/<name>/disk.img   sparse ext4 file, the host's writable disk (size-limited)
    hosts/<name>/disk/      that disk mounted: upper/ and work/ of the overlay
    hosts/<name>/root/      the overlay (image below, disk above): the host's /
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from prep_iac.testbed import render
from prep_iac.testbed.errors import TestbedError
from prep_iac.testbed.network import NETNS_DIR
from prep_iac.testbed.settings import TestbedSettings
from prep_iac.testbed.state import HostState
from prep_iac.testbed.system import alive, children, cmdline, run, tree

HOST_KEY = "etc/ssh/ssh_host_ed25519_key"


class HostPaths:
    """Where one host's files live on the machine."""

    def __init__(self, testbed_dir: Path, host: str) -> None:
        self.dir = testbed_dir / "hosts" / host
        self.disk_image = self.dir / "disk.img"
        self.disk = self.dir / "disk"
        self.upper = self.disk / "upper"
        self.work = self.disk / "work"
        self.root = self.dir / "root"
        self.console = self.dir / "console.log"
        # On the disk, beside (not inside) the overlay: invisible to the host, but
        # it takes the host's space, so it is how the disk-full fault fills it.
        self.filler = self.disk / "fill"


def mount_root(paths: HostPaths, image: Path, disk_mib: int) -> None:
    """Create the host's disk and mount the overlay of ``image`` at ``paths.root``."""
    paths.dir.mkdir(parents=True, exist_ok=True)
    if not paths.disk_image.exists():
        with paths.disk_image.open("wb") as handle:
            handle.truncate(disk_mib * 1024 * 1024)
        # No reserved blocks: "full" must mean full for root on the host too.
        run(["mkfs.ext4", "-q", "-F", "-m", "0", "-E", "nodiscard", str(paths.disk_image)])
    paths.disk.mkdir(exist_ok=True)
    if not paths.disk.is_mount():
        run(["mount", "-o", "loop", str(paths.disk_image), str(paths.disk)])
    paths.upper.mkdir(exist_ok=True)
    paths.work.mkdir(exist_ok=True)
    paths.root.mkdir(exist_ok=True)
    if not paths.root.is_mount():
        options = f"lowerdir={image},upperdir={paths.upper},workdir={paths.work}"
        run(["mount", "-t", "overlay", "overlay", "-o", options, str(paths.root)])


def personalise(
    paths: HostPaths, host: HostState, admin_public_key: str, settings: TestbedSettings
) -> str:
    """Give the host its name, machine id, host key, admin key and apt config.

    Returns the host's public key line (``ssh-ed25519 AAAA...``) to pin.
    """
    root = paths.root
    (root / "etc/hostname").write_text(f"{host.name}\n")
    render.write(root / "etc/hosts", "hosts.j2", hostname=host.name, address=host.address)
    (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    key = root / HOST_KEY
    for old in (key, key.with_suffix(".pub")):
        old.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(key)])
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(admin_public_key.strip() + "\n")
    authorized.chmod(0o600)
    render.write(
        root / "etc/apt/apt.conf.d/01prep-iac-proxy",
        "apt-proxy.conf.j2",
        address=settings.proxy_address,
        port=settings.proxy_port,
    )
    render.write(
        root / "etc/apt/sources.list.d/debian.sources",
        "debian.sources.j2",
        mirror=settings.mirror,
        security_mirror=settings.security_mirror,
        suite=host.suite,
    )
    unit = root / NET_SYSCTLS_UNIT
    unit.write_text(NET_SYSCTLS_SERVICE)
    wants = root / "etc/systemd/system/sysinit.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / unit.name).unlink(missing_ok=True)
    (wants / unit.name).symlink_to(f"/{NET_SYSCTLS_UNIT}")
    public = key.with_suffix(".pub").read_text().split()
    return f"{public[0]} {public[1]}"


def cgroup_parent() -> Path | None:
    """Where hosts' memory cgroups go: below the caller's own, so its limits still apply.

    nspawn runs with ``--keep-unit``: it makes no cgroup of its own for a host,
    only its ``payload`` and ``supervisor`` below the cgroup it starts in. None
    when the machine has no memory controller to use.
    """
    base: Path | None = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")  # cgroup v1
            break
        if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            base = Path("/sys/fs/cgroup") / path.lstrip("/")  # cgroup v2, unless v1 follows
    return None if base is None else base / "prep-iac"


def _hierarchy_root(controllers: str) -> Path | None:
    """Where the hierarchy of a ``/proc/self/cgroup`` line is mounted, if systemd uses it."""
    if controllers == "name=systemd":
        return Path("/sys/fs/cgroup/systemd")  # cgroup v1 or hybrid: systemd's own tree
    if controllers == "":
        for root in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):  # hybrid, v2
            if (root / "cgroup.controllers").exists():
                return root
    return None


def supervision_parents() -> list[Path]:
    """Where hosts' cgroups go in each hierarchy that the hosts' systemd manages units in."""
    parents = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        root = _hierarchy_root(controllers)
        if root is not None:
            parents.append(root / path.lstrip("/") / "prep-iac")
    return parents


def cgroup_parents() -> list[Path]:
    """Every existing directory the hosts' cgroups are made in."""
    memory = cgroup_parent()
    parents = [*([memory] if memory else []), *supervision_parents()]
    return [p for p in dict.fromkeys(parents) if p.is_dir()]


def memory_cgroup(machine: str) -> Path | None:
    """A fresh memory cgroup for one host, or None if it cannot be made."""
    parent = cgroup_parent()
    if parent is None:
        return None
    group = parent / machine
    try:
        group.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return group


def host_cgroups(machine: str) -> list[Path]:
    """The host's own cgroup in every hierarchy its systemd manages units in.

    Without them each host's nspawn put its payload in the same ``/payload``
    cgroup, so a unit's cgroup (``/payload/system.slice/nut-monitor.service``)
    held that unit's processes of every host: a host's systemd stopping the unit
    could neither kill nor wait out the other hosts' processes, and restarts hung
    for the 90 s stop timeout while five hosts deployed at once (CI saw it as
    hung deploys and failed Suricata and NUT restarts).
    """
    groups = []
    for parent in supervision_parents():
        group = parent / machine
        try:
            group.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TestbedError(f"host {machine}: cannot create its cgroup {group}: {exc}") from exc
        groups.append(group)
    return groups


def memory_usage(group: Path) -> int:
    """Bytes charged to ``group``: process memory, kernel memory and page cache it touched."""
    for name in ("memory.usage_in_bytes", "memory.current"):
        if (group / name).exists():
            return int((group / name).read_text())
    raise TestbedError(f"no memory usage file in {group}")


def remove_cgroup(group: Path, timeout: float = 5) -> None:
    """Remove a host's cgroup, and the tree its systemd made below it, once empty.

    The host's processes may outlive nspawn by a moment while the kernel tears
    its PID namespace down; any still listed are killed (they are the host's).
    """
    deadline = time.monotonic() + timeout
    while group.is_dir():
        tree = sorted(
            (p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        )
        try:
            for sub in [*tree, group]:
                with contextlib.suppress(FileNotFoundError):
                    sub.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TestbedError(f"cannot remove {group}: processes stay in it") from None
        for sub in [*tree, group]:
            try:
                left = (sub / "cgroup.procs").read_text().split()
            except OSError:
                left = []
            for pid in left:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    if int(pid) > 0:  # 0: a process this pid namespace cannot see
                        os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.05)


JOIN_AND_EXEC = """
for group; do
    shift
    [ "$group" = -- ] && break
    echo $$ > "$group/cgroup.procs" || exit 1
done
exec "$@"
"""

# nspawn ends when the host reboots (its status 133): boot it again, as a machine
# would. Any other end (poweroff, a pulled plug, a crash) stays the end.
REBOOT_EXIT = 133
BOOT_AGAIN_ON_REBOOT = f"""
while :; do
    "$@"
    status=$?
    [ $status -eq {REBOOT_EXIT} ] || exit $status
done
"""


def start(paths: HostPaths, host: HostState) -> int:
    """Boot the host under ``systemd-nspawn`` in its namespace; return nspawn's pid.

    ``--register=no --keep-unit``: there is no system bus on this machine.
    CAP_NET_ADMIN lets the host run nft itself (the difusor deploy does).
    """
    # Joining the host's cgroups before exec puts every process of the host in them.
    groups = list(dict.fromkeys([*host.cgroups, *([host.cgroup] if host.cgroup else [])]))
    enter = ["sh", "-c", JOIN_AND_EXEC, "sh", *map(str, groups), "--"]
    cmd = [
        *(enter if groups else []),
        "sh",
        "-c",
        BOOT_AGAIN_ON_REBOOT,
        "sh",
        "systemd-nspawn",
        "--quiet",
        "--register=no",
        "--keep-unit",
        "--boot",
        f"--directory={paths.root}",
        f"--machine={host.machine}",
        f"--network-namespace-path={NETNS_DIR / host.netns}",
        "--capability=CAP_NET_ADMIN,CAP_NET_RAW",
        "--console=read-only",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
    ]
    with paths.console.open("ab") as log:
        # A session of its own: the host outlives the ``testbed up`` that started it.
        process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    return process.pid


def is_ours(pid: int, host: HostState) -> bool:
    """Whether ``pid`` is still this host's nspawn (pids get reused)."""
    args = cmdline(pid)
    return bool(args) and f"--machine={host.machine}" in args and alive(pid)


def kill(host: HostState, timeout: float) -> None:
    """Kill every process of the host at once (its systemd first: the kernel then kills
    the rest of its PID namespace), as a power cut would; wait for nspawn to exit."""
    assert host.pid is not None
    with contextlib.suppress(TestbedError):
        os.kill(init_pid(host), signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while alive(host.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(host.pid):
        for pid in tree(host.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(host.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(host.pid):
        raise TestbedError(f"host {host.name}: nspawn {host.pid} outlived SIGKILL for 5 s")


def nspawn_pid(host: HostState) -> int:
    """The pid of the host's current ``systemd-nspawn`` (below the loop that boots it
    again after a reboot)."""
    if host.pid is None or not is_ours(host.pid, host):
        raise TestbedError(f"host {host.name} is not running")
    for child in children(host.pid):
        args = cmdline(child)
        if args and args[0].endswith("systemd-nspawn"):
            return child
    raise TestbedError(f"host {host.name}: no systemd-nspawn below {host.pid} (rebooting?)")


def init_pid(host: HostState) -> int:
    """The pid (on the machine) of the host's systemd, for ``nsenter``."""
    nspawn = nspawn_pid(host)
    for child in children(nspawn):
        return child
    raise TestbedError(f"host {host.name}: nspawn {nspawn} has no container process yet")


def nsenter(host: HostState, *cmd: str) -> list[str]:
    """A command line that runs ``cmd`` inside the host, without SSH."""
    pid = str(init_pid(host))
    return ["nsenter", "-t", pid, "-m", "-u", "-i", "-n", "-p", "-r", "-w", *cmd]


# nspawn mounts /proc/sys read-only in a host that does not run its own network
# (--network-namespace-path is not --private-network to it), though the host has its
# own namespace: a writable bind of /proc/sys/net lets the host set the sysctls its
# namespace owns (the deploy's net.* hardening), as a real server does. The rest of
# /proc/sys (the machine's kernel) stays read-only.
WRITABLE_NET_SYSCTLS = (
    "mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net"
)


# Run inside the host by a unit at every boot (a reboot gets a new mount namespace),
# before systemd-sysctl applies the deploy's settings.
NET_SYSCTLS_UNIT = "etc/systemd/system/prep-testbed-net-sysctls.service"
NET_SYSCTLS_SERVICE = f"""# Written by the prep-iac testbed (prep_iac/testbed/host.py).
[Unit]
Description=Testbed: this host's network namespace sysctls writable
DefaultDependencies=no
Before=systemd-sysctl.service sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c "{WRITABLE_NET_SYSCTLS}"

[Install]
WantedBy=sysinit.target
"""


def wait_for_ssh(hosts: list[HostState], paths: list[HostPaths], timeout: float) -> None:
    """Wait until every host's sshd answers with its banner; fail naming the late ones."""
    deadline = time.monotonic() + timeout
    pending = dict(zip([h.name for h in hosts], zip(hosts, paths, strict=True), strict=True))
    while pending and time.monotonic() < deadline:
        for name, (host, host_paths) in list(pending.items()):
            if host.pid is None or not alive(host.pid):
                tail = _tail(host_paths.console)
                raise TestbedError(f"host {name} stopped while booting; console:\n{tail}")
            if _ssh_banner(str(host.address)):
                del pending[name]
        if pending:
            time.sleep(0.1)
    if pending:
        raise TestbedError(
            f"sshd did not answer within {timeout:g} s on: {', '.join(sorted(pending))}"
        )


def _ssh_banner(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=1) as conn:
            return conn.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console log)"
