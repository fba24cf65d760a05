"""The signed suspension that makes a disabled difusor's portal show the notice (clause III).

The instruction's format is the wire module's (``prep_iac.wire.Suspension``):
canonical JSON naming the election and the difusor, signed with the IEC's
signing key in the instruction namespace. The host applies
``incoming/suspend-*.json`` only with a valid ``.sig`` next to it, only if it
names that host's difusor and election, and only if it is newer than the last
instruction applied, so resending the same file after a crash is harmless (the
host refuses it as a replay).

Sending is best effort: the difusor was usually disabled because its nodes do
not answer. The ``suspend`` action stays pending in the outbox and is tried
again; the host's own watchdog shows the notice meanwhile (its freshness
statement runs out, since the IEC no longer sends it one).
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import paramiko

from prep_iac.models.difusor import Difusor, Node, Registry
from prep_iac.orchestrate.store import Action, parse_ts
from prep_iac.publish.push import Credentials, connect, upload_signed
from prep_iac.publish.signing import sign_file
from prep_iac.wire import INSTRUCTION_NAMESPACE, SIGNATURE_SUFFIX, Suspension, instruction_name

SftpOpener = Callable[[Difusor, Node], AbstractContextManager[paramiko.SFTPClient]]


def build_suspension(
    election: str, difusor: str, reason: str, issued_at: datetime, signing_key: Path,
    directory: Path,
) -> Path:  # fmt: skip
    """Write and sign a suspension instruction in ``directory``; return the JSON's path.

    + election: the election id the host was deployed for
    + difusor: the difusor the host was deployed as (hosts refuse another's)
    + reason: shown in the host's status and log (Spanish, for the record)
    + issued_at: the decision's time; hosts refuse anything not newer than the last applied
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / instruction_name(issued_at)
    path.write_bytes(Suspension(election, difusor, issued_at, reason).to_bytes())
    sign_file(signing_key, path, INSTRUCTION_NAMESPACE)
    return path


def upload_suspension(sftp: paramiko.SFTPClient, difusor: Difusor, instruction: Path) -> str:
    """Upload an instruction and its signature to ``<publication_path>/incoming/``."""
    signature = instruction.with_name(instruction.name + SIGNATURE_SUFFIX)
    return upload_signed(
        sftp, posixpath.join(difusor.publication_path, "incoming"), instruction.name,
        instruction.read_bytes(), signature.read_bytes(),
    )  # fmt: skip


@contextlib.contextmanager
def _sftp_over_ssh(
    difusor: Difusor, node: Node, credentials: Credentials
) -> Iterator[paramiko.SFTPClient]:
    with connect(node, difusor.sftp_user, credentials) as conn:
        yield conn.sftp()


@dataclass
class SuspensionSender:
    """The outbox's ``suspend`` handler: sign once per decision, upload to every node.

    + registry: where each difusor's nodes and publication path are
    + election: the election id written in the instruction
    + signing_key: the IEC's signing key (not its SSH key)
    + workdir: where signed instructions are kept (they are part of the record)
    + credentials: the IEC's SSH login, used when ``opener`` is not given
    + opener: how to get an SFTP client for a node (tests and drills pass their own)
    """

    registry: Registry
    election: str
    signing_key: Path
    workdir: Path
    credentials: Credentials | None = None
    opener: SftpOpener | None = None

    def __call__(self, action: Action) -> None:
        if action.difusor is None:
            raise ValueError(f"suspend action {action.key} names no difusor")
        difusor = self.registry.get(action.difusor)
        issued_at = parse_ts(action.payload["issued_at"])
        instruction = self.workdir / difusor.id / instruction_name(issued_at)
        if not instruction.is_file():
            instruction = build_suspension(
                self.election, difusor.id, action.payload["reason"], issued_at,
                self.signing_key, instruction.parent,
            )  # fmt: skip
        errors = []
        for node in difusor.nodes:
            try:
                with self._open(difusor, node) as sftp:
                    upload_suspension(sftp, difusor, instruction)
            except Exception as exc:  # every node gets its try; report them all
                errors.append(f"{node.host}:{node.port}: {type(exc).__name__}: {exc}")
        if errors:
            raise RuntimeError("; ".join(errors))

    def _open(self, difusor: Difusor, node: Node) -> AbstractContextManager[paramiko.SFTPClient]:
        if self.opener is not None:
            return self.opener(difusor, node)
        if self.credentials is None:
            raise ValueError("SuspensionSender needs credentials or an opener")
        return _sftp_over_ssh(difusor, node, self.credentials)
