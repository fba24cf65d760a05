"""NODO-CAIDO's own paths, against real HTTP servers on loopback and a scripted shell:
the node's ``ha_peers`` stand in for an inventory that lists one node, a peer that
does not answer or serves another cut makes the step "not checked" (never a failure
of the fall), and a peer that goes dark with the node fails it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from prep_iac.audit import continuity
from prep_iac.audit.continuity import node_down
from prep_iac.audit.controls import Status
from prep_iac.audit.target import Shell, Target

CUT = "20180701_2100"


class Node(ThreadingHTTPServer):
    """A difusor node's nginx: the page with its cut while ``up``, 503 otherwise."""

    daemon_threads = True

    def __init__(self, address: str, port: int, cut: str) -> None:
        self.cut, self.up, self.requests = cut, True, 0
        super().__init__((address, port), Page)


class Page(BaseHTTPRequestHandler):
    server: Node

    def do_GET(self) -> None:
        self.server.requests += 1
        self.send_response(200 if self.server.up else 503)
        self.send_header("X-Prep-Corte", self.server.cut)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@dataclass
class Out:
    rc: int
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: bytes = b""


@dataclass
class ScriptedShell:
    """The admin's shell on the node: ``systemctl stop/start nginx`` switch its server
    (and ``with_it``, nodes that fall with it)."""

    node: Node
    with_it: list[Node] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def run(self, command: str) -> Out:
        self.commands.append(command)
        for verb, up in (("systemctl stop nginx", False), ("systemctl start nginx", True)):
            if verb in command:
                for node in (self.node, *self.with_it):
                    node.up = up
                return Out(0)
        raise AssertionError(f"unexpected command: {command}")

    def stopped(self) -> bool:
        return any("systemctl stop nginx" in c for c in self.commands)


@pytest.fixture
def nodes() -> Iterator[dict[str, Node]]:
    """Nodes on one port of 127.0.0.1, .2 and .4 (as peers share the node's port);
    nothing listens on 127.0.0.3."""
    first = Node("127.0.0.1", 0, CUT)
    port = first.server_address[1]
    made = {"127.0.0.1": first, "127.0.0.2": Node("127.0.0.2", port, CUT),
            "127.0.0.4": Node("127.0.0.4", port, "20180701_2045")}  # fmt: skip
    threads = [threading.Thread(target=n.serve_forever, kwargs={"poll_interval": 0.05})
               for n in made.values()]  # fmt: skip
    for thread in threads:
        thread.start()
    try:
        yield made
    finally:
        for node in made.values():
            node.shutdown()
            node.server_close()


@pytest.fixture(autouse=True)
def short_fall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(continuity, "FULL_S", 1.0)


def target(nodes: dict[str, Node], *peers: str) -> Target:
    port = nodes["127.0.0.1"].server_address[1]
    return Target(name="uadec-1", address="127.0.0.1", http_port=port, peers=peers)


def test_a_node_listing_its_peers_is_checked_against_them(nodes: dict[str, Node]) -> None:
    shell = ScriptedShell(nodes["127.0.0.1"])
    step = node_down(target(nodes, "127.0.0.2"), Shell(host=shell), [], CUT)
    assert step.status is Status.PASS, step.evidence
    assert shell.stopped() and nodes["127.0.0.1"].up  # stopped, then started again
    polled = nodes["127.0.0.2"].requests - 1  # the first was the check before the fall
    assert polled > 5
    assert step.requests == f"nodo 127.0.0.2: {polled} de {polled} peticiones sirvieron el corte"
    assert step.recovery_s is not None


def test_a_peer_that_goes_dark_with_the_node_fails_the_fall(nodes: dict[str, Node]) -> None:
    shell = ScriptedShell(nodes["127.0.0.1"], with_it=[nodes["127.0.0.2"]])
    step = node_down(target(nodes, "127.0.0.2"), Shell(host=shell), [], CUT)
    assert step.status is Status.FAIL
    assert "otro nodo dejó de servir el corte" in step.evidence


@pytest.mark.parametrize(
    ("peer", "why"),
    [("127.0.0.3", "no responde desde aquí"), ("127.0.0.4", "sirve 20180701_2045")],
    ids=["not-answering", "another-cut"],
)
def test_a_peer_unfit_before_the_fall_makes_it_not_checked_and_nothing_is_stopped(
    nodes: dict[str, Node], peer: str, why: str
) -> None:
    shell = ScriptedShell(nodes["127.0.0.1"])
    step = node_down(target(nodes, "127.0.0.2", peer), Shell(host=shell), [], CUT)
    assert step.status is Status.NOT_CHECKED
    assert step.evidence == [f"nodo {peer}: {why} antes de la prueba (este nodo sirve {CUT})"]
    assert not shell.stopped()


def test_one_node_and_no_peers_is_not_applicable(nodes: dict[str, Node]) -> None:
    shell = ScriptedShell(nodes["127.0.0.1"])
    step = node_down(target(nodes), Shell(host=shell), [], CUT)
    assert step.status is Status.NOT_APPLICABLE
    assert not shell.stopped()
