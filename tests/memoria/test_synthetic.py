"""The synthetic traffic: seeded, the same requests in both formats, an election night's shape."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prep_iac.memoria.ingest import AccessLogs, Role
from prep_iac.memoria.synthetic import TrafficSpec, write_logs

SPEC = TrafficSpec(date(2018, 7, 1), normal_days=(date(2018, 6, 24),), requests=6_000, seed=3)


def test_the_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    write_logs(SPEC, tmp_path / "a.log", None)
    write_logs(SPEC, tmp_path / "b.log", None)
    write_logs(TrafficSpec(SPEC.election_day, requests=6_000, seed=4), tmp_path / "c.log", None)
    assert (tmp_path / "a.log").read_bytes() == (tmp_path / "b.log").read_bytes()
    assert (tmp_path / "a.log").read_bytes() != (tmp_path / "c.log").read_bytes()


def test_json_and_combined_files_carry_the_same_requests(tmp_path: Path) -> None:
    count = write_logs(SPEC, tmp_path / "a.json", tmp_path / "a.combined.gz")
    logs = AccessLogs(tmp_path / "work", "America/Monterrey")
    try:
        for name in ("a.json", "a.combined.gz"):
            reading = logs.add(tmp_path / name, Role.ELECTION)
            assert (reading.lines, reading.requests) == (count, count)
        rows = logs.con.execute(
            """WITH r AS (SELECT file_id, instant, ip, method, uri, status, bytes, referer, agent
                          FROM requests)
               SELECT count(*) FROM (
                   (SELECT * EXCLUDE (file_id) FROM r WHERE file_id = 0
                    EXCEPT ALL SELECT * EXCLUDE (file_id) FROM r WHERE file_id = 1)
                   UNION ALL
                   (SELECT * EXCLUDE (file_id) FROM r WHERE file_id = 1
                    EXCEPT ALL SELECT * EXCLUDE (file_id) FROM r WHERE file_id = 0))"""
        ).fetchone()
    finally:
        logs.close()
    assert rows == (0,)


def test_the_election_night_rushes_after_20h_and_has_bots_and_attacks(tmp_path: Path) -> None:
    write_logs(SPEC, tmp_path / "a.json", None)
    logs = AccessLogs(tmp_path / "work", "America/Monterrey")
    try:
        logs.add(tmp_path / "a.json", Role.ELECTION)
        by = dict(
            logs.con.execute(
                """SELECT CASE WHEN day = DATE '2018-06-24' THEN 'normal'
                               WHEN hour(local_time) BETWEEN 20 AND 23 THEN 'rush'
                               WHEN hour(local_time) BETWEEN 8 AND 11 THEN 'morning' END AS k,
                          count(*) FROM requests WHERE day IN ('2018-07-01', '2018-06-24')
                   GROUP BY k"""
            ).fetchall()
        )
        kinds = dict(
            logs.con.execute("SELECT kind, count(*) FROM requests GROUP BY kind").fetchall()
        )
    finally:
        logs.close()
    assert by["rush"] > 10 * by["morning"]
    assert by["rush"] > by["normal"]
    assert {"reader", "bot", "blocked", "limited"} <= set(kinds)
