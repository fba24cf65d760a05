"""``Testbed``: the public API to bring hosts up, reach them, break them and tear
them down.

**Example:**

.. code:: python

    bed = Testbed.up("drill", hosts=3)
    bed.ssh("difusor-1", "systemctl is-system-running")
    bed.shape("difusor-2")            # the calls' 10 Mbit/s
    bed.link_down("difusor-3")
    bed.down()

With ``lan=True`` the hosts also share one L2 segment (``lan0``, a bridge on the
machine) with room for floating addresses (``bed.floating_address()``), as two
nodes of a difusor behind VRRP have.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from prep_iac.models.difusor import Registry
from prep_iac.testbed import faults, image, network, preflight, proxy
from prep_iac.testbed import host as machine_host
from prep_iac.testbed import registry as registry_module
from prep_iac.testbed.errors import TestbedError
from prep_iac.testbed.leftovers import netns_prefix
from prep_iac.testbed.settings import TestbedSettings, release_suite
from prep_iac.testbed.ssh import SshFiles, generate_admin_key, run_on, write_client_files
from prep_iac.testbed.ssh import command as ssh_command
from prep_iac.testbed.state import (
    HostState,
    Phase,
    TestbedState,
    all_states,
    load,
    locked,
    save,
    state_dir,
    validate_name,
)
from prep_iac.testbed.system import (
    find_processes,
    loop_devices_backed_by,
    mounts_under,
    run,
    terminate,
    tree,
)

DEFAULT_NAME = "prep"


class Testbed:
    """A running (or partly created) testbed, backed by its state file."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, state: TestbedState, settings: TestbedSettings | None = None) -> None:
        self.state = state
        self.settings = settings or TestbedSettings()

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def up(
        cls,
        name: str = DEFAULT_NAME,
        hosts: int = 2,
        settings: TestbedSettings | None = None,
        rebuild_image: bool = False,
        lan: bool = False,
        release: str | Sequence[str] | None = None,
    ) -> Testbed:
        """Create ``hosts`` hosts ``difusor-1..N``, boot them and wait for sshd.

        ``lan``: also join every host to the testbed's LAN (see the module's doc).
        ``release``: the Debian release of every host ("trixie" or "13"), or one per
        host in order (``["bookworm", "trixie"]``); default: the settings' suite.

        On failure everything created so far is torn down before the error is raised;
        if the process is killed instead, ``Testbed.teardown(name)`` undoes it.
        """
        settings = settings or TestbedSettings()
        validate_name(name)
        if not 1 <= hosts <= network.MAX_HOSTS:
            raise TestbedError(f"--hosts {hosts}: expected 1..{network.MAX_HOSTS}")
        suites = cls._suites(hosts, settings, release)
        preflight.require()
        images = {
            suite: image.ensure(settings, rebuild=rebuild_image, suite=suite)
            for suite in dict.fromkeys(suites)
        }
        bed = cls(cls._plan(name, suites, settings, images, lan), settings)
        try:
            bed._create()
        except BaseException:
            cls.teardown(name, settings)
            raise
        return bed

    @staticmethod
    def _suites(
        hosts: int, settings: TestbedSettings, release: str | Sequence[str] | None
    ) -> list[str]:
        """One Debian codename per host, from ``release`` (see ``up``)."""
        if release is None:
            wanted: list[str] = [settings.suite] * hosts
        elif isinstance(release, str):
            wanted = [release] * hosts
        else:
            wanted = list(release)
            if len(wanted) != hosts:
                raise TestbedError(
                    f"--release: {len(wanted)} releases given for {hosts} hosts"
                    " (give one for every host, or one for all)"
                )
        try:
            return [release_suite(r) for r in wanted]
        except ValueError as error:
            raise TestbedError(f"--release: {error}") from None

    @classmethod
    def _plan(
        cls,
        name: str,
        suites: Sequence[str],
        settings: TestbedSettings,
        images: dict[str, Path],
        lan: bool = False,
    ) -> TestbedState:
        """Take a slot and record every name the testbed will use, before creating any."""
        with locked(settings.run_dir / "slots.lock"):
            if state_dir(settings.state_root, name).exists():
                raise TestbedError(
                    f"testbed '{name}' already exists ({state_dir(settings.state_root, name)}); "
                    f"run 'prep-iac testbed down --name {name}' first"
                )
            slot = network.free_slot({s.slot for s in all_states(settings.state_root)})
            state = TestbedState(name=name, slot=slot, image=images[suites[0]], lan=lan)
            for index, suite in enumerate(suites, start=1):
                link = network.host_link(slot, index)
                host_name = f"difusor-{index}"
                lan_link = network.lan_link(slot, index) if lan else None
                state.hosts.append(
                    HostState(
                        name=host_name,
                        index=index,
                        address=link.address,
                        gateway=link.gateway,
                        prefix=network.HOST_PREFIX,
                        netns=f"{netns_prefix(name)}{host_name}",
                        veth=f"pi{slot}h{index}",
                        machine=f"{name}.{host_name}",
                        lan_address=lan_link.address if lan_link else None,
                        lan_veth=f"pi{slot}l{index}" if lan_link else None,
                        suite=suite,
                        image=images[suite],
                    )
                )
            save(settings.state_root, state)
        return state

    def _create(self) -> None:
        settings, state = self.settings, self.state
        assert state.image is not None
        network.guard(state.slot)
        proxy.acquire(settings, state.name)
        public_key = generate_admin_key(self.ssh_files, f"prep-iac-testbed-{state.name}")
        if state.lan:
            network.create_lan(state.slot)
        for h in state.hosts:
            link = network.host_link(state.slot, h.index)
            network.create(h.netns, h.veth, link, settings.proxy_address)
            if h.lan_veth:
                network.join_lan(h.netns, h.lan_veth, state.slot, h.index)
            h.phase = Phase.NETWORK
            self._save()
            paths = self.paths(h)
            machine_host.mount_root(paths, h.image or state.image, settings.disk_mib)
            h.host_key = machine_host.personalise(paths, h, public_key, settings)
            h.phase = Phase.MOUNTED
            self._save()
            h.cgroup = machine_host.memory_cgroup(h.machine)
            h.cgroups = machine_host.host_cgroups(h.machine)
            self._save()
            h.pid = machine_host.start(paths, h)
            h.phase = Phase.STARTED
            self._save()
        machine_host.wait_for_ssh(
            state.hosts, [self.paths(h) for h in state.hosts], settings.boot_timeout
        )
        for h in state.hosts:
            h.phase = Phase.READY
        write_client_files(self.ssh_files, state.name, state.hosts)
        state.phase = Phase.UP
        self._save()

    @classmethod
    def teardown(cls, name: str, settings: TestbedSettings | None = None) -> None:
        """Remove everything testbed ``name`` may have created; safe to repeat.

        Works from the state file when there is one and from naming conventions
        when there is not, so it also cleans up after a killed ``up``.
        """
        settings = settings or TestbedSettings()
        directory = state_dir(settings.state_root, name)
        try:
            state = load(settings.state_root, name)
        except ValueError:
            state = None  # unreadable state: fall back to the naming conventions
        hosts = state.hosts if state else []
        prefix = netns_prefix(name)
        pids = set(find_processes("systemd-nspawn", f"{network.NETNS_DIR}/{prefix}"))
        pids |= {h.pid for h in hosts if h.pid is not None and machine_host.is_ours(h.pid, h)}
        terminate(pids, timeout=settings.stop_timeout)
        for point in mounts_under(directory):
            if run(["umount", str(point)], check=False).returncode != 0:
                run(["umount", "-l", str(point)])
        for device in loop_devices_backed_by(directory):
            run(["losetup", "-d", device], check=False)
        cls._remove_cgroups(name, hosts)
        for ns in network.our_netns(prefix):
            run(["ip", "netns", "del", ns])
        for h in hosts:
            network.destroy(h.netns, h.veth)
            if h.lan_veth and network.link_exists(h.lan_veth):
                run(["ip", "link", "del", h.lan_veth], check=False)
        if state is not None and state.slot < network.MAX_SLOT:
            network.destroy_lan(state.slot)
        held = {s.slot for s in all_states(settings.state_root) if s.name != name}
        for slot in network.guarded_slots():
            # Ours, or an orphan whose testbed lost its state: no live testbed holds it.
            if (state is not None and slot == state.slot) or slot not in held:
                network.unguard(slot)
        proxy.release(settings, name)
        left = mounts_under(directory)
        if left:
            raise TestbedError(f"still mounted, not removing {directory}: {left}")
        shutil.rmtree(directory, ignore_errors=True)

    @staticmethod
    def _remove_cgroups(name: str, hosts: list[HostState]) -> None:
        groups = {h.cgroup for h in hosts if h.cgroup is not None}
        groups |= {g for h in hosts for g in h.cgroups}
        for parent in machine_host.cgroup_parents():
            groups |= set(parent.glob(f"{name}.*"))
        for group in groups:
            if group.is_dir():
                machine_host.remove_cgroup(group)
                with contextlib.suppress(OSError):  # shared by testbeds: only when empty
                    group.parent.rmdir()

    def down(self) -> None:
        """Stop the hosts and remove everything the testbed created."""
        self.teardown(self.name, self.settings)

    @classmethod
    def load(cls, name: str = DEFAULT_NAME, settings: TestbedSettings | None = None) -> Testbed:
        """The recorded testbed ``name``; raises if there is none."""
        settings = settings or TestbedSettings()
        state = load(settings.state_root, name)
        if state is None:
            raise TestbedError(
                f"no testbed '{name}' (no {state_dir(settings.state_root, name)}/state.json); "
                f"start one with 'prep-iac testbed up --name {name}'"
            )
        return cls(state, settings)

    @classmethod
    def all(cls, settings: TestbedSettings | None = None) -> list[Testbed]:
        settings = settings or TestbedSettings()
        return [cls(s, settings) for s in all_states(settings.state_root)]

    # -- what it is ----------------------------------------------------------

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def hosts(self) -> list[HostState]:
        return self.state.hosts

    def host(self, name: str) -> HostState:
        return self.state.host(name)

    @property
    def directory(self) -> Path:
        return state_dir(self.settings.state_root, self.name)

    @property
    def ssh_files(self) -> SshFiles:
        return SshFiles(self.directory)

    @property
    def ssh_config(self) -> Path:
        return self.ssh_files.config

    @property
    def key(self) -> Path:
        return self.ssh_files.key

    @property
    def known_hosts(self) -> Path:
        return self.ssh_files.known_hosts

    def paths(self, h: HostState) -> machine_host.HostPaths:
        return machine_host.HostPaths(self.directory, h.name)

    def is_running(self, name: str) -> bool:
        h = self.host(name)
        return h.pid is not None and machine_host.is_ours(h.pid, h)

    def memory_pss(self, name: str) -> int:
        """Proportional set size (bytes) of the host's process tree, nspawn included.

        PSS splits pages shared between hosts (the image's libraries) fairly, so
        the sum over hosts is what they really take; page cache is not counted.
        """
        h = self.host(name)
        if h.pid is None or not machine_host.is_ours(h.pid, h):
            raise TestbedError(f"host {name} is not running")
        total = 0
        for pid in tree(h.pid):
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        return total

    def floating_address(self, number: int = 0) -> str:
        """An address of the testbed's LAN that no host has: for VRRP to float."""
        if not self.state.lan:
            raise TestbedError(f"testbed '{self.name}' has no LAN (made without lan=True)")
        return str(network.floating_address(self.state.slot, number))

    def lan_address(self, name: str) -> str:
        """Host ``name``'s own address on the testbed's LAN."""
        h = self.host(name)
        if h.lan_address is None:
            raise TestbedError(f"host {name} of testbed '{self.name}' is not on a LAN")
        return str(h.lan_address)

    def memory_cgroup(self, name: str) -> int:
        """Bytes charged to the host's memory cgroup (includes page cache it first read)."""
        h = self.host(name)
        if h.cgroup is None:
            raise TestbedError(f"host {name} has no memory cgroup on this machine")
        return machine_host.memory_usage(h.cgroup)

    # -- reaching hosts ------------------------------------------------------

    def ssh_command(self, name: str, remote: str | None = None) -> list[str]:
        """The ``ssh`` command line for host ``name`` (pinned key, admin identity)."""
        return ssh_command(self.ssh_files, self.host(name), remote)

    def ssh(
        self, name: str, remote: str, *, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run the shell command ``remote`` as root on host ``name`` over SSH."""
        return run_on(self.ssh_files, self.host(name), remote, check=check, timeout=timeout)

    def exec(self, name: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside host ``name`` without SSH (nsenter), e.g. when SSH is cut."""
        return run(machine_host.nsenter(self.host(name), *cmd), check=check)

    # -- faults --------------------------------------------------------------

    @contextmanager
    def _changing(self, name: str) -> Iterator[HostState]:
        """Reload, change and save one host's record under the testbed's lock."""
        with locked(self.settings.run_dir / f"testbed-{self.name}.lock"):
            fresh = load(self.settings.state_root, self.name)
            if fresh is None:
                raise TestbedError(f"testbed '{self.name}' is gone")
            self.state = fresh
            yield self.host(name)
            self._save()

    def shape(self, name: str, rate_mbit: float | None = None) -> None:
        """Limit host ``name``'s link to ``rate_mbit`` (default: the calls' 10 Mbit/s)."""
        with self._changing(name) as h:
            faults.shape(h, rate_mbit or self.settings.rate_mbit)

    def unshape(self, name: str) -> None:
        with self._changing(name) as h:
            faults.unshape(h)

    def link_down(self, name: str) -> None:
        with self._changing(name) as h:
            faults.link_down(h)

    def link_up(self, name: str) -> None:
        with self._changing(name) as h:
            faults.link_up(h)

    def lan_down(self, name: str) -> None:
        """Cut host ``name``'s LAN cable (its link to the other hosts and the visitors)."""
        with self._changing(name) as h:
            faults.lan_down(h)

    def lan_up(self, name: str) -> None:
        with self._changing(name) as h:
            faults.lan_up(h)

    def power_off(self, name: str) -> None:
        """Pull host ``name``'s plug: every process of it killed at once, no shutdown.

        Its disk, addresses and links stay; ``power_on`` boots it again.
        """
        with self._changing(name) as h:
            if h.pid is None or not machine_host.is_ours(h.pid, h):
                raise TestbedError(f"host {name} is not running")
            machine_host.kill(h, timeout=self.settings.stop_timeout)
            h.pid = None
            h.faults["power"] = "off"

    def power_on(self, name: str) -> None:
        """Boot host ``name`` again after ``power_off`` and wait for its sshd."""
        with self._changing(name) as h:
            if h.pid is not None and machine_host.is_ours(h.pid, h):
                raise TestbedError(f"host {name} is running already")
            for group in [*h.cgroups, *([h.cgroup] if h.cgroup else [])]:
                machine_host.remove_cgroup(group)  # the last boot's tree, empty since
            h.cgroup = machine_host.memory_cgroup(h.machine)
            h.cgroups = machine_host.host_cgroups(h.machine)
            h.pid = machine_host.start(self.paths(h), h)
            self._save()  # a crash from here on still finds the new nspawn
            machine_host.wait_for_ssh([h], [self.paths(h)], self.settings.boot_timeout)
            h.faults.pop("power", None)

    def block_port(self, name: str, port: int, proto: str = "tcp") -> None:
        with self._changing(name) as h:
            faults.block_port(h, port, proto)

    def unblock_port(self, name: str, port: int, proto: str = "tcp") -> None:
        with self._changing(name) as h:
            faults.unblock_port(h, port, proto)

    def stop_service(self, name: str, unit: str) -> None:
        with self._changing(name) as h:
            faults.stop_service(h, unit)

    def start_service(self, name: str, unit: str) -> None:
        with self._changing(name) as h:
            faults.start_service(h, unit)

    def fill_disk(self, name: str, leave_bytes: int = 0) -> int:
        with self._changing(name) as h:
            return faults.fill_disk(self.paths(h), h, leave_bytes)

    def clear_disk(self, name: str) -> None:
        with self._changing(name) as h:
            faults.clear_disk(self.paths(h), h)

    def skew_clock(self, name: str, seconds: int, units: Sequence[str] = ()) -> None:
        """Skew the clock SSH sessions (and ``units``, restarted) see on host ``name``."""
        with self._changing(name) as h:
            faults.skew_clock(self.paths(h), h, seconds, units)

    def clear_clock(self, name: str) -> None:
        with self._changing(name) as h:
            faults.clear_clock(self.paths(h), h)

    # -- for the push orchestrator ---------------------------------------------

    def registry(self, election: str = "coahuila-2018") -> Registry:
        """The testbed as a difusor registry, host keys pinned."""
        return registry_module.build(self.state, self.directory, election)

    def registry_yaml(self, election: str = "coahuila-2018") -> str:
        return registry_module.to_yaml(self.registry(election))

    def _save(self) -> None:
        save(self.settings.state_root, self.state)
