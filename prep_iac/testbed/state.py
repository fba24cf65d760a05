"""The on-disk record of a testbed, written before each step so ``down`` can undo
whatever a crashed or killed ``up`` left behind."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from ipaddress import IPv4Address
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from prep_iac.testbed.errors import TestbedError

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,19}$"
STATE_FILE = "state.json"


class Phase(StrEnum):
    """How far a testbed or host got; ``down`` undoes any of them."""

    PLANNED = "planned"  # recorded, nothing created yet
    NETWORK = "network"  # netns + veth exist
    MOUNTED = "mounted"  # disk and overlay mounted
    STARTED = "started"  # nspawn running
    READY = "ready"  # sshd answered
    UP = "up"  # every host ready, ssh_config written


class HostState(BaseModel):
    """One host: its names on the machine, its address and how far it got."""

    model_config = ConfigDict(extra="forbid")

    name: str
    index: int = Field(ge=1)
    address: IPv4Address
    gateway: IPv4Address
    prefix: int
    netns: str
    veth: str = Field(max_length=15)
    machine: str
    lan_address: IPv4Address | None = Field(default=None, description="On the testbed's LAN.")
    lan_veth: str | None = Field(default=None, max_length=15)
    suite: str = Field(default="bookworm", description="The Debian release the host runs.")
    image: Path | None = Field(default=None, description="The host's base image (its suite's).")
    pid: int | None = None
    cgroup: Path | None = Field(default=None, description="Memory cgroup, for measuring.")
    cgroups: list[Path] = Field(
        default_factory=list, description="The host's own cgroup in each hierarchy systemd uses."
    )
    host_key: str | None = Field(default=None, description="'ssh-ed25519 AAAA...' of the host.")
    phase: Phase = Phase.PLANNED
    faults: dict[str, str] = Field(default_factory=dict, description="Active faults, by kind.")


class TestbedState(BaseModel):
    """A testbed: its name, its address slot, its hosts."""

    __test__ = False  # not a pytest test class, despite the name
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    slot: int = Field(ge=1, le=255)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    image: Path | None = None
    phase: Phase = Phase.PLANNED
    lan: bool = Field(default=False, description="Hosts share an L2 segment (a bridge).")
    hosts: list[HostState] = Field(default_factory=list)

    def host(self, name: str) -> HostState:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts) or "none"
        raise TestbedError(f"no host '{name}' in testbed '{self.name}' (hosts: {known})")


def validate_name(name: str) -> str:
    """Return ``name`` if it can name a testbed (it is part of paths and netns names)."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise TestbedError(
            f"testbed name {name!r}: expected a lowercase letter then up to 19 of a-z, 0-9, '-'"
        )
    return name


def state_dir(root: Path, name: str) -> Path:
    return root / validate_name(name)


def load(root: Path, name: str) -> TestbedState | None:
    """The recorded state of testbed ``name``, or None if there is none."""
    path = state_dir(root, name) / STATE_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return TestbedState.model_validate_json(text)


def save(root: Path, state: TestbedState) -> None:
    """Write the state atomically (a killed writer leaves the previous version)."""
    directory = state_dir(root, state.name)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = directory / f".{STATE_FILE}.{os.getpid()}"
    tmp.write_text(state.model_dump_json(indent=2))
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(directory / STATE_FILE)


def all_states(root: Path) -> list[TestbedState]:
    """Every testbed recorded under ``root``, by name."""
    if not root.is_dir():
        return []
    states = []
    for child in sorted(root.iterdir()):
        if re.fullmatch(NAME_PATTERN, child.name):
            state = load(root, child.name)
            if state is not None:
                states.append(state)
    return states


def recorded_names(root: Path) -> list[str]:
    """Names of every testbed directory, with or without a readable state file."""
    if not root.is_dir():
        return []
    return sorted(c.name for c in root.iterdir() if re.fullmatch(NAME_PATTERN, c.name))


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (released when the process dies, too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
