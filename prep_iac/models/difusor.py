"""The IEC's registry of difusores: who they are, whom to call, where to push.

A registry file is what the IEC operator edits; it is validated as a whole so
that two difusores can never share an id or a publication target by mistake.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)

from prep_iac.models.loading import Loc, fail_fields

SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
)


class DifusorStatus(StrEnum):
    """Where a difusor stands with the IEC."""

    ACTIVE = "active"  # receives every cut
    DISABLED = "disabled"  # clause III: transmission stopped, link disabled
    PENDING = "pending"  # registered, not yet cleared to receive cuts


class TechnicalContact(BaseModel):
    """The technical staff member the IEC coordinates with (clause V)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    role: str = Field(min_length=1, description="Cargo.")
    phone: str = Field(pattern=r"^\+?[0-9 ()\-]{7,}(\s*(ext\.?|x)\s*[0-9, ]+)?$")
    email: EmailStr
    hours: str = Field(min_length=1, description="Horario, e.g. '24 h del 1 al 10 de julio'.")


class HostKey(BaseModel):
    """A pinned SSH host key, as in a ``known_hosts`` line without the host."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    key: str

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in SSH_KEY_TYPES:
            raise ValueError(f"one of {', '.join(SSH_KEY_TYPES)}")
        return value

    @field_validator("key")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError(
                "the base64 key blob from the host's /etc/ssh/ssh_host_*_key.pub"
            ) from None
        return value

    @classmethod
    def parse(cls, line: str) -> HostKey:
        """Read ``"ssh-ed25519 AAAA... comment"``."""
        parts = line.split()
        if len(parts) < 2:
            raise ValueError(f"expected '<type> <base64>' in host key line {line!r}")
        return cls(type=parts[0], key=parts[1])

    def __str__(self) -> str:
        return f"{self.type} {self.key}"


class Node(BaseModel):
    """One publication server of a difusor (clause II.a: preferably several, for HA)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1, description="DNS name or address the IEC connects to.")
    port: int = Field(default=22, ge=1, le=65535)
    host_key: HostKey = Field(description="Pinned SSH host key; any other key fails the push.")

    @field_validator("host_key", mode="before")
    @classmethod
    def _from_line(cls, value: object) -> object:
        return HostKey.parse(value) if isinstance(value, str) else value


class Difusor(BaseModel):
    """An official difusor as the IEC registers it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Short slug, e.g. 'uadec'.")
    legal_name: str = Field(min_length=1, description="Razón social.")
    portal_url: HttpUrl = Field(description="Public page where the PREP is shown (clause I.6).")
    logo: str = Field(min_length=1, description="Logo file, relative to the registry (clause I.7).")
    contact: TechnicalContact
    nodes: list[Node] = Field(min_length=1)
    sftp_user: str = Field(default="iec", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    publication_path: str = Field(
        default="/", description="Path inside the SFTP account's chroot where cuts are uploaded."
    )
    status: DifusorStatus = DifusorStatus.ACTIVE

    @field_validator("publication_path")
    @classmethod
    def _absolute_clean(cls, value: str) -> str:
        path = PurePosixPath(value)
        if not path.is_absolute() or ".." in path.parts:
            raise ValueError("an absolute path without '..', e.g. '/' or '/upload'")
        return str(path)

    @model_validator(mode="after")
    def _distinct_nodes(self) -> Difusor:
        first: dict[tuple[str, int], int] = {}
        problems: list[tuple[Loc, object, str]] = []
        for i, node in enumerate(self.nodes):
            where = first.setdefault((node.host, node.port), i)
            if where != i:
                problems.append(
                    (
                        ("nodes", i, "host"),
                        f"{node.host}:{node.port}",
                        f"a node not already listed as nodes[{where}]",
                    )
                )
        fail_fields(type(self).__name__, problems)
        return self


class Registry(BaseModel):
    """The IEC's list of difusores for one election."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    election: str = Field(description="Election preset id or path, e.g. coahuila-2018.")
    difusores: list[Difusor] = Field(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _unique(cls, data: Any, handler: ModelWrapValidatorHandler[Registry]) -> Registry:
        # Checked on the raw entries so that a duplicate id is reported even
        # when other fields of the file are wrong too.
        problems = _duplicates(data.get("difusores") if isinstance(data, Mapping) else None)
        try:
            registry = handler(data)
        except ValidationError as exc:
            fail_fields(cls.__name__, problems, also=exc)
            raise
        fail_fields(cls.__name__, problems)
        return registry

    def get(self, difusor_id: str) -> Difusor:
        for difusor in self.difusores:
            if difusor.id == difusor_id:
                return difusor
        raise KeyError(f"no difusor '{difusor_id}' in the registry")


def _duplicates(entries: object) -> list[tuple[Loc, object, str]]:
    """Repeated difusor ids and shared publication targets among raw registry entries."""
    if not isinstance(entries, list):
        return []
    first_id: dict[object, int] = {}
    first_target: dict[tuple[object, ...], int] = {}
    problems: list[tuple[Loc, object, str]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            continue
        ident = entry.get("id")
        where = first_id.setdefault(ident, i) if isinstance(ident, str) else i
        if where != i:
            problems.append(
                (("difusores", i, "id"), ident, f"a unique id (difusores[{where}] has it)")
            )
        user = entry.get("sftp_user", "iec")
        path = str(PurePosixPath(str(entry.get("publication_path", "/"))))
        nodes = entry.get("nodes")
        for j, node in enumerate(nodes if isinstance(nodes, list) else []):
            if not isinstance(node, Mapping):
                continue
            target = (node.get("host"), node.get("port", 22), user, path)
            owner = first_target.setdefault(target, i)
            if owner != i:
                problems.append(
                    (
                        ("difusores", i, "nodes", j),
                        f"{user}@{target[0]}:{target[1]}{path}",
                        f"a publication target of its own (difusores[{owner}] pushes there)",
                    )
                )
    return problems
