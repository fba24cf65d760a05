"""The IEC's report of the night, from a store the real clause-III code filled:
periods confirmed, availability, strikes, disablement and propagation delays."""

from __future__ import annotations

import json
from pathlib import Path

from prep_iac.informe import write_night_reports
from prep_iac.informe.night import Night, percentile
from prep_iac.models.difusor import Registry
from prep_iac.models.election import Election

from .conftest import OPEN_LATE_S, OUTCOMES, PUSH_OFFSET_S, Traffic, push_duration, run_cli


def informe(night_store: Path, out: Path) -> Night:
    result = run_cli("informe", "--db", str(night_store), "--difusores",
                     str(Path(__file__).parent.parent / "fixtures" / "registry-ok.yaml"),
                     "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return Night.model_validate(json.loads((out / "informe.json").read_text()))


def test_each_difusor_has_its_periods_availability_strikes_and_disablement(
    night_store: Path, tmp_path: Path
) -> None:
    night = informe(night_store, tmp_path)
    by_id = {d.difusor: d for d in night.difusores}
    uadec, vanguardia = by_id["uadec"], by_id["vanguardia"]
    assert uadec.verdicts["success"] == 2 and uadec.verdicts["failed"] == 3
    assert uadec.availability == 40.0  # 2 of 5 judged periods
    assert (uadec.strikes, uadec.max_strikes, uadec.status) == (3, 3, "disabled")
    assert [e.kind for e in uadec.lifecycle] == ["disabled"]
    assert uadec.lifecycle[0].period == night.periods[4].start  # the third failed period
    assert vanguardia.verdicts == {"success": len(OUTCOMES)} and vanguardia.availability == 100.0
    assert len(uadec.nodes) == 2 and len(vanguardia.nodes) == 1
    html = (tmp_path / "informe.html").read_text()
    assert html.count("<svg") == 3 and "deshabilitado (tres periodos)" in html


def test_propagation_delay_runs_from_the_cuts_arrival_to_the_last_nodes_confirmation(
    night_store: Path, tmp_path: Path
) -> None:
    night = informe(night_store, tmp_path)
    expected = [PUSH_OFFSET_S - OPEN_LATE_S + push_duration("vanguardia", i) for i in range(6)]
    vanguardia = next(d for d in night.difusores if d.difusor == "vanguardia")
    assert [p.delays["vanguardia"] for p in night.periods] == expected
    assert vanguardia.delay is not None
    assert (vanguardia.delay.p50, vanguardia.delay.p95, vanguardia.delay.max) == (
        expected[2], expected[5], expected[5],  # nearest rank: 3rd and 6th of six
    )  # fmt: skip
    # uadec confirmed the first two cuts on both nodes, never the later ones.
    assert [sorted(p.delays) for p in night.periods][:3] == [
        ["uadec", "vanguardia"],
        ["uadec", "vanguardia"],
        ["vanguardia"],
    ]
    assert night.delay is not None and night.delay.count == 8
    assert night.delay.max == max(expected)


def test_percentiles_use_the_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile([float(v) for v in range(1, 21)], 0.95) == 19.0
    assert percentile([7.0], 0.95) == 7.0


def test_night_reports_write_the_informe_and_each_difusors_memoria(
    night_store: Path, traffic: Traffic, registry: Registry, election: Election, tmp_path: Path
) -> None:
    small = tmp_path / "prep-access.log"
    with traffic.json_log.open() as handle:
        small.write_text("".join(next(handle) for _ in range(500)))
    written = write_night_reports(
        night_store, tmp_path / "noche", election, registry, access_logs={"uadec": [small]}
    )
    names = {p.relative_to(tmp_path / "noche").as_posix() for p in written}
    assert {"informe/informe.html", "memoria-uadec/memoria.html", "memoria-uadec/memoria.pdf",
            "memoria-uadec/bitacoras.tar"} <= names  # fmt: skip
    html = (tmp_path / "noche" / "memoria-uadec" / "memoria.html").read_text()
    # The memoria's incident section reads the same night's events (uadec's three strikes).
    assert html.count("periodo fallido (strike)") == 3
    # It covers the store's night: its day, and its six periods as the publication window,
    # in which these logs (the small hours of 1 July) have no request at all.
    document = json.loads((tmp_path / "noche" / "memoria-uadec" / "cifras.json").read_text())
    assert document["figures"]["election_days"] == ["2018-07-01"]
    silent = [
        (i["start"], i["end"]) for i in document["incidents"] if "sin solicitudes" in i["what"]
    ]
    assert silent == [("2018-07-01T18:00:00", "2018-07-01T19:00:00")]
