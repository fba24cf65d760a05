"""Real servers on 127.0.0.1 for the tests: SMTP (aiosmtpd), HTTP webhooks, S3 (moto), SFTP."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)
from paramiko.sftp import SFTP_OK

# The SMTP server lives in the library: the drill uses it too.
from prep_iac.orchestrate.mailbox import Mailbox as Mailbox
from prep_iac.orchestrate.mailbox import free_port
from prep_iac.orchestrate.mailbox import smtp_server as smtp_server


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


class _Handle(paramiko.SFTPHandle):
    # paramiko's SFTPHandle reads and writes through these two attributes.
    readfile: IO[Any]
    writefile: IO[Any]

    def stat(self) -> paramiko.SFTPAttributes | int:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))


def _errno(exc: OSError) -> int:
    return int(paramiko.SFTPServer.convert_errno(exc.errno or errno.EIO))


class _ChrootSFTP(paramiko.SFTPServerInterface):
    """Enough of an SFTP server for uploads, confined to one directory."""

    root = Path("/nonexistent")

    def _real(self, path: str) -> str:
        return str(self.root) + self.canonicalize(path)

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> _Handle | int:
        try:
            fd = os.open(self._real(path), flags, 0o644)
        except OSError as exc:
            return _errno(exc)
        mode = "wb" if flags & (os.O_WRONLY | os.O_RDWR) else "rb"
        handle = _Handle(flags)
        handle.readfile = handle.writefile = os.fdopen(fd, mode)
        return handle

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(Path(self._real(path)).stat())
        except OSError as exc:
            return _errno(exc)

    lstat = stat

    def rename(self, oldpath: str, newpath: str) -> int:
        try:
            Path(self._real(oldpath)).rename(self._real(newpath))
        except OSError as exc:
            return _errno(exc)
        return SFTP_OK

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK

    # Directories and removal, for the push's staged uploads (runner tests).
    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        return self._call(os.mkdir, self._real(path))

    def rmdir(self, path: str) -> int:
        return self._call(os.rmdir, self._real(path))

    def remove(self, path: str) -> int:
        return self._call(os.remove, self._real(path))

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        try:
            entries = list(os.scandir(self._real(path)))
        except OSError as exc:
            return _errno(exc)
        return [
            paramiko.SFTPAttributes.from_stat(entry.stat(follow_symlinks=False), entry.name)
            for entry in entries
        ]

    @staticmethod
    def _call(func: Any, *args: str) -> int:
        try:
            func(*args)
        except OSError as exc:
            return _errno(exc)
        return SFTP_OK


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


@contextmanager
def sftp_server(directory: Path, client_key: Path | None = None) -> Iterator[SftpHost]:
    """paramiko's server side on a loopback socket; accepts only ``client_key`` (default:
    one generated here)."""
    host_key = paramiko.Ed25519Key.from_private_key_file(str(_keygen(directory / "host_key")))
    client_key = client_key or _keygen(directory / "client_key")
    allowed = paramiko.Ed25519Key.from_private_key_file(str(client_key))
    root = directory / "sftp-root"
    root.mkdir()
    chroot = type("Chroot", (_ChrootSFTP,), {"root": root})

    class Server(paramiko.ServerInterface):
        def get_allowed_auths(self, username: str) -> str:
            return "publickey"

        def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
            ok = key.get_base64() == allowed.get_base64()
            return AUTH_SUCCESSFUL if ok else AUTH_FAILED

        def check_channel_request(self, kind: str, chanid: int) -> int:
            if kind == "session":
                return OPEN_SUCCEEDED
            return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(sock)
            transport.add_server_key(host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, chroot)
            transport.start_server(server=Server())
            transports.append(transport)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield SftpHost(
            int(listener.getsockname()[1]),
            f"{host_key.get_name()} {host_key.get_base64()}",
            client_key,
            root,
        )
    finally:
        listener.close()
        for transport in transports:
            transport.close()


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
