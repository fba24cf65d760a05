"""The wire formats between the IEC and difusor hosts: the one module both ends import.

Standard library only: the difusor deploy installs this file on each host
beside the activation program (``prep_iac/hostside/activate.py``), and the
IEC's publisher and orchestrator import it, so both ends agree by construction.

What crosses the wire, all canonical JSON (``canonical_json``) signed with
``ssh-keygen -Y sign`` by the IEC's signing key, each kind in its own
signature namespace so that a signature made for one can never pass for another:

- the **manifest** of a cut (``MANIFEST_FORMAT``, namespace ``prep-iac-cut``):
  election, cut id and time, every file's path, size and SHA-256; sent as a
  **patch** (``PATCH_FORMAT``) against the host's live manifest;
- the **freshness statement** (``FRESHNESS_FORMAT``, ``prep-iac-freshness``),
  sent every period to every node: "for difusor D of election E, the current
  cut is C, issued at T, valid until X" (or ``final``: no expiry, the PREP has
  closed). The host keeps its live cut published while it holds an unexpired
  statement; TUF's *timestamp* role plays the same part against freeze attacks;
- the **instruction** (``INSTRUCTION_FORMAT``, ``prep-iac-instruction``): a
  suspension for difusor D of election E (clause III's "aviso").

The host answers in ``status/status.json`` (``STATUS_*`` keys, ``State``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath
from typing import Any, Final

UTC: Final = timezone.utc  # noqa: UP017 (older host Pythons lack datetime.UTC)

MANIFEST_FORMAT: Final = "prep-iac-manifest/1"
PATCH_FORMAT: Final = "prep-iac-manifest-patch/1"
FRESHNESS_FORMAT: Final = "prep-iac-freshness/1"
INSTRUCTION_FORMAT: Final = "prep-iac-instruction/2"  # /2: bound to the difusor

CUT_NAMESPACE: Final = "prep-iac-cut"
FRESHNESS_NAMESPACE: Final = "prep-iac-freshness"
INSTRUCTION_NAMESPACE: Final = "prep-iac-instruction"
NAMESPACES: Final = (CUT_NAMESPACE, FRESHNESS_NAMESPACE, INSTRUCTION_NAMESPACE)
SIGNER_IDENTITY: Final = "iec"

MANIFEST_NAME: Final = "manifest.json"
PATCH_NAME: Final = "manifest-patch.json.gz"
BUNDLE_NAME: Final = "bundle.tar"
SIGNATURE_SUFFIX: Final = ".sig"
PART_SUFFIX: Final = ".part"
STATEMENT_PREFIX: Final = "fresh-"
INSTRUCTION_PREFIX: Final = "suspend-"
CUT_ID: Final = re.compile(r"^[0-9]{8}_[0-9]{4}b?$")
DIFUSOR_ID: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# A statement is a few hundred bytes; anything bigger is not one.
MAX_SIGNED_DOCUMENT: Final = 4096


class State:
    """``status.json``'s ``state``: what ``live`` shows."""

    LIVE: Final = "live"  # the last activated cut, vouched for
    STALE: Final = "stale"  # the notice: the newest statement expired
    SUSPENDED: Final = "suspended"  # the notice: a signed suspension


class Rejected(ValueError):
    """A document that must not take effect; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def canonical_json(data: Any) -> bytes:
    """The exact bytes that are signed: sorted keys, no spaces, UTF-8, newline."""
    return (
        json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    ).encode()


def iso(when: datetime) -> str:
    """A UTC instant as the wire writes it (microseconds kept: statements are ordered by it)."""
    return when.astimezone(UTC).isoformat()


def instant(text: object) -> datetime:
    """An ISO 8601 time with offset; anything else sorts before every real time."""
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def safe_relpath(text: str) -> PurePosixPath:
    """A manifest path that stays inside the release: relative, no '..', no empty parts."""
    path = PurePosixPath(text)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
        raise Rejected("unsafe-path", f"manifest path {text!r} escapes the release")
    return path


def apply_patch(base: dict[str, Any] | None, patch: dict[str, Any]) -> dict[str, Any]:
    """The full manifest a patch describes: ``base``'s entries, minus removed, plus changed.

    Entries come out sorted by path, the canonical order the IEC signs.
    """
    header, changed, removed = patch.get("header"), patch.get("files"), patch.get("removed")
    if (
        not isinstance(header, dict)
        or "files" in header
        or not isinstance(changed, list)
        or not isinstance(removed, list)
        or (base is None and removed)
    ):
        raise Rejected("bad-manifest", "malformed manifest patch")
    entries: dict[str, Any] = {}
    if base is not None:
        entries = {str(f["path"]): f for f in base.get("files", []) if isinstance(f, dict)}
    for path in removed:
        if entries.pop(str(path), None) is None:
            raise Rejected("bad-manifest", f"patch removes {path!r}, which the base lacks")
    for entry in changed:
        if not isinstance(entry, dict) or set(entry) != {"path", "size", "sha256"}:
            raise Rejected("bad-manifest", f"malformed manifest entry {entry!r}")
        entries[str(entry["path"])] = entry
    return {**header, "files": [entries[p] for p in sorted(entries)]}


def _stamp(when: datetime) -> str:
    return f"{when.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def statement_name(issued_at: datetime) -> str:
    """``fresh-20180701T183000123456Z.json``: unique per statement, sorts in time order."""
    return f"{STATEMENT_PREFIX}{_stamp(issued_at)}.json"


def instruction_name(issued_at: datetime) -> str:
    """``suspend-20180701T183000123456Z.json``: unique per decision, sorts in time order."""
    return f"{INSTRUCTION_PREFIX}{_stamp(issued_at)}.json"


@dataclass(frozen=True)
class Statement:
    """A freshness statement: the IEC vouches that ``cut_id`` is current for one difusor.

    ``expires_at`` None with ``final`` means the PREP has closed (or the
    window ended): the cut stays published with no expiry.
    """

    election: str
    difusor: str
    cut_id: str
    cut_time: datetime
    issued_at: datetime
    expires_at: datetime | None

    @property
    def final(self) -> bool:
        return self.expires_at is None

    @property
    def validity(self) -> timedelta | None:
        """How long the statement vouches, counted by the host from when it received it."""
        return None if self.expires_at is None else self.expires_at - self.issued_at

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FRESHNESS_FORMAT,
            "election": self.election,
            "difusor": self.difusor,
            "cut_id": self.cut_id,
            "cut_time": self.cut_time.isoformat(),
            "issued_at": iso(self.issued_at),
            "expires_at": None if self.expires_at is None else iso(self.expires_at),
            "final": self.final,
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())


@dataclass(frozen=True)
class Suspension:
    """A signed instruction: difusor ``difusor`` of ``election`` shows the notice."""

    election: str
    difusor: str
    issued_at: datetime
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": INSTRUCTION_FORMAT,
            "action": "suspend",
            "election": self.election,
            "difusor": self.difusor,
            "issued_at": iso(self.issued_at),
            "reason": self.reason,
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())


def _document(data: bytes, kind: str) -> dict[str, Any]:
    if len(data) > MAX_SIGNED_DOCUMENT:
        raise Rejected("oversize", f"{kind} of {len(data)} bytes (at most {MAX_SIGNED_DOCUMENT})")
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise Rejected(f"bad-{kind}", f"not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise Rejected(f"bad-{kind}", "not a JSON object")
    return parsed


def _time(data: dict[str, Any], key: str, kind: str) -> datetime:
    try:
        value = datetime.fromisoformat(str(data[key]))
    except (KeyError, ValueError):
        raise Rejected(f"bad-{kind}", f"{key} {data.get(key)!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise Rejected(f"bad-{kind}", f"{key} {data[key]!r} has no UTC offset")
    return value


def _bound(data: dict[str, Any], election: str, difusor: str) -> None:
    """A signed document for another election or another difusor is not for this host."""
    if data.get("election") != election:
        raise Rejected("wrong-election", f"for election {data.get('election')!r}, not {election!r}")
    if data.get("difusor") != difusor:
        raise Rejected("wrong-difusor", f"for difusor {data.get('difusor')!r}, not {difusor!r}")


def parse_statement(data: bytes, election: str, difusor: str) -> Statement:
    """A signed statement's bytes, checked for this host's election and difusor."""
    doc = _document(data, "statement")
    if doc.get("format") != FRESHNESS_FORMAT:
        raise Rejected("bad-statement", f"format {doc.get('format')!r} is not {FRESHNESS_FORMAT}")
    _bound(doc, election, difusor)
    cut_id = str(doc.get("cut_id"))
    if not CUT_ID.match(cut_id):
        raise Rejected("bad-statement", f"cut_id {cut_id!r} is not a cut id")
    issued = _time(doc, "issued_at", "statement")
    expires = None if doc.get("expires_at") is None else _time(doc, "expires_at", "statement")
    if (expires is None) != (doc.get("final") is True):
        raise Rejected("bad-statement", "a statement is final exactly when it has no expiry")
    if expires is not None and expires <= issued:
        raise Rejected("bad-statement", "expires_at is not after issued_at")
    return Statement(
        election, difusor, cut_id, _time(doc, "cut_time", "statement"), issued, expires
    )


def parse_suspension(data: bytes, election: str, difusor: str) -> Suspension:
    """A signed instruction's bytes, checked for this host's election and difusor."""
    doc = _document(data, "instruction")
    if doc.get("format") != INSTRUCTION_FORMAT or doc.get("action") != "suspend":
        raise Rejected("bad-instruction", f"not a {INSTRUCTION_FORMAT} suspension")
    _bound(doc, election, difusor)
    return Suspension(
        election, difusor, _time(doc, "issued_at", "instruction"), str(doc.get("reason", ""))
    )


# -- the host's answer: status/status.json -------------------------------------------


def is_live(status: dict[str, Any] | None, cut_id: str) -> bool:
    """Whether a host's status says ``cut_id`` is what it serves now."""
    return (
        status is not None and status.get("cut_id") == cut_id and status.get("state") == State.LIVE
    )


def vouched_by(status: dict[str, Any] | None) -> str | None:
    """The ``issued_at`` of the newest freshness statement the host holds, if any."""
    fresh = (status or {}).get("freshness")
    return str(fresh["issued_at"]) if isinstance(fresh, dict) and "issued_at" in fresh else None


def sequence(status: dict[str, Any] | None) -> int:
    """The host's count of recorded outcomes (0 before the first)."""
    try:
        return int((status or {}).get("sequence", 0))
    except (TypeError, ValueError):
        return 0
