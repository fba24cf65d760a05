"""``build_memoria``: from log files to the whole memoria técnica (clause VI).

Writes into the output directory: ``memoria.html`` (self-contained, charts
inline), ``memoria.pdf`` (the same document, WeasyPrint), ``cifras.json``
(every figure, the files read and every unreadable line) and ``cifras/*.csv``,
and ``bitacoras.tar`` with its ``.sha256``. The work is laid out for two
cores: the logs are copied into the bitácoras (and their sums taken) in a thread
while DuckDB reads them, and the archive's own sum is taken while the charts and
the PDF, which run on one core, are drawn. So the report shows each log's sum,
and the archive's sum is in ``bitacoras.tar.sha256`` and ``cifras.json``.
"""

from __future__ import annotations

import csv
import importlib
import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel, Field

from prep_iac.memoria.bitacoras import ArchivedLogs, Bitacoras, archive_logs, seal_archive
from prep_iac.memoria.figures import VISIT_GAP_MINUTES, Figures, compute
from prep_iac.memoria.incidents import (
    BANS,
    FAILOVER,
    POWER,
    STORAGE,
    HostLogs,
    Period,
    in_days,
    notice_periods,
    read_host_log,
    read_incident_csv,
    silent_periods,
)
from prep_iac.memoria.ingest import AccessLogs, FileReading, Role
from prep_iac.models.election import Election

METRIC_NAMES = {
    "hits": "Solicitudes", "pages": "Páginas", "data": "Consultas de datos",
    "visits": "Visitas", "visitors": "Visitantes únicos", "bytes": "Bytes enviados",
}  # fmt: skip
CLASS_NAMES = {
    "reader": "Lectores", "bot": "Bots (por agente de usuario)",
    "blocked": "Bloqueadas (403)", "limited": "Limitadas (429)",
}  # fmt: skip
IEC_NAMES = {
    "strike": "periodo fallido (strike)", "disabled": "deshabilitado por el IEC",
    "manual-disable": "deshabilitado manualmente", "reinstated": "rehabilitado",
    "recovered": "recuperado", "reinstate-failed": "rehabilitación fallida",
    "period-not-attempted": "periodo sin intento del IEC",
}  # fmt: skip


class MemoriaRequest(BaseModel):
    """What a memoria is built from (the CLI's options, validated)."""

    election: Election
    access_logs: list[Path] = Field(min_length=1)
    normal_logs: list[Path] = []
    host_logs: list[Path] = []
    incident_csv: Path | None = None
    difusor: str | None = None
    difusor_name: str = "Difusor oficial"
    own_hosts: list[str] = []
    days: list[date] = []
    out: Path
    bitacoras: bool = True
    pdf: bool = True
    comments: str = ""

    # When results were meant to be on line (aware times): by default from the
    # election's publication start to the end of the last day.
    publication: tuple[datetime, datetime] | None = None

    def election_days(self) -> list[date]:
        day = self.election.election_day
        return sorted(self.days) if self.days else [day, day + timedelta(days=1)]

    def publication_window(self) -> tuple[datetime, datetime]:
        """The publication period within the days, in local wall-clock time (naive)."""
        tz, days = self.election.tz, self.election_days()
        first = datetime.combine(days[0], time(0))
        last = datetime.combine(days[-1] + timedelta(days=1), time(0))
        start, end = self.publication or (self.election.window_start, last.replace(tzinfo=tz))
        local = [w.astimezone(tz).replace(tzinfo=None) for w in (start, end)]
        return max(first, local[0]), min(last, local[1])


class MemoriaResult(BaseModel):
    outputs: list[Path]
    figures: Figures
    problems: list[str]
    skipped: int


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("prep_iac.memoria", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["miles"] = lambda n: f"{n:,.0f}" if isinstance(n, int | float) else n
    env.filters["mb"] = lambda n: f"{n / 1e6:,.1f} MB"
    env.filters["fecha"] = lambda d: d.strftime("%d/%m/%Y")
    env.filters["hora"] = lambda t: t.strftime("%d/%m/%Y %H:%M:%S")
    return env


def _charts(figures: Figures, election: Election) -> dict[str, str]:
    from prep_iac.memoria import charts

    hours = [b.start for b in figures.by_hour]
    tens = [b.start for b in figures.by_ten_minutes]
    made = {
        "hour_hits": charts.time_lines(
            "Solicitudes, páginas y consultas de datos por hora (lectores)", hours,
            {"solicitudes": [b.hits for b in figures.by_hour],
             "consultas de datos": [b.data for b in figures.by_hour],
             "páginas": [b.pages for b in figures.by_hour]}, "por hora",
        ),
        "hour_visitors": charts.time_lines(
            "Clientes distintos por hora (dirección + agente)", hours,
            {"visitantes": [b.visitors for b in figures.by_hour]}, "por hora",
        ),
        "hour_bytes": charts.time_lines(
            "Datos enviados por hora", hours,
            {"MB": [b.bytes / 1e6 for b in figures.by_hour]}, "MB",
        ),
        "ten_minutes": charts.time_lines(
            f"Cada 10 minutos (cortes cada {election.update_period_minutes} min)", tens,
            {"solicitudes": [b.hits for b in figures.by_ten_minutes],
             "visitantes": [b.visitors for b in figures.by_ten_minutes]}, "por 10 min",
        ),
        "status": charts.bars(
            "Respuestas por clase (todas las solicitudes)", list(figures.status_classes),
            {"solicitudes": list(figures.status_classes.values())}, "solicitudes",
        ),
        "ratios": "",
        "profile": "",
    }  # fmt: skip
    if figures.normal_days:
        labels = [METRIC_NAMES[r.metric] for r in figures.ratios]
        series = {
            day.strftime("%d/%m"): [r.ratio.get(day.isoformat()) or 0.0 for r in figures.ratios]
            for day in figures.election_days
        }
        made["ratios"] = charts.bars(
            "Elección frente al promedio normal (1× = un día normal)", labels, series,
            "veces el promedio", reference=1.0,
        )  # fmt: skip
        first = [b.hits for b in figures.by_hour[:24]]
        made["profile"] = charts.hour_profile(
            "Solicitudes por hora: día de la elección y día normal promedio",
            {f"{figures.election_days[0]:%d/%m}": first,
             "día normal promedio": figures.normal_hourly_profile}, "por hora",
        )  # fmt: skip
    return made


def _write_csvs(figures: Figures, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    tables: dict[str, list[dict[str, Any]]] = {
        "por_hora": [b.model_dump(mode="json") for b in figures.by_hour],
        "por_10_minutos": [b.model_dump(mode="json") for b in figures.by_ten_minutes],
        "dias": [d.model_dump(mode="json") for d in figures.days],
        "dias_normales": [d.model_dump(mode="json") for d in figures.normal_days],
        "codigos": [
            {"status": k, "hits": v} for k, v in sorted(figures.all_clients.statuses.items())
        ],
        "razones": [
            {"metric": r.metric, "normal_per_day": r.normal_per_day, "day": day,
             "election": r.election[day], "ratio": r.ratio[day]}
            for r in figures.ratios for day in r.election
        ],
    }  # fmt: skip
    written = []
    for name, rows in tables.items():
        path = directory / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            if rows:
                writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
        written.append(path)
    return written


def build_memoria(
    request: MemoriaRequest, progress: Callable[[str], None] = lambda _line: None
) -> MemoriaResult:
    """Read every log of ``request`` and write the memoria into ``request.out``."""
    out = request.out
    out.mkdir(parents=True, exist_ok=True)
    election = request.election
    tz = election.tz
    days = request.election_days()
    work = Path(tempfile.mkdtemp(prefix=".memoria-", dir=out))
    # matplotlib and WeasyPrint take a second to import: done while DuckDB reads.
    preload = threading.Thread(target=_preload, daemon=True)
    preload.start()
    with ThreadPoolExecutor(max_workers=1) as pool:
        archive: Future[ArchivedLogs] | None = None
        if request.bitacoras:
            archive = pool.submit(
                archive_logs, [*request.access_logs, *request.host_logs], out / "bitacoras.tar"
            )
        logs = AccessLogs(work, election.timezone)
        try:
            readings: list[FileReading] = []
            for path in request.access_logs:
                progress(f"reading {path}")
                readings.append(logs.add(path, Role.ELECTION))
            for path in request.normal_logs:
                progress(f"reading {path} (normal days)")
                readings.append(logs.add(path, Role.NORMAL))
            figures = compute(logs.con, days, election.timezone, request.own_hosts)
            start, end = request.publication_window()
            silent = silent_periods(logs.con, start, end)
        finally:
            logs.close()
            shutil.rmtree(work, ignore_errors=True)
        archived = archive.result() if archive is not None else None
        # The archive's own sum is taken on the core that the charts and the PDF leave free.
        sealed = pool.submit(seal_archive, out / "bitacoras.tar") if archived else None
        host = HostLogs()
        host_files: list[tuple[str, int]] = []
        for path in request.host_logs:
            before = host.lines
            read_host_log(path, host)
            host_files.append((str(path), host.lines - before))
        if request.incident_csv is not None:
            read_incident_csv(request.incident_csv, host, request.difusor)
        preload.join()
        problems = [e.message() for r in readings for e in r.examples]
        problems += [u.message() for u in host.unreadable]
        skipped = sum(r.bad for r in readings) + len(host.unreadable)
        events = [e for e in host.events if in_days(e.time, days, tz)]
        outages: list[Period] = sorted(
            [*notice_periods(host.activations, tz), *silent],
            key=lambda p: p.start.replace(tzinfo=None),
        )
        local = [p.model_copy(update={"start": p.start.replace(tzinfo=None),
                                      "end": p.end.replace(tzinfo=None) if p.end else None})
                 for p in outages]  # fmt: skip
        html = _environment().get_template("memoria.html.j2").render(
            election=election, difusor_name=request.difusor_name, figures=figures,
            generated_at=datetime.now(tz).strftime("%d/%m/%Y %H:%M"), readings=readings,
            host_files=host_files, skipped=skipped, problems=problems,
            charts=_charts(figures, election),
            metric_names=METRIC_NAMES, class_names=CLASS_NAMES, iec_names=IEC_NAMES,
            visit_gap=VISIT_GAP_MINUTES, outages=local,
            bans=[e for e in events if e.source in BANS],
            power=[e for e in events if e.source in POWER],
            storage=[e for e in events if e.source in STORAGE],
            failover=[e for e in events if e.source in FAILOVER],
            detections=[d for d in host.detections if in_days(d.time, days, tz)],
            iec=[e for e in host.iec if in_days(e.at, days, tz)],
            bitacoras=archived, comments=request.comments,
        )  # fmt: skip
        html_path = out / "memoria.html"
        html_path.write_text(html, encoding="utf-8")
        outputs = [html_path]
        if request.pdf:
            progress("rendering the PDF")
            outputs.append(out / "memoria.pdf")
            write_pdf(html, outputs[-1])
        bitacoras = (
            Bitacoras(**archived.model_dump(), sha256=sealed.result())
            if archived is not None and sealed is not None
            else None
        )
    figures_path = out / "cifras.json"
    figures_path.write_text(
        json.dumps(
            {
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "figures": figures.model_dump(mode="json"),
                "files": [
                    {"path": str(r.path), "role": r.role.value, "lines": r.lines,
                     "requests": r.requests, "skipped": r.bad}
                    for r in readings
                ],
                "skipped_lines": skipped,
                "problems": problems,
                "incidents": [p.model_dump(mode="json") for p in local],
                "bitacoras": bitacoras.model_dump(mode="json") if bitacoras else None,
            },
            ensure_ascii=False, indent=1,
        ),
        encoding="utf-8",
    )  # fmt: skip
    outputs += [figures_path, *_write_csvs(figures, out / "cifras")]
    if bitacoras is not None:
        outputs += [out / "bitacoras.tar", out / "bitacoras.tar.sha256"]
    return MemoriaResult(outputs=outputs, figures=figures, problems=problems, skipped=skipped)


def _preload() -> None:
    for module in ("prep_iac.memoria.charts", "weasyprint"):
        importlib.import_module(module)


def write_pdf(html: str, path: Path) -> None:
    """The HTML as PDF (WeasyPrint, with Debian's DejaVu fonts)."""
    from weasyprint import HTML

    HTML(string=html).write_pdf(path)
