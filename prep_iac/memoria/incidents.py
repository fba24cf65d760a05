"""The incident report of a memoria: what the hosts' own logs say went wrong, and when.

Inputs, each a file of JSON lines (plain or gzipped, as logrotate leaves them),
told apart per line by their fields:

- the event log ``/var/log/prep-iac/events.log`` (``time``, ``host``,
  ``source``, ``event``, ``detail``): bans (fail2ban), power (ups), storage
  (mdadm, smartd, btrfs);
- the activation records ``/var/log/prep-iac/activate.log`` (``at``,
  ``outcome``, ``cut_id``, ``reason``, ``detail``): the cut switched live,
  rejected, the notice shown by the watchdog (``stale``) or by the IEC's
  signed suspension (``suspended``);
- Suricata's ``eve.json`` alerts and ModSecurity's JSON audit log;
- the IEC's incident CSV (``prep-iac events --format csv``).

Publication incidents are the periods in which the host showed the notice
instead of results (from the activation records) and the 10-minute intervals
of the publication window in which the access log has no request at all or
mostly server errors (the host served nothing). A line that cannot be read is
reported with its file and line number and the rest is still read.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import duckdb
from pydantic import BaseModel, ValidationError

POWER = {"ups"}
STORAGE = {"mdadm", "smartd", "btrfs"}
BANS = {"fail2ban"}
FAILOVER = {"ha"}  # the floating address: keepalived's transitions, prep-ha-monitor's verdicts
NOTICE_OUTCOMES = {
    "stale": "aviso: el vigilante del host retiró un corte vencido",
    "suspended": "aviso: suspensión firmada por el IEC",
}


class HostEvent(BaseModel):
    time: datetime
    host: str = ""
    source: str
    event: str
    detail: str = ""


class Activation(BaseModel):
    at: datetime
    outcome: str
    cut_id: str | None = None
    reason: str = ""
    detail: str = ""


class Detection(BaseModel):
    time: datetime
    source: str
    client: str
    what: str


class IecEvent(BaseModel):
    at: datetime
    kind: str
    difusor: str = ""
    period: str = ""
    detail: str = ""


class Period(BaseModel):
    start: datetime
    end: datetime | None
    what: str
    cause: str = ""


@dataclass(frozen=True)
class Unreadable:
    file: Path
    line: int
    problem: str

    def message(self) -> str:
        return f"{self.file}:{self.line}: {self.problem}"


@dataclass
class HostLogs:
    """Everything read from the event, activation, IDS and IEC files."""

    events: list[HostEvent] = field(default_factory=list)
    activations: list[Activation] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)
    iec: list[IecEvent] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    lines: int = 0


def _open_text(path: Path) -> IO[str]:
    with path.open("rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def _numbered(path: Path, logs: HostLogs) -> Iterator[tuple[int, str]]:
    number = 0
    try:
        with _open_text(path) as handle:
            for number, text in enumerate(handle, start=1):
                yield number, text
    except (EOFError, OSError) as exc:
        logs.unreadable.append(Unreadable(path, number + 1, f"file ends early: {exc}"))


def _detection(data: dict[str, Any]) -> Detection | None:
    if data.get("event_type") == "alert":  # Suricata EVE
        return Detection(
            time=data["timestamp"], source="suricata", client=str(data.get("src_ip", "")),
            what=str(data.get("alert", {}).get("signature", "")),
        )  # fmt: skip
    transaction = data.get("transaction")
    if isinstance(transaction, dict):  # ModSecurity JSON audit log
        messages = transaction.get("messages") or []
        what = "; ".join(str(m.get("message", "")) for m in messages if isinstance(m, dict))
        return Detection(
            time=_modsec_time(str(transaction.get("time_stamp", ""))), source="modsecurity",
            client=str(transaction.get("client_ip", "")), what=what or "transacción auditada",
        )  # fmt: skip
    return None


def _modsec_time(text: str) -> datetime:
    # ModSecurity v3 writes ctime-like stamps: "Sun Jul  1 20:01:02 2018" (local time).
    try:
        return datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return datetime.fromisoformat(text)


def read_host_log(path: Path, logs: HostLogs) -> None:
    """Read one JSON-lines file of events, activations or detections into ``logs``."""
    for number, text in _numbered(path, logs):
        logs.lines += 1
        if not text.strip():
            continue
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if "outcome" in data:
                logs.activations.append(Activation.model_validate(data))
            elif "source" in data and "event" in data:
                logs.events.append(HostEvent.model_validate(data))
            elif (found := _detection(data)) is not None:
                logs.detections.append(found)
            elif "event_type" in data:
                continue  # Suricata's flows, stats and the like: not detections
            else:
                raise ValueError("neither an event, an activation record nor an IDS alert")
        except (ValueError, KeyError, ValidationError) as exc:
            problem = str(exc).splitlines()[0]
            logs.unreadable.append(Unreadable(path, number, problem))


def read_incident_csv(path: Path, logs: HostLogs, difusor: str | None) -> None:
    """The IEC's ``prep-iac events --format csv``; only ``difusor``'s rows when given."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"at", "kind", "difusor", "period", "detail"} - set(reader.fieldnames or [])
        if missing:
            logs.unreadable.append(Unreadable(path, 1, f"CSV without columns {sorted(missing)}"))
            return
        for row in reader:
            logs.lines += 1
            try:
                event = IecEvent.model_validate(row)
            except ValidationError as exc:
                problem = str(exc).splitlines()[0]
                logs.unreadable.append(Unreadable(path, reader.line_num, problem))
                continue
            if difusor is None or event.difusor in ("", difusor):
                logs.iec.append(event)


def notice_periods(activations: list[Activation], tz: ZoneInfo) -> list[Period]:
    """The periods in which the host showed the notice instead of a cut, from its records."""
    periods: list[Period] = []
    open_period: Period | None = None
    for record in sorted(activations, key=lambda r: r.at):
        at = record.at.astimezone(tz)
        if record.outcome in NOTICE_OUTCOMES and open_period is None:
            cause = record.reason or (f"corte {record.cut_id}" if record.cut_id else "")
            open_period = Period(start=at, end=None, what=NOTICE_OUTCOMES[record.outcome],
                                 cause=cause)  # fmt: skip
        elif record.outcome == "activated" and open_period is not None:
            periods.append(open_period.model_copy(update={"end": at}))
            open_period = None
        elif record.outcome == "rejected":
            periods.append(
                Period(start=at, end=at, what="corte rechazado; siguió publicado el anterior",
                       cause=f"{record.reason}: {record.cut_id or ''} {record.detail}".strip())
            )  # fmt: skip
    if open_period is not None:
        periods.append(open_period)
    return periods


def silent_periods(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> list[Period]:
    """10-minute intervals from ``start`` to ``end`` (local) with no request or mostly 5xx."""
    rows = con.execute(
        """SELECT time_bucket(INTERVAL 10 MINUTE, local_time) AS b, count(*),
               count(*) FILTER (WHERE status >= 500)
           FROM requests WHERE role = 'election' AND local_time >= $start AND local_time < $end
           GROUP BY b""",
        {"start": start, "end": end},
    ).fetchall()
    found = {b: (hits, errors) for b, hits, errors in rows}
    periods: list[Period] = []
    at = start
    while at < end:
        hits, errors = found.get(at, (0, 0))
        what = (
            "sin solicitudes registradas (el host no respondió o no registró)" if hits == 0
            else "la mayoría de las respuestas fueron errores del servidor (5xx)"
            if errors * 2 > hits else None
        )  # fmt: skip
        if what is not None:
            last = periods[-1] if periods else None
            if last is not None and last.what == what and last.end == at:
                periods[-1] = last.model_copy(update={"end": at + timedelta(minutes=10)})
            else:
                periods.append(Period(start=at, end=at + timedelta(minutes=10), what=what,
                                      cause=f"{hits} solicitudes, {errors} con 5xx"))  # fmt: skip
        at += timedelta(minutes=10)
    return periods


def in_days(when: datetime, days: list[date], tz: ZoneInfo) -> bool:
    local = when.astimezone(tz) if when.tzinfo else when
    return local.date() in days
