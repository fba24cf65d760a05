"""``prep-iac status|events|disable|list render`` as an operator runs them."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from .helpers import Night

FIXTURES = Path(__file__).parent.parent / "fixtures"
REGISTRY = FIXTURES / "registry-ok.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prep_iac.cli", *args],
        capture_output=True, text=True, timeout=60, check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def disabled_uadec(night: Night) -> None:
    for index in range(3):
        night.period(index, {"uadec": False, "vanguardia": True})


def test_status_json_has_strikes_state_and_live_cut(night: Night) -> None:
    disabled_uadec(night)
    result = run("status", "--db", str(night.store.path), "--difusores", str(REGISTRY), "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["difusor"]: r for r in json.loads(result.stdout)}
    assert rows["uadec"]["state"] == "disabled"
    assert rows["uadec"]["strikes"] == 3
    assert rows["uadec"]["nodes"] == 2
    assert rows["uadec"]["live_cut"] is None
    assert rows["vanguardia"]["state"] == "active"
    assert rows["vanguardia"]["live_cut"] == "20180701_1820"
    assert rows["vanguardia"]["strikes"] == 0


def test_status_table_shows_every_difusor(night: Night) -> None:
    disabled_uadec(night)
    result = run("status", "--db", str(night.store.path), "--difusores", str(REGISTRY))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    [uadec] = [line for line in lines if "uadec" in line]
    assert "3/3" in uadec
    assert "disabled" in uadec
    assert "3 periodos" in uadec
    [vanguardia] = [line for line in lines if "vanguardia" in line]
    assert "20180701_1820" in vanguardia
    assert "active" in vanguardia


def test_status_without_a_database_says_where_it_looked(tmp_path: Path) -> None:
    result = run("status", "--db", str(tmp_path / "none.sqlite3"), "--difusores", str(REGISTRY))
    assert result.returncode == 1
    assert "no orchestrator database at" in result.stderr
    assert not (tmp_path / "none.sqlite3").exists()


def test_events_csv_is_the_incident_report(night: Night) -> None:
    disabled_uadec(night)
    result = run("events", "--db", str(night.store.path), "--since", "2018-07-01T00:00",
                 "--format", "csv")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["kind"] for r in rows if r["difusor"] == "uadec"] == [
        "strike", "strike", "strike", "disabled",
    ]  # fmt: skip
    strike = json.loads(rows[1]["detail"])
    assert strike["error_class"] == "unreachable"
    assert rows[0]["at"].startswith("2018-07-01T23:")


def test_events_json_filters_by_kind_and_time(night: Night) -> None:
    disabled_uadec(night)
    since = (night.start(2) + timedelta(seconds=1)).isoformat()  # after the 2nd strike
    result = run("events", "--db", str(night.store.path), "--since", since, "--kind", "strike",
                 "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [event] = json.loads(result.stdout)
    assert event["kind"] == "strike"
    assert event["detail"]["strikes"] == 3
    bad = run("events", "--db", str(night.store.path), "--since", "ayer")
    assert bad.returncode == 2
    assert "expected 30m, 2h, 1d or an ISO 8601 time" in bad.stderr


def test_disable_records_who_and_why_and_refuses_twice(night: Night) -> None:
    night.period(0, {"uadec": True, "vanguardia": True})
    args = ("disable", "vanguardia", "--reason", "portal alterado", "--operator", "operador1",
            "--db", str(night.store.path), "--difusores", str(REGISTRY))  # fmt: skip
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert "queued: notify, render-list, suspend" in first.stdout
    state = night.store.state("vanguardia")
    assert (state.status.value, state.manual, state.reason) == ("disabled", True, "portal alterado")
    [event] = night.store.events(kinds=("manual-disable",))
    assert event.detail["operator"] == "operador1"
    again = run(*args)
    assert again.returncode == 1
    assert "already disabled" in again.stderr
    unknown = run("disable", "nadie", "--reason", "x", "--db", str(night.store.path),
                  "--difusores", str(REGISTRY))  # fmt: skip
    assert unknown.returncode == 1
    assert "no difusor 'nadie'" in unknown.stderr


def test_list_render_publishes_the_page_and_settles_queued_renders(
    night: Night, tmp_path: Path
) -> None:
    registry = tmp_path / "registro" / "difusores.yaml"
    (registry.parent / "logos").mkdir(parents=True)
    shutil.copy(REGISTRY, registry)
    (registry.parent / "logos" / "uadec.svg").write_text("<svg/>")
    disabled_uadec(night)
    # One per period: each confirmed a newer cut; the third also disabled uadec.
    assert [a.kind for a in night.store.pending_actions()].count("render-list") == 3
    out = tmp_path / "sitio"
    result = run("list", "render", "--db", str(night.store.path), "--difusores", str(registry),
                 "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "logo not found for vanguardia" in result.stdout
    page = (out / "index.html").read_text()
    assert "Se interrumpió la transmisión de resultados a este difusor" in page
    assert (out / "logos" / "uadec.svg").read_text() == "<svg/>"
    assert "render-list" not in [a.kind for a in night.store.pending_actions()]
    assert run("list", "render", "--db", str(night.store.path), "--difusores",
               str(registry)).returncode == 2  # fmt: skip


def test_list_render_takes_its_targets_and_notice_from_the_settings_file(
    night: Night, tmp_path: Path
) -> None:
    disabled_uadec(night)
    config = tmp_path / "orquestador.yaml"
    config.write_text(
        "iec_list:\n  directory: sitio\n  notice: Transmisión interrumpida.\n  page_max_age_s: 30\n"
    )
    result = run("list", "render", "--db", str(night.store.path), "--difusores", str(REGISTRY),
                 "--config", str(config))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Transmisión interrumpida." in (tmp_path / "sitio" / "index.html").read_text()


def test_settings_file_errors_name_the_line_and_field(night: Night, tmp_path: Path) -> None:
    config = tmp_path / "orquestador.yaml"
    config.write_text("notify:\n  operators: [nadie]\n  smtp: {host: relay}\n")
    result = run("list", "render", "--db", str(night.store.path), "--difusores", str(REGISTRY),
                 "--config", str(config))  # fmt: skip
    assert result.returncode == 2
    assert f"{config}:2: notify.operators[0]: got 'nadie'" in result.stderr
    assert "notify.smtp.sender: got nothing (missing)" in result.stderr
