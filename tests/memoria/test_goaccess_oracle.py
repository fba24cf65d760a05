"""GoAccess (Debian's package) is the oracle: on the same synthetic log, the memoria's
total requests, unique visitors (IP + date + user agent, 4xx-only clients left out, as
GoAccess counts them), bytes and per-status counts equal GoAccess's JSON output."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from prep_iac.memoria.figures import Figures
from prep_iac.memoria.ingest import GOACCESS_JSON_FORMAT

from .conftest import Traffic, run_cli

# Every day the synthetic night touches (the early-morning tail reaches 3 July).
DAYS = ("2018-07-01", "2018-07-02", "2018-07-03")


def goaccess(log: Path, out: Path, *fmt: str) -> dict[str, Any]:
    if shutil.which("goaccess") is None:
        pytest.fail("goaccess is not installed (bash .ci/setup installs it)")
    subprocess.run(
        ["goaccess", str(log), "--no-global-config", "-o", str(out), *fmt],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def statuses(report: dict[str, Any]) -> dict[int, int]:
    return {
        int(item["data"].split()[0]): item["hits"]["count"]
        for group in report["status_codes"]["data"]
        for item in group["items"]
    }


def memoria_figures(log: Path, out: Path) -> Figures:
    days = [arg for day in DAYS for arg in ("--day", day)]
    result = run_cli("memoria", "--access-log", str(log), *days, "--no-bitacoras", "--no-pdf",
                     "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads((out / "cifras.json").read_text())
    return Figures.model_validate(document["figures"])


def assert_same_counts(figures: Figures, report: dict[str, Any]) -> None:
    general = report["general"]
    assert general["failed_requests"] == 0
    assert figures.all_clients.total_requests == general["valid_requests"]
    assert figures.all_clients.total_requests == general["total_requests"]
    assert figures.all_clients.unique_visitors == general["unique_visitors"]
    assert figures.all_clients.bytes == general["bandwidth"]
    assert figures.all_clients.statuses == statuses(report)
    per_day = {row["data"]: row["visitors"]["count"] for row in report["visitors"]["data"]}
    ours = {d.day: d for d in figures.days}
    # GoAccess's per-day visitors include bots; ours per day are readers only, so never more.
    for day, visitors in per_day.items():
        assert ours[date.fromisoformat(f"{day[:4]}-{day[4:6]}-{day[6:]}")].visitors <= visitors


def test_json_log_counts_equal_goaccess(traffic: Traffic, tmp_path: Path) -> None:
    report = goaccess(
        traffic.json_log, tmp_path / "goaccess.json", f"--log-format={GOACCESS_JSON_FORMAT}",
        "--datetime-format=%Y-%m-%dT%H:%M:%S%z",
    )  # fmt: skip
    figures = memoria_figures(traffic.json_log, tmp_path / "memoria")
    assert figures.all_clients.total_requests == traffic.requests
    assert_same_counts(figures, report)
    # The synthetic night has what the comparison must cover: bots, 4xx-only scanners, 304s.
    assert {403, 404, 429, 304} <= set(figures.all_clients.statuses)
    assert figures.classes["bot"] > 0 and figures.classes["blocked"] > 0


def test_gzipped_combined_log_of_the_same_requests_gives_the_same_counts(
    traffic: Traffic, tmp_path: Path
) -> None:
    plain = tmp_path / "combined.log"
    with gzip.open(traffic.combined_log, "rb") as source, plain.open("wb") as target:
        shutil.copyfileobj(source, target)
    report = goaccess(plain, tmp_path / "goaccess.json", "--log-format=COMBINED")
    figures = memoria_figures(traffic.combined_log, tmp_path / "memoria")
    assert_same_counts(figures, report)
    from_json = memoria_figures(traffic.json_log, tmp_path / "memoria-json")
    assert figures.all_clients == from_json.all_clients
    assert figures.days == from_json.days
