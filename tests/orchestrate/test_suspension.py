"""The signed suspension, uploaded over SFTP the way the orchestrator will, applied by the
real host-side program: the difusor's portal shows the notice."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from prep_iac.hostside import activate_script
from prep_iac.models.difusor import Difusor, Registry
from prep_iac.orchestrate import outbox
from prep_iac.orchestrate.suspension import SuspensionSender, build_suspension
from prep_iac.publish.push import Credentials
from prep_iac.publish.signing import (
    SigningError,
    allowed_signers_line,
    generate_signing_key,
    verify_file,
)
from prep_iac.wire import INSTRUCTION_NAMESPACE, instruction_name

from .helpers import Night
from .servers import SFTP_USER, SftpHost, sftp_server

ELECTION = "coahuila-2018"


@pytest.fixture
def signing_key(tmp_path: Path) -> Path:
    return generate_signing_key(tmp_path / "keys" / "signing")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[SftpHost]:
    with sftp_server(tmp_path) as server:
        (server.root / "incoming").mkdir()
        (server.root / "notice").mkdir()
        (server.root / "notice" / "index.html").write_text("<h1>Publicación suspendida</h1>")
        yield server


def run_host(root: Path, signers: Path, tmp_path: Path) -> list[dict[str, object]]:
    """The host's ``activate.py process``, as its systemd path unit runs it."""
    result = subprocess.run(
        ["/usr/bin/python3", "-I", "-S", str(activate_script()), "process", "--root", str(root),
         "--election", ELECTION, "--difusor", "vanguardia", "--allowed-signers", str(signers),
         "--log", str(tmp_path / "activate.log"), "--config", "/nonexistent"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_instruction_is_signed_in_the_hosts_format(
    night: Night, signing_key: Path, tmp_path: Path
) -> None:
    at = night.start(3)
    path = build_suspension(ELECTION, "vanguardia", "3 periodos", at, signing_key, tmp_path / "out")
    assert path.name == "suspend-20180701T233000000000Z.json" == instruction_name(at)
    data = json.loads(path.read_bytes())
    assert data == {
        "format": "prep-iac-instruction/2", "action": "suspend", "election": ELECTION,
        "difusor": "vanguardia", "issued_at": "2018-07-01T23:30:00+00:00",
        "reason": "3 periodos",
    }  # fmt: skip
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_signers_line(signing_key.with_suffix(".pub")))
    verify_file(signers, path, INSTRUCTION_NAMESPACE)
    # Signed for instructions only: it does not pass as a cut's manifest signature.
    with pytest.raises(SigningError):
        verify_file(signers, path)


def test_suspend_action_uploads_over_sftp_and_the_host_shows_the_notice(
    night: Night, signing_key: Path, host: SftpHost, tmp_path: Path
) -> None:
    for index in range(3):
        night.period(index, {"uadec": True, "vanguardia": False})
    registry = pointed_at(night.registry, "vanguardia", host)
    sender = SuspensionSender(
        registry, ELECTION, signing_key, tmp_path / "instructions",
        credentials=Credentials(host.client_key, connect_timeout=5),
    )  # fmt: skip
    outcomes = outbox.perform_pending(night.store, {"suspend": sender}, lambda: night.start(3))
    assert [(o.action.kind, o.ok) for o in outcomes] == [("suspend", True)]
    names = sorted(p.name for p in (host.root / "incoming").iterdir())
    [instruction] = [n for n in names if n.endswith(".json")]
    assert names == [instruction, instruction + ".sig"]  # no staging leftovers
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_signers_line(signing_key.with_suffix(".pub")))
    [applied] = run_host(host.root, signers, tmp_path)
    assert applied["outcome"] == "suspended"
    assert "3 periodos" in str(applied["reason"])
    assert (host.root / "live").readlink() == Path("notice")
    assert [e.kind for e in night.store.events(kinds=("suspension-sent",))] == ["suspension-sent"]


def test_unreachable_node_keeps_the_suspension_pending(
    night: Night, signing_key: Path, host: SftpHost, tmp_path: Path
) -> None:
    for index in range(3):
        night.period(index, {"uadec": True, "vanguardia": False})
    registry = pointed_at(night.registry, "vanguardia", host, port=1)
    sender = SuspensionSender(
        registry, ELECTION, signing_key, tmp_path / "instructions",
        credentials=Credentials(host.client_key, connect_timeout=2),
    )  # fmt: skip
    [outcome] = outbox.perform_pending(night.store, {"suspend": sender}, lambda: night.start(3))
    assert "127.0.0.1:1" in outcome.error
    assert [a.kind for a in night.store.pending_actions() if a.kind == "suspend"] == ["suspend"]


def pointed_at(
    registry: Registry, difusor: str, host: SftpHost, port: int | None = None
) -> Registry:
    """The registry with ``difusor``'s only node at the loopback SFTP server."""
    node = {"host": "127.0.0.1", "port": port or host.port, "host_key": host.host_key}
    changed = [
        Difusor.model_validate({**d.model_dump(), "nodes": [node], "sftp_user": SFTP_USER})
        if d.id == difusor
        else d
        for d in registry.difusores
    ]
    return registry.model_copy(update={"difusores": changed})
