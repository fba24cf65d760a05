"""Freshness statements on the host, run as the host runs it (system Python, no site-packages).

The IEC vouches every period that a difusor's cut is current; the host keeps
the live cut published while its newest vouch holds and shows the notice when
it runs out. Time is moved the way it passes on a host: the statement's
``received_at`` (or the cut's ``activated_at``) in ``status.json`` is set back,
as it would read after that long without news from the IEC.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prep_iac.publish.freshness import sign_statement
from prep_iac.publish.signing import generate_signing_key, sign_file
from prep_iac.wire import (
    CUT_NAMESPACE,
    FRESHNESS_NAMESPACE,
    INSTRUCTION_NAMESPACE,
    MAX_SIGNED_DOCUMENT,
    SIGNATURE_SUFFIX,
    Statement,
    Suspension,
    canonical_json,
    parse_statement,
    statement_name,
)

from .test_activation import DIFUSOR, ELECTION, SITE, Host, cut_time, make_cut, upload
from .test_activation import host as host  # the fixture

FIRST, SECOND = "20180701_2000", "20180701_2010"
HALF_HOUR = timedelta(minutes=30)


def statement(
    cut_id: str = FIRST, issued: datetime | None = None, valid: timedelta | None = HALF_HOUR,
    difusor: str = DIFUSOR, election: str = ELECTION,
) -> Statement:  # fmt: skip
    at = issued or datetime.now(UTC)
    return Statement(
        election, difusor, cut_id, cut_time(cut_id), at, None if valid is None else at + valid
    )


def send(
    host: Host, what: Statement | bytes, key: Path | None = None,
    namespace: str = FRESHNESS_NAMESPACE, name: str | None = None, signed: bool = True,
) -> Path:  # fmt: skip
    """Put a statement (or raw bytes) and its signature in ``incoming/``, as the IEC does."""
    document = what.to_bytes() if isinstance(what, Statement) else what
    at = what.issued_at if isinstance(what, Statement) else datetime.now(UTC)
    path = host.root / "incoming" / (name or statement_name(at))
    path.write_bytes(document)
    if signed:
        sign_file(key or host.key, path, namespace)
    return path


def age(host: Host, key: str, by: timedelta, field: str | None = None) -> None:
    """Make the host's record read as if ``by`` had passed since ``key`` was written."""
    status = host.status
    record = status if field is None else status[field]
    record[key] = (datetime.fromisoformat(record[key]) - by).isoformat()
    (host.root / "status" / "status.json").write_bytes(canonical_json(status))


@pytest.fixture
def live(host: Host, tmp_path: Path) -> Host:
    """A host serving FIRST, activated an hour ago (past its own age limit)."""
    upload(host, make_cut(tmp_path, FIRST, SITE))
    [activated] = host.run()
    assert activated["outcome"] == "activated"
    age(host, "activated_at", timedelta(hours=1))
    return host


def test_a_held_statement_keeps_the_cut_published_past_the_age_limit(live: Host) -> None:
    send(live, statement())
    [fresh] = live.run()
    assert (fresh["outcome"], fresh["cut_id"], fresh["final"]) == ("fresh", FIRST, False)
    assert live.run("watchdog") == []
    assert live.live_target() == f"releases/{FIRST}"
    assert live.status["freshness"]["cut_id"] == FIRST
    assert not any((live.root / "incoming").iterdir())  # statement and signature consumed


def test_without_a_statement_the_cut_is_vouched_for_by_its_activation_only(live: Host) -> None:
    [stale] = live.run("watchdog")
    assert stale["outcome"] == "stale"
    assert live.live_target() == "notice"


def test_an_expired_statement_shows_the_notice_and_the_next_one_brings_results_back(
    live: Host,
) -> None:
    send(live, statement())
    live.run()
    age(live, "received_at", HALF_HOUR + timedelta(seconds=1), field="freshness")
    [stale] = live.run("watchdog")
    assert stale["outcome"] == "stale"
    assert live.live_target() == "notice"
    assert "suspendida" in live.serve("index.html").decode()
    send(live, statement())
    [back] = live.run()
    assert back["outcome"] == "fresh-again"
    assert live.live_target() == f"releases/{FIRST}"
    assert live.status["state"] == "live"


def test_expiry_counts_on_the_hosts_clock_from_arrival_within_the_clock_tolerance(
    live: Host,
) -> None:
    # The IEC's clock is 25 minutes behind the host's: by the host's clock its statement
    # has 5 minutes left, yet it vouches from its arrival (up to 10 minutes past expiry).
    send(live, statement(issued=datetime.now(UTC) - timedelta(minutes=25)))
    assert live.run()[0]["outcome"] == "fresh"
    assert live.run("watchdog") == []
    assert live.live_target() == f"releases/{FIRST}"


def test_a_statement_held_back_past_its_expiry_is_refused(live: Host) -> None:
    # Raced away from the host by someone with the SFTP key and delivered 20 minutes
    # after it expired: it must not vouch anew for the cut.
    send(live, statement(issued=datetime.now(UTC) - timedelta(minutes=50)))
    [refused] = live.run()
    assert (refused["outcome"], refused["reason"]) == ("rejected", "expired")
    assert "freshness" not in live.status


def test_a_late_statement_vouches_only_for_what_is_left_of_it(live: Host) -> None:
    send(live, statement())
    live.run()
    # As if it had been issued (and expired) 41 minutes earlier than it says, though it
    # arrived just now: its own expiry plus the tolerance ends the vouch.
    for key in ("issued_at", "expires_at"):
        age(live, key, timedelta(minutes=41), field="freshness")
    [stale] = live.run("watchdog")
    assert stale["outcome"] == "stale"


def test_a_statement_naming_a_newer_cut_records_behind_and_keeps_serving(
    live: Host, tmp_path: Path
) -> None:
    send(live, statement(SECOND))
    live.run()
    assert live.status["behind"]["cut_id"] == SECOND
    assert live.run("watchdog") == []
    assert live.live_target() == f"releases/{FIRST}"
    upload(live, make_cut(tmp_path, SECOND, {**SITE, "data/r.json": "[2]"}))
    assert live.run()[0]["outcome"] == "activated"
    assert "behind" not in live.status


def test_a_final_statement_keeps_the_last_cut_published_for_good(live: Host) -> None:
    send(live, statement(valid=None))
    [final] = live.run()
    assert final["final"] is True
    age(live, "received_at", timedelta(days=400), field="freshness")
    assert live.run("watchdog") == []
    assert live.live_target() == f"releases/{FIRST}"
    assert live.status["freshness"]["expires_at"] is None


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unsigned", "unsigned"),
        ("signed for cuts", "bad-signature"),
        ("signed for instructions", "bad-signature"),
        ("foreign key", "bad-signature"),
        ("another difusor", "wrong-difusor"),
        ("another election", "wrong-election"),
        ("not json", "bad-statement"),
        ("final with an expiry", "bad-statement"),
        ("expiring before issued", "bad-statement"),
        ("no offset", "bad-statement"),
        ("oversized", "oversize"),
    ],
)
def test_a_statement_that_is_not_the_iecs_for_this_host_is_refused(
    live: Host, tmp_path: Path, case: str, reason: str
) -> None:
    good = statement()
    document: Statement | bytes = good
    key, namespace, signed = live.key, FRESHNESS_NAMESPACE, True
    data: dict[str, Any] = good.to_json()
    if case == "unsigned":
        signed = False
    elif case == "signed for cuts":
        namespace = CUT_NAMESPACE
    elif case == "signed for instructions":
        namespace = INSTRUCTION_NAMESPACE
    elif case == "foreign key":
        key = generate_signing_key(tmp_path / "thief")
    elif case == "another difusor":
        document = statement(difusor="vanguardia")
    elif case == "another election":
        document = statement(election="coahuila-2017")
    elif case == "not json":
        document = b"{not json"
    elif case == "final with an expiry":
        document = canonical_json({**data, "final": True})
    elif case == "expiring before issued":
        document = canonical_json({**data, "expires_at": data["issued_at"]})
    elif case == "no offset":
        document = canonical_json({**data, "issued_at": "2018-07-01T20:00:00"})
    elif case == "oversized":
        document = canonical_json({**data, "pad": "x" * MAX_SIGNED_DOCUMENT})
    send(live, document, key=key, namespace=namespace, signed=signed)
    [refused] = live.run()
    assert (refused["outcome"], refused["reason"]) == ("rejected", reason), refused
    assert "freshness" not in live.status
    assert not any((live.root / "incoming").iterdir())
    logged = [json.loads(line) for line in live.log.read_text().splitlines()]
    assert logged[-1]["reason"] == reason


def test_an_older_or_repeated_statement_is_refused_as_a_replay(live: Host) -> None:
    now = datetime.now(UTC)
    send(live, statement(issued=now))
    live.run()
    send(live, statement(issued=now), name="fresh-again.json")
    send(live, statement(issued=now - timedelta(minutes=10)), name="fresh-older.json")
    results = live.run()
    assert [(r["outcome"], r["reason"]) for r in results] == [("rejected", "replay")] * 2
    assert live.status["freshness"]["issued_at"] == now.isoformat()


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_a_statement_upload_that_is_not_a_regular_file_is_refused_without_blocking(
    live: Host, tmp_path: Path, kind: str
) -> None:
    path = live.root / "incoming" / statement_name(datetime.now(UTC))
    secret = tmp_path / "root-only"
    secret.write_bytes(statement().to_bytes())
    if kind == "symlink":
        path.symlink_to(secret)
    elif kind == "fifo":
        os.mkfifo(path)  # a reader that blocked here would stop activation and the watchdog
    else:
        path.mkdir()
    path.with_name(path.name + SIGNATURE_SUFFIX).write_bytes(b"")
    [refused] = live.run()
    assert (refused["outcome"], refused["reason"]) == ("rejected", "bad-upload")
    assert "freshness" not in live.status


def test_a_statement_never_lifts_a_suspension_and_a_suspension_waiting_with_it_wins(
    live: Host,
) -> None:
    now = datetime.now(UTC)
    order = live.root / "incoming" / "suspend-1.json"
    order.write_bytes(Suspension(ELECTION, DIFUSOR, now, "3 periodos").to_bytes())
    sign_file(live.key, order, INSTRUCTION_NAMESPACE)
    send(live, statement(issued=now))
    results = live.run()
    assert [r["outcome"] for r in results] == ["fresh", "suspended"]
    send(live, statement(issued=now + timedelta(seconds=1)))
    assert live.run()[0]["outcome"] == "fresh"
    assert live.live_target() == "notice"
    assert live.status["state"] == "suspended"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"difusor": "vanguardia"}, "wrong-difusor"),
        ({"election": "coahuila-2017"}, "wrong-election"),
    ],
)
def test_a_suspension_for_another_difusor_or_election_is_refused(
    live: Host, change: dict[str, str], reason: str
) -> None:
    send(live, statement())
    live.run()
    order = live.root / "incoming" / "suspend-1.json"
    data = {**Suspension(ELECTION, DIFUSOR, datetime.now(UTC), "x").to_json(), **change}
    order.write_bytes(canonical_json(data))
    sign_file(live.key, order, INSTRUCTION_NAMESPACE)
    [refused] = live.run()
    assert (refused["outcome"], refused["reason"]) == ("rejected", reason)
    assert live.live_target() == f"releases/{FIRST}"


def test_a_suspension_signed_as_a_cut_is_refused(live: Host) -> None:
    order = live.root / "incoming" / "suspend-1.json"
    order.write_bytes(Suspension(ELECTION, DIFUSOR, datetime.now(UTC), "x").to_bytes())
    sign_file(live.key, order)  # the manifests' namespace
    [refused] = live.run()
    assert (refused["outcome"], refused["reason"]) == ("rejected", "bad-signature")
    assert live.live_target() == f"releases/{FIRST}"


def test_a_host_deployed_without_its_difusor_id_accepts_no_statement(
    live: Host, tmp_path: Path
) -> None:
    config = tmp_path / "activate.json"
    config.write_text(json.dumps({"root": str(live.root), "election": ELECTION}))
    send(live, statement())
    [refused] = live.run("process", difusor=None)
    assert refused["reason"] == "no-difusor-id"


def test_a_statement_is_well_under_a_kilobyte_on_the_wire(tmp_path: Path) -> None:
    key = generate_signing_key(tmp_path / "iec")
    long_id = "d" * 63  # the longest difusor id the registry accepts
    signed = sign_statement(statement(difusor=long_id), key)
    assert signed.size < 1024, signed.size
    assert parse_statement(signed.document, ELECTION, long_id).difusor == long_id


def test_a_signature_whose_document_never_came_is_removed_once_an_hour_old(live: Host) -> None:
    old = live.root / "incoming" / "fresh-old.json.sig"
    new = live.root / "incoming" / "fresh-new.json.sig"
    for path in (old, new):
        path.write_bytes(b"-----BEGIN SSH SIGNATURE-----")
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1, minutes=1)).timestamp()
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert live.run() == []
    assert sorted(p.name for p in (live.root / "incoming").iterdir()) == [new.name]
