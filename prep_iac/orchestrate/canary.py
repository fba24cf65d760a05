"""The IEC's canaries: SSH targets the IEC itself controls, checked every period.

A canary is reached through the same path as the difusores (the IEC's SSH key,
its source address, the pinned host key, SFTP), so when every canary fails
the fault is on the IEC's side (its uplink, its source address, its key) and
the period's failures are nobody's strike (``strikes.close_period``'s
``canary_failed``). MirrorManager2 uses its canary crawls the same way: they
never disable a mirror.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from prep_iac.models.difusor import Node
from prep_iac.publish.push import Credentials, PushFailure, connect


class Canary(BaseModel):
    """One target the IEC controls: a node, the account to log in as, a path to read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="For the record and the operators' notice.")
    node: Node
    user: str = Field(default="iec", min_length=1, description="The SFTP account.")
    path: str = Field(default="/", description="Any path the account can stat.")


def probe(canaries: Sequence[Canary], credentials: Credentials) -> str | None:
    """Why every canary failed (each named with its error), or None if any answered
    (or none is configured): only all of them down is the IEC's own fault."""
    errors = []
    for canary in canaries:
        try:
            with connect(canary.node, canary.user, credentials) as conn:
                conn.sftp().stat(canary.path)
        except (PushFailure, OSError, EOFError) as exc:
            errors.append(f"{canary.name}: {exc}")
            continue
        return None
    return "; ".join(errors) or None
