"""Reading PREP cuts, synthetic or real: the cut time and the results CSV.

Accepts a cut directory, a download zip (``YYYYMMDD_HHMM_PREP_<ELECCION>_<ENT>.zip``)
or a results CSV (``<ENT>_<ELECCION>_<YYYY>.csv``). The acta header is found
by the ``CLAVE_CASILLA`` column, never by a line count (real preambles have had
3 to 6 lines); ``,`` and ``|`` separators and UTF-8 or latin-1 files are read.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prep_iac.cuts.columns import (
    CUT_TIME_FORMAT,
    CUT_TIME_RE,
    HEADER_MARKER,
    NO_VALUE,
    NOT_AVAILABLE,
    ROW_HEAD,
    ROW_TAIL,
    SIN_ACTA,
    TIMESTAMP_FORMAT,
    TIMESTAMP_RE,
    TOTALS_COLUMNS,
)

ZIP_RE = re.compile(
    r"^(?P<cut>\d{8}_\d{4}b?)_PREP(?:_(?P<contest>[A-Z_]+?))?(?:_(?P<entity>[A-Z]{2,6}))?\.zip$"
)
RESULTS_CSV_RE = re.compile(r"^(?P<entity>[A-Z]{2,6})_(?P<contest>[A-Z_]+)_(?P<year>\d{4})\.csv$")
TOTALS_MARKER = TOTALS_COLUMNS[0]


class CutFormatError(ValueError):
    """A cut, zip or CSV that lacks what a PREP publication must state; names the file."""


class CutTime(BaseModel):
    """When a cut says it was taken, as its results CSV states it."""

    model_config = ConfigDict(frozen=True)

    local: datetime
    """Local wall-clock time, naive: the CSV states no zone, only an offset label."""
    offset_label: str
    cut_id: str
    contest: str
    """The contest as the preamble names it, e.g. AYUNTAMIENTOS."""
    contest_code: str | None
    """From the file name (AYUN, GOB, DIP_LOC) when it follows the naming rule."""
    source: str


class Totals(BaseModel):
    """The totals line; percentages are exact decimals as written (4 places, truncated)."""

    model_config = ConfigDict(frozen=True)

    actas_esperadas: int
    actas_registradas: int
    actas_fuera_catalogo: int
    actas_capturadas: int
    porcentaje_actas_capturadas: Decimal
    actas_contabilizadas: int
    porcentaje_actas_contabilizadas: Decimal
    porcentaje_actas_con_inconsistencias: Decimal
    actas_no_contabilizadas: int
    lista_nominal_actas_contabilizadas: int
    total_votos_c_cs: int
    total_votos_s_cs: int
    porcentaje_participacion_ciudadana: Decimal


class ActaRow(BaseModel):
    """One acta row. Vote fields are None while the acta has not been received."""

    model_config = ConfigDict(frozen=True)

    clave_casilla: str
    clave_acta: str
    id_entidad: int
    entidad: str
    id_distrito_local: int
    seccion: int
    id_casilla: int
    tipo_casilla: str
    ext_contigua: int
    ubicacion_casilla: int
    tipo_acta: str
    total_boletas_sobrantes: int | None
    total_personas_votaron: int | None
    total_rep_partido_ci_votaron: int | None
    total_votos_sacados: int | None
    votes: dict[str, int | None]
    no_registrados: int | None
    nulos: int | None
    total_votos_asentado: int | None
    total_votos_calculados: int | None
    received: bool
    lista_nominal: int | None
    representantes: int | None
    observaciones: str
    contabilizada: Literal[0, 1, 2]
    mecanismos_traslado: Literal["D", "F", "I", ""]
    codigo_integridad: str
    fecha_hora_acopio: datetime | None
    fecha_hora_captura: datetime | None
    fecha_hora_verificacion: datetime | None
    origen: Literal["CASILLA", "CATD", ""]
    digitalizacion: Literal["MOVIL", "ESCANER", ""]
    tipo_documento: str
    values: dict[str, str]
    """Every column's text as written."""


class ResultsFile(BaseModel):
    """A parsed results CSV: its cut time, totals, header and rows."""

    model_config = ConfigDict(frozen=True)

    cut: CutTime
    preamble: list[str]
    totals_columns: list[str]
    totals: Totals
    columns: list[str]
    party_columns: list[str]
    rows: list[ActaRow]


@dataclass(frozen=True, slots=True)
class _Source:
    """A results CSV's text, with how to name it in errors and the cut id its zip states."""

    description: str
    zip_cut: str | None
    name: str
    stream: io.TextIOBase


def _load_csv(path: Path) -> _Source:
    """The results CSV at ``path``, in the zip at ``path``, or in a zip nested in it."""
    if path.suffix.lower() != ".zip":
        if not path.is_file():
            raise CutFormatError(f"{path}: no such results CSV or download zip")
        return _Source(str(path), None, path.name, _decode(path.read_bytes()))
    try:
        with zipfile.ZipFile(path) as archive:
            return _csv_in_zip(archive, str(path), path.name)
    except (zipfile.BadZipFile, OSError) as exc:
        raise CutFormatError(f"{path}: not a readable zip ({exc})") from None


def _csv_in_zip(archive: zipfile.ZipFile, description: str, zip_name: str) -> _Source:
    names = archive.namelist()
    match = ZIP_RE.match(Path(zip_name).name)
    csvs = [n for n in names if RESULTS_CSV_RE.match(Path(n).name)]
    if csvs:
        return _Source(
            f"{description}!{csvs[0]}",
            match["cut"] if match else None,
            Path(csvs[0]).name,
            _decode(archive.read(csvs[0])),
        )
    # Some bodies nest one zip per election in a cut-level YYYYMMDD_HHMM_PREP.zip.
    nested = [n for n in names if ZIP_RE.match(Path(n).name)]
    if nested:
        with zipfile.ZipFile(io.BytesIO(archive.read(nested[0]))) as inner:
            return _csv_in_zip(inner, f"{description}!{nested[0]}", nested[0])
    raise CutFormatError(
        f"{description}: no results CSV (<ENT>_<ELECCION>_<YYYY>.csv) among {names}"
    )


def _decode(data: bytes) -> io.TextIOBase:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return io.StringIO(text, newline=None)


def _results_sources(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    zips = sorted(p for p in path.iterdir() if ZIP_RE.match(p.name))
    csvs = sorted(p for p in path.iterdir() if RESULTS_CSV_RE.match(p.name))
    if not zips and not csvs:
        raise CutFormatError(
            f"{path}: no download zip (YYYYMMDD_HHMM_PREP_<ELECCION>_<ENT>.zip)"
            " or results CSV in the cut"
        )
    return zips or csvs


def _delimiter(line: str) -> str:
    return "|" if line.count("|") > line.count(",") else ","


def _split_line(line: str) -> list[str]:
    return next(csv.reader([line], delimiter=_delimiter(line)))


def _cut_time(source: _Source, preamble: list[str]) -> CutTime:
    cells = [cell.strip() for line in preamble for cell in _split_line(line) if cell.strip()]
    if not cells:
        raise CutFormatError(
            f"{source.description}: malformed preamble: no election name before the header"
        )
    for cell in cells:
        match = CUT_TIME_RE.match(cell)
        if match:
            local = datetime.strptime(match[1], CUT_TIME_FORMAT)
            named = RESULTS_CSV_RE.match(source.name)
            return CutTime(
                local=local,
                offset_label=match[2],
                cut_id=source.zip_cut or local.strftime("%Y%m%d_%H%M"),
                contest=cells[0],
                contest_code=named["contest"] if named else None,
                source=source.description,
            )
    raise CutFormatError(
        f"{source.description}: no cut time in the preamble"
        f" (a line 'DD/MM/YYYY HH:MM (UTC-6)'); found {cells!r}"
    )


def _head(description: str, stream: io.TextIOBase) -> tuple[list[str], str]:
    """Lines before the acta header, and the header line; stops reading there."""
    before: list[str] = []
    for line in stream:
        if HEADER_MARKER in line:
            return before, line.rstrip("\r\n")
        if line.strip():
            before.append(line.rstrip("\r\n"))
    raise CutFormatError(f"{description}: no acta header (a line with {HEADER_MARKER})")


def _preamble(lines: list[str]) -> list[str]:
    """The lines before the totals header (all of them when there is no totals block)."""
    for index, line in enumerate(lines):
        if TOTALS_MARKER in line:
            return lines[:index]
    return lines


def read_cut_time(path: Path | str) -> CutTime:
    """The cut time a cut directory, download zip or results CSV states.

    In a directory every download zip is read, and they must agree: a cut
    that mixes two cut times is malformed.
    """
    times = []
    for source in _results_sources(Path(path)):
        csv_file = _load_csv(source)
        before, _ = _head(csv_file.description, csv_file.stream)
        times.append(_cut_time(csv_file, _preamble(before)))
    distinct = {(t.local, t.offset_label) for t in times}
    if len(distinct) > 1:
        stated = ", ".join(f"{t.source}: {t.local:%d/%m/%Y %H:%M}" for t in times)
        raise CutFormatError(f"{path}: files of the cut state different cut times ({stated})")
    return times[0]


def read_results_csv(path: Path | str) -> ResultsFile:
    """Parse a results CSV (or the one in a download zip): cut time, totals and every row."""
    source = _load_csv(Path(path))
    where = source.description
    before, header = _head(where, source.stream)
    columns = [c.strip() for c in _split_line(header)]
    preamble = _preamble(before)
    cut = _cut_time(source, preamble)
    totals_lines = before[len(preamble) :]
    if len(totals_lines) < 2:
        raise CutFormatError(f"{where}: no totals header and line ({TOTALS_MARKER}, ...)")
    totals_columns = _split_line(totals_lines[0])
    totals_values = _split_line(totals_lines[1])
    if len(totals_columns) != len(totals_values):
        raise CutFormatError(
            f"{where}: totals line has {len(totals_values)} values"
            f" for {len(totals_columns)} columns"
        )
    totals = Totals(**{c.lower(): v for c, v in zip(totals_columns, totals_values, strict=True)})
    parties = _party_columns(where, columns)
    rows = []
    for index, cells in enumerate(csv.reader(source.stream, delimiter=_delimiter(header)), 1):
        if not cells:
            continue
        if len(cells) != len(columns):
            raise CutFormatError(
                f"{where}: acta row {index} has {len(cells)} values for {len(columns)} columns"
            )
        rows.append(_row(dict(zip(columns, cells, strict=True)), parties))
    return ResultsFile(
        cut=cut,
        preamble=preamble,
        totals_columns=totals_columns,
        totals=totals,
        columns=columns,
        party_columns=parties,
        rows=rows,
    )


def _party_columns(description: str, columns: list[str]) -> list[str]:
    missing = [c for c in (*ROW_HEAD, *ROW_TAIL) if c not in columns]
    if missing:
        raise CutFormatError(f"{description}: acta header lacks {', '.join(missing)}")
    return columns[columns.index(ROW_HEAD[-1]) + 1 : columns.index(ROW_TAIL[0])]


def _number(text: str) -> int | None:
    return None if text in (NO_VALUE, "", SIN_ACTA) else int(text)


def _timestamp(text: str) -> datetime | None:
    if text in (NOT_AVAILABLE, ""):
        return None
    match = TIMESTAMP_RE.match(text)
    if not match:
        raise ValueError(f"timestamp {text!r} is not 'DD/MM/YYYY HH:MM:SS (UTC-6)' or N/A")
    return datetime.strptime(match[1], TIMESTAMP_FORMAT)


def _row(values: dict[str, str], parties: list[str]) -> ActaRow:
    fields: dict[str, object] = {c.lower(): values[c] for c in (*ROW_HEAD, *ROW_TAIL)}
    for name in (
        "total_boletas_sobrantes",
        "total_personas_votaron",
        "total_rep_partido_ci_votaron",
        "total_votos_sacados",
        "no_registrados",
        "nulos",
        "total_votos_asentado",
        "total_votos_calculados",
        "lista_nominal",
        "representantes",
    ):
        fields[name] = _number(values[name.upper()])
    for name in ("fecha_hora_acopio", "fecha_hora_captura", "fecha_hora_verificacion"):
        fields[name] = _timestamp(values[name.upper()])
    fields["contabilizada"] = int(values["CONTABILIZADA"])
    fields["received"] = values["TOTAL_VOTOS_CALCULADOS"] != SIN_ACTA
    fields["votes"] = {p: _number(values[p]) for p in parties}
    fields["values"] = values
    return ActaRow.model_validate(fields)
