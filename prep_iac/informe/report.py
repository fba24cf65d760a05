"""The IEC's report of the night: Spanish HTML with inline charts, and its figures as JSON.

``write_informe`` renders one store's night; ``write_night_reports`` writes the
IEC's report and, for every difusor whose logs are given, its memoria técnica,
as the drill does for its own night.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from prep_iac.informe.night import Night, open_store, read_night
from prep_iac.memoria import charts
from prep_iac.memoria.report import MemoriaRequest, build_memoria
from prep_iac.models.difusor import Registry
from prep_iac.models.election import Election

VERDICT_COLORS = {
    "none": "#e6e6e6", "success": "#3a9a5b", "failed": "#c0392b", "disabled": "#3d3d3d",
    "not-attempted": "#b8c7d9", "no-cut": "#d9d2b8", "skipped": "#f0c36d", "pending": "#9b9b9b",
}  # fmt: skip
VERDICT_NAMES = {
    "none": "sin veredicto", "success": "confirmado", "failed": "fallido",
    "disabled": "deshabilitado", "not-attempted": "sin intento del IEC", "no-cut": "sin corte",
    "skipped": "no juzgado", "pending": "pendiente",
}  # fmt: skip
LIFECYCLE_NAMES = {
    "disabled": "deshabilitado (tres periodos)", "manual-disable": "deshabilitado manualmente",
    "reinstated": "rehabilitado", "reinstate-failed": "rehabilitación fallida",
    "recovered": "recuperado",
}  # fmt: skip


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("prep_iac.informe", "templates"), autoescape=True,
        undefined=StrictUndefined, keep_trailing_newline=True,
    )  # fmt: skip
    return env


def _charts(night: Night, election: Election) -> dict[str, str]:
    tz = election.tz
    labels = [p.start.astimezone(tz).strftime("%H:%M") for p in night.periods]
    made = {
        "timeline": charts.grid(
            "Veredicto por periodo y difusor", [d.difusor for d in night.difusores], labels,
            [[p.verdicts.get(d.difusor, "none") for p in night.periods] for d in night.difusores],
            VERDICT_COLORS, VERDICT_NAMES,
        ),
        "availability": charts.bars(
            "Disponibilidad por difusor (% de periodos juzgados confirmados)",
            [d.difusor for d in night.difusores],
            {"disponibilidad": [d.availability or 0.0 for d in night.difusores]}, "%",
        ),
        "delays": "",
    }  # fmt: skip
    measured = [p for p in night.periods if p.delay is not None]
    if measured:
        times = [p.start.astimezone(tz).replace(tzinfo=None) for p in measured]
        made["delays"] = charts.time_lines(
            "Retraso de propagación (llegada del corte → confirmado en todos los nodos)",
            times,
            {"p50": [p.delay.p50 for p in measured if p.delay],
             "p95": [p.delay.p95 for p in measured if p.delay],
             "máximo": [p.delay.max for p in measured if p.delay]}, "segundos",
        )  # fmt: skip
    return made


def write_informe(
    store_path: Path, out_dir: Path, election: Election, registry: Registry | None = None
) -> list[Path]:
    """``informe.html`` and ``informe.json`` for the night recorded in ``store_path``."""
    with open_store(store_path) as store:
        night = read_night(store, registry, election.id)
    out_dir.mkdir(parents=True, exist_ok=True)
    tz = election.tz
    html = _environment().get_template("informe.html.j2").render(
        night=night, election=election, charts=_charts(night, election),
        verdict_names=VERDICT_NAMES, lifecycle_names=LIFECYCLE_NAMES,
        local=lambda t: t.astimezone(tz).strftime("%d/%m/%Y %H:%M:%S") if t else "—",
        generated_at=datetime.now(tz).strftime("%d/%m/%Y %H:%M"), store=store_path,
    )  # fmt: skip
    html_path = out_dir / "informe.html"
    html_path.write_text(html, encoding="utf-8")
    json_path = out_dir / "informe.json"
    json_path.write_text(night.model_dump_json(indent=1), encoding="utf-8")
    return [html_path, json_path]


def write_night_reports(
    store_path: Path, out_dir: Path, election: Election, registry: Registry | None = None,
    access_logs: Mapping[str, Sequence[Path]] | None = None,
    host_logs: Mapping[str, Sequence[Path]] | None = None,
    days: Sequence[date] = (),
) -> list[Path]:  # fmt: skip
    """The IEC's report in ``out_dir/informe/`` and, per difusor with access logs, its
    memoria in ``out_dir/memoria-<difusor>/`` (incidents from the same store's events).

    The memorias cover the night the store recorded: its periods' local days
    (unless ``days`` says otherwise) and, as publication window, its first
    period's start to its last period's end.
    """
    written = write_informe(store_path, out_dir / "informe", election, registry)
    with open_store(store_path) as store:
        periods = store.periods()
    window = (periods[0].start, periods[-1].end) if periods else None
    night_days = sorted(
        {when.astimezone(election.tz).date() for p in periods for when in (p.start, p.end)}
    )
    names = {d.id: d.legal_name for d in registry.difusores} if registry else {}
    incidents = out_dir / "informe" / "incidencias.csv"
    if access_logs:
        _export_events(store_path, incidents)
        written.append(incidents)
    for difusor, logs in (access_logs or {}).items():
        if not logs:
            continue
        result = build_memoria(
            MemoriaRequest(
                election=election, access_logs=list(logs),
                host_logs=list((host_logs or {}).get(difusor, [])), incident_csv=incidents,
                difusor=difusor, difusor_name=names.get(difusor, difusor),
                days=list(days) or night_days, publication=window,
                out=out_dir / f"memoria-{difusor}",
            )
        )  # fmt: skip
        written += result.outputs
    return written


def _export_events(store_path: Path, path: Path) -> None:
    """The store's events in the CSV layout of ``prep-iac events --format csv``."""
    import csv

    with open_store(store_path) as store:
        events = store.events()
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["at", "kind", "difusor", "period", "detail"])
        for event in events:
            writer.writerow([
                event.at.isoformat(), event.kind, event.difusor or "",
                event.period.isoformat() if event.period else "",
                json.dumps(event.detail, ensure_ascii=False, sort_keys=True),
            ])  # fmt: skip
