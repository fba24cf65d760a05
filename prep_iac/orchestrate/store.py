"""The orchestrator's state in SQLite: the only module that knows SQL.

One file, WAL journal, ``synchronous=FULL``: a committed transaction survives
kill -9 and power loss, and an interrupted one leaves nothing behind. Callers
group every state change (attempt records, a verdict, the strike count, the
status, events and pending actions) in one ``transaction()``, so a crash at any
point leaves the state before or after the change, never half of it.

Times are stored as UTC ISO 8601 text with microseconds, so that text order
is time order. The schema is versioned with ``PRAGMA user_version``; each
migration runs in its own transaction. The SQL stays close to the standard so
that a PostgreSQL store for a standby orchestrator can implement the same API.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prep_iac.models.difusor import DifusorStatus, Registry

# Each entry upgrades the schema by one version; never edit a released one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE difusor_state (
            difusor TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'pending')),
            strikes INTEGER NOT NULL DEFAULT 0 CHECK (strikes >= 0),
            manual INTEGER NOT NULL DEFAULT 0,
            last_cut_id TEXT,
            last_cut_time TEXT,
            last_confirmed_at TEXT,
            last_error_class TEXT NOT NULL DEFAULT '',
            last_error TEXT NOT NULL DEFAULT '',
            disabled_at TEXT,
            reason TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE periods (
            start TEXT PRIMARY KEY,
            end_at TEXT NOT NULL,
            cut_id TEXT,
            cut_time TEXT,
            new_cut INTEGER NOT NULL,
            opened_at TEXT NOT NULL,
            closed_at TEXT,
            judged INTEGER NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            difusor TEXT NOT NULL REFERENCES difusor_state (difusor),
            node TEXT NOT NULL,
            period TEXT NOT NULL REFERENCES periods (start),
            cut_id TEXT NOT NULL,
            cut_time TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            bytes_sent INTEGER NOT NULL,
            files_sent INTEGER NOT NULL,
            tries INTEGER NOT NULL,
            duration_s REAL NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('confirmed', 'failed')),
            error_class TEXT NOT NULL,
            error TEXT NOT NULL
        )""",
        "CREATE INDEX attempts_by_node ON attempts (difusor, node, outcome, finished_at)",
        "CREATE INDEX attempts_by_period ON attempts (period, difusor)",
        # One verdict per difusor and period: closing a period twice cannot strike twice.
        """CREATE TABLE verdicts (
            difusor TEXT NOT NULL REFERENCES difusor_state (difusor),
            period TEXT NOT NULL REFERENCES periods (start),
            verdict TEXT NOT NULL,
            strikes_after INTEGER NOT NULL,
            decided_at TEXT NOT NULL,
            PRIMARY KEY (difusor, period)
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            difusor TEXT,
            period TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX events_by_time ON events (at)",
        # The outbox: decided together with the verdict, performed afterwards, at least once.
        """CREATE TABLE actions (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            difusor TEXT,
            payload TEXT NOT NULL,
            created_at TEXT NOT NULL,
            done_at TEXT,
            tries INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE notifications (
            difusor TEXT NOT NULL,
            kind TEXT NOT NULL,
            recipient TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (difusor, kind, recipient)
        )""",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            pid INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            stopped_at TEXT
        )""",
    ),
    # Notices are deduplicated only when they repeat exactly: the same recipient told the
    # same message about the same difusor and the same period (or decision). The old
    # table kept one row per strike count, which held back a second outage's notices;
    # its rows cannot say which period they were about, so they are not carried over.
    (
        """CREATE TABLE notices (
            recipient TEXT NOT NULL,
            difusor TEXT NOT NULL,
            message TEXT NOT NULL,
            about TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (recipient, difusor, message, about)
        )""",
        "DROP TABLE notifications",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(RuntimeError):
    """The database cannot be used as it is; the message says which file and why."""


def ts(when: datetime) -> str:
    """An aware time as stored: UTC, microseconds, so text order is time order."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: the store keeps aware times only")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _opt_ts(text: str | None) -> datetime | None:
    return None if text is None else parse_ts(text)


@dataclass(frozen=True)
class DifusorState:
    """Where one difusor stands now."""

    difusor: str
    status: DifusorStatus
    strikes: int
    manual: bool
    last_cut_id: str | None
    last_cut_time: datetime | None
    last_confirmed_at: datetime | None
    last_error_class: str
    last_error: str
    disabled_at: datetime | None
    reason: str


@dataclass(frozen=True)
class PeriodRecord:
    """An update period as the orchestrator saw it."""

    start: datetime
    end: datetime
    cut_id: str | None
    cut_time: datetime | None
    new_cut: bool
    opened_at: datetime
    closed_at: datetime | None
    judged: bool  # False: the orchestrator was not up for it; no verdict counts
    note: str


@dataclass(frozen=True)
class Attempt:
    """One push of one cut to one node, as recorded."""

    difusor: str
    node: str
    period: datetime
    cut_id: str
    cut_time: datetime
    started_at: datetime
    finished_at: datetime
    bytes_sent: int
    files_sent: int
    tries: int
    duration_s: float
    outcome: str
    error_class: str
    error: str

    @property
    def confirmed(self) -> bool:
        return self.outcome == "confirmed"


@dataclass(frozen=True)
class Verdict:
    difusor: str
    period: datetime
    verdict: str
    strikes_after: int
    decided_at: datetime


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    kind: str
    difusor: str | None
    period: datetime | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class Action:
    """Something a decision requires doing outside the database (mail, upload, render)."""

    id: int
    key: str
    kind: str
    difusor: str | None
    payload: dict[str, Any]
    tries: int
    last_error: str


class Store:
    """Repository over one SQLite file; writes must happen inside ``transaction()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a
            # transaction spans exactly what the caller groups.
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this prep-iac"
                f" ({SCHEMA_VERSION}); upgrade prep-iac"
            )
        for number in range(version, SCHEMA_VERSION):
            with self.transaction():
                for statement in MIGRATIONS[number]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (BEGIN IMMEDIATE: one writer)."""
        if self._db.in_transaction:
            raise StoreError("transactions do not nest; group the work in one")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        if not self._db.in_transaction:
            raise StoreError("a write outside a transaction: wrap it in store.transaction()")
        return self._db.execute(sql, params)

    # -- difusor state -------------------------------------------------------

    def sync_registry(self, registry: Registry, now: datetime) -> list[str]:
        """Add registry difusores not yet known, with their registry status; return them.

        The store, not the registry file, holds the live status afterwards: an
        operator editing the file must not silently re-enable a disabled difusor.
        """
        known = {row[0] for row in self._db.execute("SELECT difusor FROM difusor_state")}
        added = [d for d in registry.difusores if d.id not in known]
        for difusor in added:
            self._write(
                "INSERT INTO difusor_state (difusor, status, updated_at) VALUES (?, ?, ?)",
                (difusor.id, difusor.status.value, ts(now)),
            )
        return [d.id for d in added]

    def state(self, difusor: str) -> DifusorState:
        row = self._db.execute(
            "SELECT * FROM difusor_state WHERE difusor = ?", (difusor,)
        ).fetchone()
        if row is None:
            raise KeyError(f"difusor '{difusor}' is not in the orchestrator's database")
        return _state(row)

    def states(self) -> list[DifusorState]:
        rows = self._db.execute("SELECT * FROM difusor_state ORDER BY difusor").fetchall()
        return [_state(row) for row in rows]

    def set_state(self, state: DifusorState, now: datetime) -> None:
        self._write(
            """UPDATE difusor_state SET status = ?, strikes = ?, manual = ?, last_cut_id = ?,
                 last_cut_time = ?, last_confirmed_at = ?, last_error_class = ?, last_error = ?,
                 disabled_at = ?, reason = ?, updated_at = ?
               WHERE difusor = ?""",
            (
                state.status.value,
                state.strikes,
                int(state.manual),
                state.last_cut_id,
                None if state.last_cut_time is None else ts(state.last_cut_time),
                None if state.last_confirmed_at is None else ts(state.last_confirmed_at),
                state.last_error_class,
                state.last_error,
                None if state.disabled_at is None else ts(state.disabled_at),
                state.reason,
                ts(now),
                state.difusor,
            ),
        )

    # -- periods -------------------------------------------------------------

    def insert_period(self, record: PeriodRecord) -> bool:
        """Record a period once; False when it was already recorded (kept as it was)."""
        cursor = self._write(
            """INSERT INTO periods (start, end_at, cut_id, cut_time, new_cut, opened_at,
                 closed_at, judged, note)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (start) DO NOTHING""",
            (
                ts(record.start),
                ts(record.end),
                record.cut_id,
                None if record.cut_time is None else ts(record.cut_time),
                int(record.new_cut),
                ts(record.opened_at),
                None if record.closed_at is None else ts(record.closed_at),
                int(record.judged),
                record.note,
            ),
        )
        return cursor.rowcount == 1

    def period(self, start: datetime) -> PeriodRecord | None:
        row = self._db.execute("SELECT * FROM periods WHERE start = ?", (ts(start),)).fetchone()
        return None if row is None else _period(row)

    def periods(self) -> list[PeriodRecord]:
        return [_period(r) for r in self._db.execute("SELECT * FROM periods ORDER BY start")]

    def period_before(self, start: datetime) -> PeriodRecord | None:
        row = self._db.execute(
            "SELECT * FROM periods WHERE start < ? ORDER BY start DESC LIMIT 1", (ts(start),)
        ).fetchone()
        return None if row is None else _period(row)

    def raise_period_cut(
        self, start: datetime, cut_id: str, cut_time: datetime, new_cut: bool
    ) -> None:
        self._write(
            "UPDATE periods SET cut_id = ?, cut_time = ?, new_cut = ? WHERE start = ?",
            (cut_id, ts(cut_time), int(new_cut), ts(start)),
        )

    def last_period(self) -> PeriodRecord | None:
        row = self._db.execute("SELECT * FROM periods ORDER BY start DESC LIMIT 1").fetchone()
        return None if row is None else _period(row)

    def open_periods(self) -> list[PeriodRecord]:
        rows = self._db.execute("SELECT * FROM periods WHERE closed_at IS NULL ORDER BY start")
        return [_period(r) for r in rows]

    def unjudge_period(self, start: datetime, note: str) -> None:
        """Mark an open period as one nobody is judged for (the orchestrator's fault)."""
        self._write(
            "UPDATE periods SET judged = 0, note = ? WHERE start = ? AND closed_at IS NULL",
            (note, ts(start)),
        )

    def close_period(self, start: datetime, now: datetime, judged: bool, note: str) -> None:
        self._write(
            "UPDATE periods SET closed_at = ?, judged = ?, note = ? WHERE start = ?",
            (ts(now), int(judged), note, ts(start)),
        )

    # -- attempts ------------------------------------------------------------

    def add_attempt(self, attempt: Attempt) -> None:
        self._write(
            """INSERT INTO attempts (difusor, node, period, cut_id, cut_time, started_at,
                 finished_at, bytes_sent, files_sent, tries, duration_s, outcome,
                 error_class, error)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                attempt.difusor,
                attempt.node,
                ts(attempt.period),
                attempt.cut_id,
                ts(attempt.cut_time),
                ts(attempt.started_at),
                ts(attempt.finished_at),
                attempt.bytes_sent,
                attempt.files_sent,
                attempt.tries,
                attempt.duration_s,
                attempt.outcome,
                attempt.error_class,
                attempt.error,
            ),
        )

    def attempts(self, difusor: str | None = None, period: datetime | None = None) -> list[Attempt]:
        sql, params = "SELECT * FROM attempts WHERE 1 = 1", list[str]()
        if difusor is not None:
            sql, params = sql + " AND difusor = ?", [*params, difusor]
        if period is not None:
            sql, params = sql + " AND period = ?", [*params, ts(period)]
        rows = self._db.execute(sql + " ORDER BY finished_at, id", params)
        return [_attempt(r) for r in rows]

    def newest_confirmed_cut(
        self, difusor: str, node: str, by: datetime, since: datetime | None = None
    ) -> datetime | None:
        """The newest cut time ``node`` confirmed active at or before ``by`` (and, with
        ``since``, not before it)."""
        row = self._db.execute(
            """SELECT MAX(cut_time) FROM attempts
               WHERE difusor = ? AND node = ? AND outcome = 'confirmed' AND finished_at <= ?
                 AND finished_at >= ?""",
            (difusor, node, ts(by), "" if since is None else ts(since)),
        ).fetchone()
        return _opt_ts(row[0])

    def newest_confirmed(self) -> tuple[str, datetime] | None:
        """The newest cut any difusor's node confirmed (what the IEC's list announces)."""
        row = self._db.execute(
            """SELECT cut_id, cut_time FROM attempts WHERE outcome = 'confirmed'
               ORDER BY cut_time DESC LIMIT 1"""
        ).fetchone()
        return None if row is None else (row[0], parse_ts(row[1]))

    # -- verdicts ------------------------------------------------------------

    def add_verdict(self, verdict: Verdict) -> bool:
        """Record a difusor's verdict for a period once; False if it already had one."""
        cursor = self._write(
            """INSERT INTO verdicts (difusor, period, verdict, strikes_after, decided_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT (difusor, period) DO NOTHING""",
            (
                verdict.difusor,
                ts(verdict.period),
                verdict.verdict,
                verdict.strikes_after,
                ts(verdict.decided_at),
            ),
        )
        return cursor.rowcount == 1

    def has_verdict(self, difusor: str, period: datetime) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM verdicts WHERE difusor = ? AND period = ?", (difusor, ts(period))
        ).fetchone()
        return row is not None

    def verdicts(self, difusor: str | None = None, period: datetime | None = None) -> list[Verdict]:
        sql, params = "SELECT * FROM verdicts WHERE 1 = 1", list[str]()
        if difusor is not None:
            sql, params = sql + " AND difusor = ?", [*params, difusor]
        if period is not None:
            sql, params = sql + " AND period = ?", [*params, ts(period)]
        rows = self._db.execute(sql + " ORDER BY period, difusor", params)
        return [
            Verdict(r["difusor"], parse_ts(r["period"]), r["verdict"], r["strikes_after"],
                    parse_ts(r["decided_at"]))
            for r in rows
        ]  # fmt: skip

    # -- events --------------------------------------------------------------

    def add_event(
        self,
        at: datetime,
        kind: str,
        difusor: str | None = None,
        period: datetime | None = None,
        **detail: Any,
    ) -> int:
        cursor = self._write(
            "INSERT INTO events (at, kind, difusor, period, detail) VALUES (?, ?, ?, ?, ?)",
            (
                ts(at),
                kind,
                difusor,
                None if period is None else ts(period),
                json.dumps(detail, sort_keys=True, ensure_ascii=False, default=str),
            ),
        )
        return int(cursor.lastrowid or 0)

    def events(
        self, since: datetime | None = None, kinds: tuple[str, ...] | None = None
    ) -> list[Event]:
        sql, params = "SELECT * FROM events WHERE 1 = 1", list[str]()
        if since is not None:
            sql, params = sql + " AND at >= ?", [ts(since)]
        if kinds:
            sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
            params += list(kinds)
        rows = self._db.execute(sql + " ORDER BY at, id", params)
        return [
            Event(r["id"], parse_ts(r["at"]), r["kind"], r["difusor"], _opt_ts(r["period"]),
                  json.loads(r["detail"]))
            for r in rows
        ]  # fmt: skip

    # -- actions (outbox) ----------------------------------------------------

    def add_action(
        self, key: str, kind: str, difusor: str | None, payload: Mapping[str, Any], now: datetime
    ) -> bool:
        """Queue an action once per ``key``; False when it was already queued."""
        cursor = self._write(
            """INSERT INTO actions (key, kind, difusor, payload, created_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING""",
            (key, kind, difusor, json.dumps(dict(payload), sort_keys=True, default=str), ts(now)),
        )
        return cursor.rowcount == 1

    def has_action(self, key: str) -> bool:
        """Whether an action was ever queued under ``key`` (pending or done)."""
        return (
            self._db.execute("SELECT 1 FROM actions WHERE key = ?", (key,)).fetchone() is not None
        )

    def pending_actions(self) -> list[Action]:
        rows = self._db.execute("SELECT * FROM actions WHERE done_at IS NULL ORDER BY id")
        return [
            Action(r["id"], r["key"], r["kind"], r["difusor"], json.loads(r["payload"]),
                   r["tries"], r["last_error"])
            for r in rows
        ]  # fmt: skip

    def finish_action(self, action_id: int, now: datetime) -> None:
        self._write(
            "UPDATE actions SET done_at = ?, tries = tries + 1, last_error = '' WHERE id = ?",
            (ts(now), action_id),
        )

    def fail_action(self, action_id: int, error: str) -> None:
        self._write(
            "UPDATE actions SET tries = tries + 1, last_error = ? WHERE id = ?",
            (error, action_id),
        )

    # -- notification deduplication -----------------------------------------

    def notified(self, recipient: str, difusor: str, message: str, about: str) -> datetime | None:
        """When ``recipient`` was told ``message`` about ``difusor`` and ``about``, if ever.

        ``difusor`` is ``""`` for an operators' notice about no difusor; ``about``
        is the failed period's start or the decision's outbox key.
        """
        row = self._db.execute(
            """SELECT sent_at FROM notices
               WHERE recipient = ? AND difusor = ? AND message = ? AND about = ?""",
            (recipient, difusor, message, about),
        ).fetchone()
        return None if row is None else parse_ts(row[0])

    def mark_notified(
        self, recipient: str, difusor: str, message: str, about: str, at: datetime
    ) -> None:
        """Record a notice as sent; a repeat keeps the first time."""
        self._write(
            """INSERT INTO notices (recipient, difusor, message, about, sent_at)
               VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            (recipient, difusor, message, about, ts(at)),
        )

    # -- orchestrator runs ---------------------------------------------------

    def start_run(self, pid: int, now: datetime) -> int:
        cursor = self._write(
            "INSERT INTO runs (pid, started_at, last_seen_at) VALUES (?, ?, ?)",
            (pid, ts(now), ts(now)),
        )
        return int(cursor.lastrowid or 0)

    def heartbeat(self, run_id: int, now: datetime) -> None:
        self._write("UPDATE runs SET last_seen_at = ? WHERE id = ?", (ts(now), run_id))

    def stop_run(self, run_id: int, now: datetime) -> None:
        self._write(
            "UPDATE runs SET last_seen_at = ?, stopped_at = ? WHERE id = ?",
            (ts(now), ts(now), run_id),
        )

    def last_seen(self) -> datetime | None:
        """When any orchestrator run was last known alive."""
        row = self._db.execute("SELECT MAX(last_seen_at) FROM runs").fetchone()
        return _opt_ts(row[0])


def _state(row: sqlite3.Row) -> DifusorState:
    return DifusorState(
        difusor=row["difusor"],
        status=DifusorStatus(row["status"]),
        strikes=row["strikes"],
        manual=bool(row["manual"]),
        last_cut_id=row["last_cut_id"],
        last_cut_time=_opt_ts(row["last_cut_time"]),
        last_confirmed_at=_opt_ts(row["last_confirmed_at"]),
        last_error_class=row["last_error_class"],
        last_error=row["last_error"],
        disabled_at=_opt_ts(row["disabled_at"]),
        reason=row["reason"],
    )


def _period(row: sqlite3.Row) -> PeriodRecord:
    return PeriodRecord(
        start=parse_ts(row["start"]),
        end=parse_ts(row["end_at"]),
        cut_id=row["cut_id"],
        cut_time=_opt_ts(row["cut_time"]),
        new_cut=bool(row["new_cut"]),
        opened_at=parse_ts(row["opened_at"]),
        closed_at=_opt_ts(row["closed_at"]),
        judged=bool(row["judged"]),
        note=row["note"],
    )


def _attempt(row: sqlite3.Row) -> Attempt:
    return Attempt(
        difusor=row["difusor"],
        node=row["node"],
        period=parse_ts(row["period"]),
        cut_id=row["cut_id"],
        cut_time=parse_ts(row["cut_time"]),
        started_at=parse_ts(row["started_at"]),
        finished_at=parse_ts(row["finished_at"]),
        bytes_sent=row["bytes_sent"],
        files_sent=row["files_sent"],
        tries=row["tries"],
        duration_s=row["duration_s"],
        outcome=row["outcome"],
        error_class=row["error_class"],
        error=row["error"],
    )
