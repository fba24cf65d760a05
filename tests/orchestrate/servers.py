"""Real servers on 127.0.0.1 for the tests: SMTP (aiosmtpd), HTTP webhooks, S3 (moto), SFTP."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# The SMTP server lives in the library: the drill uses it too.
from prep_iac.drill.mailbox import Mailbox as Mailbox
from prep_iac.drill.mailbox import free_port
from prep_iac.drill.mailbox import smtp_server as smtp_server


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class HookLog:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@contextmanager
def webhook_server() -> Iterator[HookLog]:
    """An HTTP server on 127.0.0.1 that records JSON POSTs and answers ``log.status``."""
    log = HookLog("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            if log.status == 200:
                log.bodies.append({"headers": dict(self.headers), **body})
            self.send_response(log.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    log.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/prep"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield log
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3-compatible server as a subprocess on 127.0.0.1; yields its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310 (loopback)
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class SftpHost:
    """An SSH server on 127.0.0.1 offering SFTP into ``root``, for one client key."""

    port: int
    host_key: str  # "ssh-ed25519 AAAA..." as the registry pins it
    client_key: Path
    root: Path


def _keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {directory}/host_key
PidFile {directory}/sshd.pid
AuthorizedKeysFile {directory}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowTcpForwarding no
X11Forwarding no
# The deploy's confinement of the IEC's account: SFTP only, chrooted in the root.
Subsystem sftp internal-sftp
ChrootDirectory {root}
ForceCommand internal-sftp
LogLevel VERBOSE
"""
# The loopback sshd's account: root, confined by the chroot and ForceCommand as the
# deploy confines its ``iec`` account (which does not exist on the test machine).
SFTP_USER = "root"
# sshd refuses a chroot with a group- or world-writable component (as /tmp is).
CHROOTS = Path("/var/lib/prep-iac/test-sftp")


@contextmanager
def sftp_server(directory: Path, client_key: Path | None = None) -> Iterator[SftpHost]:
    """OpenSSH's sshd on a loopback port, SFTP only (``internal-sftp``), chrooted in a
    root of its own, as the deploy confines the IEC's account; accepts only
    ``client_key`` (default: one generated here). Tests log in as root, which the
    chroot and ``ForceCommand`` confine like the deploy's ``iec`` account."""
    host_key = _keygen(directory / "host_key")
    client_key = client_key or _keygen(directory / "client_key")
    (directory / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    CHROOTS.mkdir(parents=True, exist_ok=True, mode=0o755)
    # root's parent is this server's own too: beside the chroot, the host's files live.
    home = Path(tempfile.mkdtemp(prefix="sftp-", dir=CHROOTS))
    home.chmod(0o755)
    root = home / "root"
    root.mkdir(mode=0o755)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(SSHD_CONFIG.format(port=port, directory=directory, root=root))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
    log = (directory / "sshd.log").open("w")
    process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=log)
    try:
        _wait_listening(port, process, directory / "sshd.log")
        key_type, blob = host_key.with_suffix(".pub").read_text().split()[:2]
        yield SftpHost(port, f"{key_type} {blob}", client_key, root)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until sshd accepts connections; it failing to start fails with its log."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited {process.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within 10 s: {log.read_text()}")


@dataclass
class Gate:
    """A TCP forwarder on 127.0.0.1 in front of a server: open, it relays both ways;
    shut, it takes connections and says nothing (a node blackholed at the SSH banner)."""

    port: int
    target: int
    open: threading.Event = field(default_factory=threading.Event)

    def relay(self, client: socket.socket) -> None:
        if not self.open.is_set():
            # Hold the connection silent until the client gives up (its banner timeout).
            with contextlib.suppress(OSError):
                client.settimeout(30)
                while client.recv(4096):
                    pass
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target))
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(src, dst), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    for sock in (src, dst):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def gate(target: int, open: bool = True) -> Iterator[Gate]:
    """A ``Gate`` to the server on loopback port ``target`` (``open`` or shut at first)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(32)
    found = Gate(int(listener.getsockname()[1]), target)
    if open:
        found.open.set()

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=found.relay, args=(client,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield found
    finally:
        listener.close()
