"""How the audit reaches a difusor host: as its admin, as the IEC, as a visitor.

- **shell**: the admin's SSH login, through pytest-testinfra's ``ssh`` backend
  (OpenSSH with a connection kept open for the whole audit, host key pinned);
  ``sudo`` when the admin is not root. Only a full audit has it.
- **sftp**: the IEC's SFTP account (paramiko, host key pinned), what the IEC
  itself can see of the host.
- **http**: a visitor's requests to the publication, from outside.

Each access is tried once. One that fails is recorded with its reason, and every
control that needs it reports "not checked" with that reason, never a pass.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import testinfra
from pyinfra.api.state import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from prep_iac.deploy.settings import DifusorSettings, host_layers, load_settings
from prep_iac.models.difusor import Registry
from prep_iac.models.loading import ConfigError, Problem

SSH_TIMEOUT = 10
HTTP_TIMEOUT = 10


class NotChecked(Exception):
    """The check cannot be made here; its message says why (never a pass)."""


@dataclass(frozen=True)
class Login:
    """An SSH login: where, as whom, with which key, pinning which host key."""

    hostname: str
    user: str
    port: int = 22
    key: Path | None = None
    known_hosts: Path | None = None
    host_key: str | None = None  # "type base64", pinned by the registry


@dataclass(frozen=True)
class Target:
    """One host to audit and the accesses the audit has to it."""

    name: str
    address: str
    admin: Login | None = None
    iec: Login | None = None
    settings: DifusorSettings | None = None
    http_host: str | None = None
    source: str | None = None  # local address the IEC's login and the visitor leave from
    peers: tuple[str, ...] = ()  # the difusor's other nodes (clause II.a)
    http_port: int | None = None  # default: 443 with TLS, else 80

    @property
    def tls(self) -> bool:
        return bool(self.settings and self.settings.tls)


@dataclass
class Result:
    """A command's exit status and output."""

    rc: int
    stdout: str
    stderr: str
    stdout_bytes: bytes = b""


@dataclass
class Shell:
    """The admin's shell on the host, or why there is none."""

    host: Any = None
    unavailable: str | None = None

    def run(self, command: str) -> Result:
        if self.host is None:
            raise NotChecked(self.unavailable or "sin acceso de administrador al servidor")
        # ssh exits 255 on its own failures: a remote command's 255 is passed on as 254.
        wrapped = f"( {command}\n); r=$?; [ $r -ne 255 ] || r=254; exit $r"
        try:
            out = self.host.run(wrapped)
        except RuntimeError as exc:
            raise NotChecked(f"la sesión SSH del administrador falló: {_short(exc)}") from None
        return Result(out.rc, out.stdout, out.stderr, out.stdout_bytes)

    def output(self, command: str) -> str:
        """stdout of a command that must succeed (else the check cannot be made)."""
        result = self.run(command)
        if result.rc != 0:
            raise NotChecked(f"`{command}` terminó con {result.rc}: {_short(result.stderr)}")
        return result.stdout


@dataclass
class Http:
    """GET requests to the publication as a visitor."""

    address: str
    host: str
    tls: bool = False
    source: str | None = None
    port: int | None = None
    timeout: float = HTTP_TIMEOUT

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        port = self.port or (443 if self.tls else 80)
        try:
            sock = socket.create_connection(
                (self.address, port), timeout=self.timeout,
                source_address=(self.source, 0) if self.source else None,
            )  # fmt: skip
            if self.tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            conn = http.client.HTTPConnection(self.address, port, timeout=self.timeout)
            conn.sock = sock
            try:
                conn.request("GET", path, headers={"Host": self.host, **(headers or {})})
                response = conn.getresponse()
                body = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, body
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            scheme = "https" if self.tls else "http"
            # The cause stays attached: the pentest tells a dropped request from a refused one.
            raise NotChecked(f"{scheme}://{self.address}{path} no respondió: {exc}") from exc


class Sftp:
    """The IEC's SFTP session, opened on first use."""

    def __init__(self, login: Login | None, source: str | None = None) -> None:
        self.login = login
        self.source = source
        self.client: paramiko.SSHClient | None = None
        self.session: paramiko.SFTPClient | None = None
        self.unavailable: str | None = None if login else "sin la llave de la cuenta del IEC"

    def open(self) -> paramiko.SFTPClient:
        if self.session is not None:
            return self.session
        if self.unavailable or self.login is None:
            raise NotChecked(self.unavailable or "sin la llave de la cuenta del IEC")
        login = self.login
        client = paramiko.SSHClient()
        if login.known_hosts:
            client.load_host_keys(str(login.known_hosts))
        if login.host_key:
            kind, blob = login.host_key.split()[:2]
            key = paramiko.PKey.from_type_string(kind, base64.b64decode(blob))
            client.get_host_keys().add(_known_name(login), kind, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            sock = socket.create_connection(
                (login.hostname, login.port), timeout=SSH_TIMEOUT,
                source_address=(self.source, 0) if self.source else None,
            )  # fmt: skip
            client.connect(
                login.hostname, port=login.port, username=login.user,
                key_filename=str(login.key) if login.key else None,
                look_for_keys=False, allow_agent=False,
                timeout=SSH_TIMEOUT, banner_timeout=SSH_TIMEOUT, auth_timeout=SSH_TIMEOUT,
                channel_timeout=SSH_TIMEOUT, sock=sock,
            )  # fmt: skip
            self.session = client.open_sftp()
        except (OSError, paramiko.SSHException) as exc:
            client.close()
            self.unavailable = f"la cuenta del IEC no pudo entrar por SFTP: {_short(exc)}"
            raise NotChecked(self.unavailable) from None
        self.client = client
        return self.session

    def exec_refused(self) -> tuple[bool, str]:
        """Whether the account refuses to run a command (``id``), and what it answered."""
        self.open()
        assert self.client is not None
        transport = self.client.get_transport()
        assert transport is not None
        channel = transport.open_session(timeout=SSH_TIMEOUT)
        try:
            channel.settimeout(SSH_TIMEOUT)
            channel.exec_command("id")
            output = b""
            while chunk := channel.recv(4096):
                output += chunk
            status = channel.recv_exit_status()
        except (OSError, paramiko.SSHException) as exc:
            return True, f"el servidor cerró el canal: {_short(exc)}"
        finally:
            channel.close()
        text = output.decode(errors="replace").strip()
        return b"uid=" not in output, f"`id` terminó con {status}: {text[:200]!r}"

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _known_name(login: Login) -> str:
    return login.hostname if login.port == 22 else f"[{login.hostname}]:{login.port}"


def _short(exc: object, limit: int = 300) -> str:
    return " ".join(str(exc).split())[:limit]


@contextmanager
def admin_shell(target: Target) -> Iterator[Shell]:
    """The admin's shell through testinfra's ssh backend, kept open for the audit."""
    login = target.admin
    if login is None:
        yield Shell(unavailable="auditoría sin acceso de administrador (solo lo que ve el IEC)")
        return
    with tempfile.TemporaryDirectory(prefix="prep-iac-audit-") as tmp:
        config = Path(tmp) / "ssh_config"
        lines = [
            "Host target",
            f"  HostName {login.hostname}",
            f"  Port {login.port}",
            f"  User {login.user}",
            "  BatchMode yes",
            "  IdentitiesOnly yes",
            "  StrictHostKeyChecking yes",
            f"  ConnectTimeout {SSH_TIMEOUT}",
            "  ServerAliveInterval 5",
            "  ServerAliveCountMax 3",
            # One connection for the whole audit (testinfra's own options are off).
            "  ControlMaster auto",
            f"  ControlPath {Path(tmp) / 'cm-%C'}",
            "  ControlPersist 60",
        ]
        if login.key:
            lines.append(f"  IdentityFile {login.key}")
        if login.known_hosts:
            lines.append(f"  UserKnownHostsFile {login.known_hosts}")
        config.write_text("\n".join(lines) + "\n")
        host = testinfra.get_host(
            "ssh://target", ssh_config=str(config), controlpersist=0,
            sudo=login.user != "root", timeout=SSH_TIMEOUT,
        )  # fmt: skip
        shell = Shell(host=host)
        try:
            probe = host.run("true")
            if probe.rc != 0:
                shell = Shell(
                    unavailable=f"el administrador entra pero `true` terminó con {probe.rc}"
                )
        except RuntimeError as exc:
            shell = Shell(unavailable=f"el administrador no pudo entrar por SSH: {_short(exc)}")
        try:
            yield shell
        finally:
            # Close the kept-open connection (ControlPersist) before its directory goes.
            if shell.host is not None:
                subprocess.run(
                    ["ssh", "-F", str(config), "-O", "exit", "target"],
                    capture_output=True, timeout=SSH_TIMEOUT, check=False,
                )  # fmt: skip


def from_inventory(
    inventory: Path, project: Path, limit: list[str] | None = None, iec_key: Path | None = None
) -> list[Target]:
    """The hosts of a pyinfra inventory, with the deploy's settings from its group data."""
    if not inventory.is_file():
        raise ConfigError([Problem(str(inventory), "", "no such file", "a pyinfra inventory")])
    with ctx_state.use(State()):
        hosts = list(make_inventory(str(inventory), cwd=str(project)))
    targets = []
    for host in hosts:
        if limit and host.name not in limit:
            continue
        data = host.data
        settings = load_settings(host_layers(host, project / "group_data"))
        address = str(data.get("ssh_hostname") or host.name)
        port = int(data.get("ssh_port") or 22)
        known = data.get("ssh_known_hosts_file")
        key = data.get("ssh_key")
        admin = Login(
            hostname=address, port=port, user=str(data.get("ssh_user") or settings.admin_user),
            key=Path(key) if key else None, known_hosts=Path(known) if known else None,
        )  # fmt: skip
        iec = (
            Login(hostname=address, port=port, user=settings.sftp_user, key=iec_key,
                  known_hosts=admin.known_hosts)
            if iec_key else None
        )  # fmt: skip
        targets.append(
            Target(name=host.name, address=address, admin=admin, iec=iec, settings=settings,
                   http_host=settings.server_names[0],
                   peers=tuple(str(peer) for peer in settings.ha_peers))
        )  # fmt: skip
    if limit:
        missing = sorted(set(limit) - {t.name for t in targets})
        if missing:
            raise ConfigError(
                [Problem(str(inventory), "--limit", ", ".join(missing), "hosts of the inventory")]
            )
    return targets


def from_registry(registry: Registry, difusor_id: str, iec_key: Path | None) -> list[Target]:
    """A difusor's nodes as the IEC reaches them: its SFTP account and HTTP, no shell."""
    difusor = registry.get(difusor_id)
    return [
        Target(
            name=f"{difusor.id}/{node.host}",
            address=node.host,
            iec=Login(
                hostname=node.host,
                port=node.port,
                user=difusor.sftp_user,
                key=iec_key,
                host_key=str(node.host_key),
            )
            if iec_key
            else None,
            http_host=node.host,
            peers=tuple(other.host for other in difusor.nodes if other is not node),
        )
        for node in difusor.nodes
    ]
