"""The figures count clients by a hash of address + user agent; should two clients
share a hash, they are numbered exactly and every figure stays the same."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prep_iac.memoria.figures import Figures, compute
from prep_iac.memoria.ingest import AccessLogs, Role
from prep_iac.memoria.synthetic import TrafficSpec, write_logs

SPEC = TrafficSpec(date(2018, 7, 1), normal_days=(date(2018, 6, 24),), requests=6_000, seed=5)
DAYS = [date(2018, 7, 1), date(2018, 7, 2)]


def figures(log: Path, work: Path, *, collide: bool) -> Figures:
    logs = AccessLogs(work, "America/Monterrey")
    try:
        logs.add(log, Role.ELECTION)
        if collide:  # every client with the same hash: the worst case
            logs.con.execute("UPDATE lines SET client = 42")
        return compute(logs.con, DAYS, "America/Monterrey", [])
    finally:
        logs.close()


def test_clients_sharing_a_hash_are_numbered_exactly(tmp_path: Path) -> None:
    write_logs(SPEC, tmp_path / "a.json", None)
    hashed = figures(tmp_path / "a.json", tmp_path / "w1", collide=False)
    collided = figures(tmp_path / "a.json", tmp_path / "w2", collide=True)
    assert hashed.all_clients.unique_visitors > 100
    assert hashed.readers is not None and hashed.readers.visits > 100
    assert collided == hashed
