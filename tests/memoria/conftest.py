"""Fixtures: seeded synthetic traffic, a night driven through the real strike rules,
and one memoria built from them (module scope: rendering is the slow part)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from prep_iac.memoria.report import MemoriaRequest, MemoriaResult, build_memoria
from prep_iac.memoria.synthetic import HOST, TrafficSpec, write_logs
from prep_iac.models.difusor import Registry
from prep_iac.models.election import Election
from prep_iac.models.loading import load_model
from prep_iac.orchestrate import strikes
from prep_iac.orchestrate.schedule import PeriodClock
from prep_iac.orchestrate.store import Store
from prep_iac.orchestrate.strikes import CutRef, node_key
from prep_iac.presets import load_election
from prep_iac.publish.push import DifusorResult, NodeResult

FIXTURES = Path(__file__).parent.parent / "fixtures"
PREP_IAC = [sys.executable, "-m", "prep_iac.cli"]
ELECTION_DAY = date(2018, 7, 1)
NORMAL_DAYS = (date(2018, 6, 10), date(2018, 6, 17), date(2018, 6, 24))
# Pushes start 5 s into the period; uadec's take 20 s, vanguardia's 20 s + 10 s per
# period index; periods open 1 s in (the cut's arrival).
PUSH_OFFSET_S, PUSH_DURATION_S, OPEN_LATE_S = 5.0, 20.0, 1.0


def push_duration(difusor: str, index: int) -> float:
    return PUSH_DURATION_S + (10.0 * index if difusor == "vanguardia" else 0.0)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PREP_IAC, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def election() -> Election:
    return load_election("coahuila-2018")


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_model(Registry, FIXTURES / "registry-ok.yaml")


@dataclass(frozen=True)
class Traffic:
    json_log: Path
    combined_log: Path
    normal_log: Path
    requests: int


@pytest.fixture(scope="session")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    where = tmp_path_factory.mktemp("traffic")
    spec = TrafficSpec(ELECTION_DAY, requests=40_000, seed=11)
    count = write_logs(spec, where / "prep-access.log", where / "prep-access.combined.log.gz")
    normal = TrafficSpec(ELECTION_DAY, normal_days=NORMAL_DAYS, election_share=0.0,
                         requests=9_000, seed=12)  # fmt: skip
    write_logs(normal, None, where / "portal.log")
    return Traffic(where / "prep-access.log", where / "prep-access.combined.log.gz",
                   where / "portal.log", count)  # fmt: skip


def _push(
    registry: Registry, difusor: str, cut: CutRef, at: datetime, ok: bool, duration_s: float
) -> DifusorResult:
    nodes = registry.get(difusor).nodes
    return DifusorResult(difusor, cut.cut_id, [
        NodeResult(
            difusor, node_key(n.host, n.port), cut.cut_id,
            outcome="confirmed" if ok else "failed", bytes_sent=1000 if ok else 0,
            attempts=1 if ok else 3, duration_s=duration_s,
            error_class="" if ok else "unreachable",
            error="" if ok else f"{n.host}:{n.port}: unreachable",
            started_at=at.astimezone(UTC).isoformat(),
        )
        for n in nodes
    ])  # fmt: skip


# Per period, which difusores confirm: uadec fails periods 2-4 (disabled at the 3rd).
OUTCOMES = [
    {"uadec": True, "vanguardia": True},
    {"uadec": True, "vanguardia": True},
    {"uadec": False, "vanguardia": True},
    {"uadec": False, "vanguardia": True},
    {"uadec": False, "vanguardia": True},
    {"vanguardia": True},
]


@pytest.fixture(scope="session")
def night_store(
    tmp_path_factory: pytest.TempPathFactory, registry: Registry, election: Election
) -> Path:
    """A store filled by the real clause-III code for six periods of the 2018 night."""
    path = tmp_path_factory.mktemp("night") / "orchestrator.sqlite3"
    clock = PeriodClock(election)
    with Store(path) as store:
        with store.transaction():
            store.sync_registry(registry, election.window_start)
        for index, outcomes in enumerate(OUTCOMES):
            start = election.window_start.astimezone(UTC) + index * election.period
            cut = CutRef(election.cut_id(start), start)
            period = clock.period(index)
            assert period is not None
            strikes.open_period(store, registry, election, period, cut,
                                start + timedelta(seconds=OPEN_LATE_S))  # fmt: skip
            for difusor, ok in outcomes.items():
                at = start + timedelta(seconds=PUSH_OFFSET_S)
                result = _push(registry, difusor, cut, at, ok, push_duration(difusor, index))
                strikes.record_push(store, start, result, cut)
            strikes.close_period(store, registry, election, start, start + election.period)
    return path


@pytest.fixture(scope="session")
def incidents_csv(night_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The IEC's incident CSV, exported by ``prep-iac events`` from the night's store."""
    result = run_cli("events", "--db", str(night_store), "--since", "2018-01-01T00:00:00+00:00")
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("iec") / "incidencias.csv"
    path.write_text(result.stdout, encoding="utf-8")
    return path


def _lines(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def host_logs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The event log, activation records and Suricata alerts of a night, as hosts write them."""
    where = tmp_path_factory.mktemp("hostlogs") / "difusor-1"
    where.mkdir()
    events = _lines(where / "events.log", [
        {"time": "2018-07-02T02:10:00Z", "host": "prep1", "source": "fail2ban", "event": "ban",
         "detail": "nginx-limit-req 201.7.7.7 3600s"},
        {"time": "2018-07-02T04:00:00Z", "host": "prep1", "source": "ups", "event": "ONBATT",
         "detail": "ups@localhost"},
        {"time": "2018-07-02T04:06:00Z", "host": "prep1", "source": "ups", "event": "ONLINE",
         "detail": "ups@localhost"},
        {"time": "2018-07-02T05:00:00Z", "host": "prep1", "source": "mdadm",
         "event": "DegradedArray", "detail": "/dev/md0"},
        {"time": "2018-07-02T05:10:00Z", "host": "prep1", "source": "ha", "event": "vrrp-MASTER",
         "detail": "203.0.113.20 en prep1: INSTANCE prep MASTER, prioridad 100"},
    ])  # fmt: skip
    activations = _lines(where / "activate.log", [
        {"at": "2018-07-01T23:00:05+00:00", "outcome": "activated", "cut_id": "20180701_1800"},
        {"at": "2018-07-02T03:31:00+00:00", "outcome": "stale", "cut_id": "20180701_2200",
         "age_seconds": 1810},
        {"at": "2018-07-02T03:52:10+00:00", "outcome": "activated", "cut_id": "20180701_2250"},
        {"at": "2018-07-02T04:02:00+00:00", "outcome": "rejected", "cut_id": "20180701_2300",
         "reason": "hash-mismatch", "detail": "datos/resumen.json"},
    ])  # fmt: skip
    eve = _lines(where / "eve.json", [
        {"timestamp": "2018-07-01T21:15:00.000000-0500", "event_type": "alert",
         "src_ip": "201.9.9.9", "alert": {"signature": "PREP SYN flood"}},
        {"timestamp": "2018-07-01T21:15:01.000000-0500", "event_type": "flow"},
    ])  # fmt: skip
    return [events, activations, eve]


@pytest.fixture(scope="session")
def built(
    tmp_path_factory: pytest.TempPathFactory, traffic: Traffic, host_logs: list[Path],
    incidents_csv: Path, election: Election,
) -> MemoriaResult:  # fmt: skip
    """One whole memoria from the synthetic night, its normal days and the host's logs."""
    return build_memoria(
        MemoriaRequest(
            election=election, access_logs=[traffic.json_log], normal_logs=[traffic.normal_log],
            host_logs=host_logs, incident_csv=incidents_csv, difusor="uadec",
            difusor_name="Universidad Ejemplo", own_hosts=[HOST],
            out=tmp_path_factory.mktemp("memoria"),
        )
    )  # fmt: skip
