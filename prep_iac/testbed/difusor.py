"""Deploy a testbed host as a difusor and reach it from outside: for tests and benchmarks.

Three source addresses on the machine play three parties: the admin (the
host's gateway, the end of its link), the IEC (an extra address routed to the
host) and a stranger (the apt proxy's address, which every host routes back).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import paramiko

from prep_iac.deploy.rendering import render
from prep_iac.testbed import Testbed
from prep_iac.testbed.state import HostState

STRANGER = "198.19.255.1"  # the testbed's apt proxy address: routed back, never allowed SSH


def iec_source_for(host: HostState) -> str:
    """An address in 198.19.0.0/16 mirroring the host's, so testbeds never share one."""
    return str(IPv4Address(int(host.address) + (1 << 16)))


HANG_PROBES = (
    ("processes", "ps -eo pid,ppid,stat,etime,wchan:24,args --forest"),
    ("sockets", "ss -tnpo"),
    ("apt partial lists", "ls -la /var/lib/apt/lists/partial"),
    ("disk", "df -h /"),
)


class DeployFailed(RuntimeError):
    """pyinfra failed, or printed no summary; the message ends with its output."""


class DeployHung(DeployFailed):
    """pyinfra was still running at the timeout and was killed."""


@dataclass
class Run:
    """One pyinfra run: its output and how long it took."""

    output: str
    seconds: float
    returncode: int

    @property
    def changed(self) -> int:
        """Operations that changed something, from pyinfra's "Grand total" row."""
        match = re.search(r"Grand total\s+(\d+)\s+(\S+)", self.output)
        if match is None:
            raise DeployFailed(f"no summary in pyinfra's output:\n{self.output[-2000:]}")
        return 0 if match.group(2) == "-" else int(match.group(2))


@dataclass
class Deployed:
    """A testbed host targeted by the difusor deploy, and the parties that reach it."""

    testbed: Testbed
    host: HostState
    inventory: Path
    iec_key: Path
    iec_source: str
    project: Path = Path()

    @property
    def address(self) -> str:
        return str(self.host.address)

    @property
    def admin_source(self) -> str:
        return str(self.host.gateway)

    def write_inventory(
        self,
        iec_key: Path | None = None,
        peers: dict[str, dict[str, object]] | None = None,
        **host_data: object,
    ) -> None:
        """The inventory file, named testbed.py so that group_data/testbed.py applies;
        ``host_data`` overrides group data for this host. ``peers``: other hosts of the
        difusor (name: data) that the deploy reads but does not touch (it runs with
        ``--limit``), such as the other nodes of a floating address."""
        self.inventory.write_text(
            render(
                "testbed-inventory.py.j2",
                name=self.host.name,
                address=self.address,
                key=str(self.testbed.key),
                known_hosts=str(self.testbed.known_hosts),
                iec_source=f"{self.iec_source}/32",
                iec_key=(iec_key or self.iec_key).with_suffix(".pub").read_text().strip(),
                admin_source=f"{self.admin_source}/32",
                admin_key=self.testbed.ssh_files.public_key.read_text().strip(),
                extra=[(key, repr(value)) for key, value in host_data.items()],
                peers=[
                    (name, [(key, repr(value)) for key, value in data.items()])
                    for name, data in (peers or {}).items()
                ],
            )
        )

    def deploy(
        self,
        check: bool = True,
        timeout: float = 1200,
        deploy_file: str = "deploys/difusor.py",
        data: dict[str, str] | None = None,
    ) -> Run:
        """``pyinfra -y <inventory> deploys/difusor.py`` in the project (for its group_data),
        or another ``deploy_file`` with ``--data`` overrides; with ``check``, a failed run
        raises ``DeployFailed``. The output also goes to ``deploy.log`` beside the
        inventory, so a run that hangs can still be read."""
        log = self.inventory.with_name("deploy.log")
        overrides = [arg for k, v in (data or {}).items() for arg in ("--data", f"{k}={v}")]
        start = time.monotonic()
        with log.open("a+") as sink:
            sink.write(f"\n=== pyinfra -y {self.inventory} {deploy_file}\n")
            sink.flush()
            begin = sink.tell()
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pyinfra",
                    "-y",
                    *overrides,
                    "--limit",
                    self.host.name,
                    str(self.inventory),
                    deploy_file,
                ],
                cwd=self.project,
                # Unbuffered: the log of a run killed at the timeout shows how far it got.
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                sink.write(self.diagnosis())
                sink.flush()
                process.kill()
                process.wait()
                returncode = None
            sink.seek(begin)
            output = sink.read()
        seconds = time.monotonic() - start
        if returncode is None:
            raise DeployHung(
                f"pyinfra on {self.host.name} still running after {timeout:.0f} s (killed); "
                f"log {log}:\n{output[-4000:]}"
            )
        if check and returncode != 0:
            raise DeployFailed(f"pyinfra exited {returncode}; log {log}:\n{output[-4000:]}")
        return Run(output, seconds, returncode)

    def diagnosis(self) -> str:
        """What the host and the apt proxy are doing, for the log of a hung deploy: read
        through nsenter (not SSH, which may be what hangs), each part best effort."""
        parts = [f"\n=== diagnosis of {self.host.name} at {time.strftime('%H:%M:%S')}"]
        for title, cmd in HANG_PROBES:
            try:
                done = self.testbed.exec(self.host.name, "sh", "-c", cmd, check=False)
                parts.append(f"--- {title}\n{done.stdout}{done.stderr}")
            except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
                parts.append(f"--- {title}: {exc}")
        for name in ("apt-cacher.log", "apt-cacher.err", "stdout.log"):
            path = self.testbed.settings.proxy_log / name
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-40:]
                parts.append(f"--- proxy {path}\n" + "\n".join(tail))
        return "\n".join(parts) + "\n"

    def root(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.testbed.ssh(self.host.name, command, check=check, timeout=60)

    def sftp_client(self, key: Path | None = None, source: str | None = None) -> paramiko.SSHClient:
        """An SSH client logged in as the IEC (raises if the server refuses)."""
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 (test host)
        sock = connect(self.address, 22, source or self.iec_source)
        client.connect(
            self.address,
            username="iec",
            key_filename=str(key or self.iec_key),
            sock=sock,
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        return client

    def served_cut(self) -> str:
        """The cut id nginx serves (``X-PREP-Corte`` of ``/corte.json``), empty for the notice."""
        _, headers, _ = self.http("/corte.json")
        return headers.get("x-prep-corte", "")

    def http(
        self, path: str, source: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(
            self.address, 80, timeout=10, source_address=(source or self.admin_source, 0)
        )
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()


def connect(address: str, port: int, source: str, timeout: float = 5) -> socket.socket:
    """A TCP connection from ``source`` (raises ``TimeoutError`` when dropped)."""
    return socket.create_connection((address, port), timeout=timeout, source_address=(source, 0))


def make_key(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
    )
    return path


def add_source(host: HostState, address: str) -> None:
    """Give the machine ``address`` on the host's link and the host a route back to it."""
    subprocess.run(["ip", "addr", "replace", f"{address}/32", "dev", host.veth], check=True)
    subprocess.run(
        ["ip", "netns", "exec", host.netns, "ip", "route", "replace", f"{address}/32",
         "via", str(host.gateway)],
        check=True,
    )  # fmt: skip


def remove_source(host: HostState, address: str) -> None:
    """Undo ``add_source``: the machine's address and the host's route back to it."""
    subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", host.veth], check=False)
    subprocess.run(
        ["ip", "netns", "exec", host.netns, "ip", "route", "del", f"{address}/32"], check=False
    )


@contextlib.contextmanager
def difusor_on(testbed: Testbed, host: HostState, work: Path, project: Path) -> Iterator[Deployed]:
    """``host`` ready to deploy: an IEC key made in ``work``, its source routed, the inventory
    written; the extra address is removed on exit."""
    target = Deployed(
        testbed=testbed,
        host=host,
        inventory=work / "testbed.py",
        iec_key=make_key(work / "iec_ed25519"),
        iec_source=iec_source_for(host),
        project=project,
    )
    add_source(host, target.iec_source)
    try:
        target.write_inventory()
        yield target
    finally:
        remove_source(host, target.iec_source)
