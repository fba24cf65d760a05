"""A push to a server that takes the connection and then stalls gives its worker back
within the connect timeout: after the banner (no key exchange), after authentication
(no SFTP channel). Paramiko's defaults would hold the worker 15 s and an hour."""

from __future__ import annotations

import base64
import shutil
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
import pytest
from paramiko.common import AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

from prep_iac.cuts import generate_night
from prep_iac.models.difusor import Difusor, Registry
from prep_iac.models.loading import load_model
from prep_iac.presets import load_election
from prep_iac.publish.prepare import PreparedCut, prepare_cut
from prep_iac.publish.push import Credentials, push_node
from prep_iac.publish.signing import generate_signing_key

ELECTION = load_election("coahuila-2018")
FIXTURES = Path(__file__).parent.parent / "fixtures"
CONNECT_TIMEOUT = 1.0
# Far below paramiko's own waits (15 s key exchange, 3600 s channel), above a loaded
# machine's scheduling noise.
BOUND_S = 6.0


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> PreparedCut:
    base = tmp_path_factory.mktemp("stall")
    [info] = generate_night(ELECTION, base / "full", cuts=1, seed=3)
    small = base / "small" / info.id
    small.mkdir(parents=True)
    for name in (f"{info.id}_PREP_AYUN_COAH.zip", "corte.json", "index.html"):
        shutil.copyfile(Path(info.path) / name, small / name)
    key = generate_signing_key(base / "keys" / "signing")
    return prepare_cut(small, ELECTION, key, base / "work")


@pytest.fixture(scope="module")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("iec") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


class NeverOpens(paramiko.ServerInterface):
    """Accepts the IEC's key, then never answers a channel request (until released)."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        self.release.wait(60)  # the transport thread hangs here: no answer to the open
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


@contextmanager
def stalling_server(mode: str) -> Iterator[tuple[int, paramiko.PKey]]:
    """A loopback SSH server that stalls: ``banner`` (says its banner, then nothing) or
    ``channel`` (authenticates, never opens a channel). Yields its port and host key."""
    host_key = paramiko.RSAKey.generate(2048)
    release = threading.Event()

    class Stall(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            if mode == "banner":
                self.request.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
                release.wait(60)  # reads nothing, answers nothing
                return
            transport = paramiko.Transport(self.request)
            transport.add_server_key(host_key)
            transport.start_server(server=NeverOpens(release))
            release.wait(60)
            transport.close()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Stall)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1]), host_key
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def difusor_at(port: int, host_key: paramiko.PKey) -> Difusor:
    """The test registry's uadec, its one node at the stalling server."""
    base = load_model(Registry, FIXTURES / "registry-ok.yaml").get("uadec")
    node = {"host": "127.0.0.1", "port": port,
            "host_key": {"type": host_key.get_name(),
                         "key": base64.b64encode(host_key.asbytes()).decode()}}  # fmt: skip
    return Difusor.model_validate({**base.model_dump(), "nodes": [node]})


@pytest.mark.parametrize(
    ("mode", "error_class"), [("banner", "ssh"), ("channel", "ssh")], ids=["kex", "channel"]
)
def test_a_stalling_server_gives_the_worker_back_within_the_connect_timeout(
    cut: PreparedCut, client_key: Path, mode: str, error_class: str
) -> None:
    with stalling_server(mode) as (port, host_key):
        difusor = difusor_at(port, host_key)
        credentials = Credentials(client_key, connect_timeout=CONNECT_TIMEOUT)
        began = time.monotonic()
        result = push_node(cut, difusor, difusor.nodes[0], credentials, 60.0, fail_fast=True)
        took = time.monotonic() - began
    assert (result.outcome, result.attempts) == ("failed", 1)
    assert result.error_class in (error_class, "timeout"), result.error
    assert took < BOUND_S, f"{mode}: the worker was held {took:.1f} s ({result.error})"


def test_a_node_picked_up_after_the_deadline_is_not_tried(
    cut: PreparedCut, client_key: Path
) -> None:
    with stalling_server("banner") as (port, host_key):
        difusor = difusor_at(port, host_key)
        credentials = Credentials(client_key, connect_timeout=CONNECT_TIMEOUT)
        result = push_node(
            cut, difusor, difusor.nodes[0], credentials, 60.0, deadline=time.monotonic() - 0.1
        )
    assert (result.outcome, result.attempts, result.error_class) == ("untried", 0, "timeout")
    assert "no time left" in result.error
