"""Freshness statements: the IEC vouches, every period, that a difusor's cut is current.

A statement (``prep_iac.wire.Statement``) names the election, the difusor,
the cut the IEC says is current, when it was issued and until when it holds:
``issued_at + (strike limit + 1) × period`` (``validity``: it runs out when the
IEC would disable the difusor, not a period earlier; in real seconds, so a
drill's compressed periods give a compressed expiry), or no expiry once the PREP has closed or
the publication window has ended (``final``). It is signed in its own
namespace (``prep-iac-freshness``), so neither a cut's nor an instruction's
signature can pass for one, and it is a few hundred bytes on the wire.

The host keeps its live cut published while it holds an unexpired statement
(``prep_iac.hostside.activate``); the orchestrator sends one to every node
of every active difusor every period and judges the period by what the nodes
confirm, so a dead host is found in a quiet hour too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from prep_iac.models.election import Election
from prep_iac.publish.signing import SigningError, sign_bytes
from prep_iac.wire import FRESHNESS_NAMESPACE, Statement


@dataclass(frozen=True)
class SignedStatement:
    """A statement, its canonical bytes and the IEC's detached signature over them."""

    statement: Statement
    document: bytes
    signature: bytes

    @property
    def size(self) -> int:
        """Bytes it takes on the wire (the JSON and its signature)."""
        return len(self.document) + len(self.signature)


def sign_statement(statement: Statement, signing_key: Path) -> SignedStatement:
    """Sign ``statement`` with the IEC's signing key (``SigningError`` if it cannot)."""
    document = statement.to_bytes()
    return SignedStatement(
        statement, document, sign_bytes(signing_key, document, FRESHNESS_NAMESPACE)
    )


def validity(election: Election, speed: float = 1.0) -> timedelta:
    """How long a statement vouches (``speed``: a drill's, on the real clock): the rest of
    the period it is issued in plus strike limit × period, i.e. ``(strike_limit + 1) ×
    period``. A difusor last confirmed in period k is disabled at the end of period
    k + strike_limit; its host's vouch runs out right then, never before: a difusor
    that fails twice and recovers in the third period never shows the notice."""
    return election.period * (election.strike_limit + 1) / speed


def sign_statements(
    election: str,
    difusores: Iterable[str],
    cut_id: str,
    cut_time: datetime,
    issued_at: datetime,
    valid_for: timedelta | None,
    signing_key: Path,
) -> tuple[dict[str, SignedStatement], dict[str, str]]:
    """One signed statement per difusor (``valid_for`` None: final, no expiry), and the
    difusores whose statement could not be signed, with why."""
    expires = None if valid_for is None else issued_at + valid_for
    signed: dict[str, SignedStatement] = {}
    failed: dict[str, str] = {}
    for difusor in difusores:
        statement = Statement(election, difusor, cut_id, cut_time, issued_at, expires)
        try:
            signed[difusor] = sign_statement(statement, signing_key)
        except SigningError as exc:
            failed[difusor] = str(exc)
    return signed, failed
