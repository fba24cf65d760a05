"""Fetch a difusor's logs over SSH (Fabric/paramiko) from the hosts of its pyinfra inventory.

The difusor's administrator runs this with the key they deploy with; host keys
are checked against their ``known_hosts`` (an unknown or changed key refuses
the connection, as it does for the deploy). From each host it copies the files
the deploy writes, rotated and gzipped ones included, that were modified on or
after the first election day, into ``<dest>/<host>/``.
"""

from __future__ import annotations

import fnmatch
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection

# (remote directory, file pattern, kind): kind "access" is read by the engine,
# the others by the incident report.
REMOTE_LOGS = (
    ("/var/log/nginx", "prep-access.log*", "access"),
    ("/var/log/prep-iac", "events.log*", "host"),
    ("/var/log/prep-iac", "activate.log*", "host"),
    ("/var/log/suricata", "eve.json*", "host"),
    ("/var/log/nginx", "modsec_audit.log*", "host"),
)


@dataclass(frozen=True)
class InventoryHost:
    name: str
    hostname: str
    port: int
    user: str


@dataclass
class Inventory:
    hosts: list[InventoryHost]
    difusor_name: str
    server_names: list[str]


@dataclass
class FetchedLogs:
    access: list[Path] = field(default_factory=list)
    host: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<host>: why", one per host not read


def read_inventory(path: Path) -> Inventory:
    """The hosts of a pyinfra inventory (as the deploy uses it) and the difusor's names."""
    from pyinfra_cli.inventory import make_inventory

    inventory = make_inventory(str(path), group_data_directories=[])
    hosts: list[InventoryHost] = []
    name, server_names = "", list[str]()
    for host in inventory:
        data: Any = host.data
        hosts.append(
            InventoryHost(
                name=host.name,
                hostname=str(data.get("ssh_hostname") or host.name),
                port=int(data.get("ssh_port") or 22),
                user=str(data.get("ssh_user") or "root"),
            )
        )
        name = name or str(data.get("difusor_name") or "")
        server_names += [s for s in data.get("server_names") or [] if s not in server_names]
    return Inventory(hosts=hosts, difusor_name=name, server_names=server_names)


def fetch_logs(
    hosts: list[InventoryHost], dest: Path, since: datetime, key: Path | None = None,
    known_hosts: Path | None = None, timeout: float = 15.0,
) -> FetchedLogs:  # fmt: skip
    """Copy every host's logs modified since ``since`` into ``dest/<host>/``.

    A host that cannot be reached is named in ``failed`` and the others are still read
    (the memoria of a two-node difusor is still worth having with one node's logs).
    """
    fetched = FetchedLogs()
    for host in hosts:
        try:
            _fetch_host(host, dest / host.name, since, key, known_hosts, timeout, fetched)
        except (OSError, paramiko.SSHException) as exc:
            fetched.failed.append(f"{host.name} ({host.hostname}:{host.port}): {exc}")
    return fetched


def _fetch_host(
    host: InventoryHost, target: Path, since: datetime, key: Path | None,
    known_hosts: Path | None, timeout: float, fetched: FetchedLogs,
) -> None:  # fmt: skip
    target.mkdir(parents=True, exist_ok=True)
    connect: dict[str, Any] = {"look_for_keys": key is None, "allow_agent": key is None}
    if key is not None:
        connect["key_filename"] = str(key)
    with Connection(
        host.hostname, user=host.user, port=host.port, connect_timeout=timeout,
        config=Config(overrides={"load_ssh_configs": False}), connect_kwargs=connect,
    ) as conn:  # fmt: skip
        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        if known_hosts is not None:
            conn.client.load_host_keys(str(known_hosts))
        else:
            conn.client.load_system_host_keys()
        sftp = conn.sftp()
        for directory, pattern, kind in REMOTE_LOGS:
            try:
                entries = sftp.listdir_attr(directory)
            except FileNotFoundError:
                continue
            for entry in sorted(entries, key=lambda e: e.filename):
                if not fnmatch.fnmatch(entry.filename, pattern):
                    continue
                if not stat.S_ISREG(entry.st_mode or 0):
                    continue
                if (entry.st_mtime or 0) < since.timestamp():
                    continue
                local = target / entry.filename
                sftp.get(f"{directory}/{entry.filename}", str(local))
                (fetched.access if kind == "access" else fetched.host).append(local)
