"""The results CSV layout shared by the generator and the reader (PREP-FORMAT.md).

One place states the column names and the value formats (truncated
percentages, ``(UTC-6)`` timestamps), so that what the generator writes and
what the reader expects cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import datetime

HEADER_MARKER = "CLAVE_CASILLA"
"""Readers find the acta header by this column, never by a line count."""

TOTALS_COLUMNS: tuple[str, ...] = (
    "ACTAS_ESPERADAS",
    "ACTAS_REGISTRADAS",
    "ACTAS_FUERA_CATALOGO",
    "ACTAS_CAPTURADAS",
    "PORCENTAJE_ACTAS_CAPTURADAS",
    "ACTAS_CONTABILIZADAS",
    "PORCENTAJE_ACTAS_CONTABILIZADAS",
    "PORCENTAJE_ACTAS_CON_INCONSISTENCIAS",
    "ACTAS_NO_CONTABILIZADAS",
    "LISTA_NOMINAL_ACTAS_CONTABILIZADAS",
    "TOTAL_VOTOS_C_CS",
    "TOTAL_VOTOS_S_CS",
    "PORCENTAJE_PARTICIPACION_CIUDADANA",
)

ROW_HEAD: tuple[str, ...] = (
    "CLAVE_CASILLA",
    "CLAVE_ACTA",
    "ID_ENTIDAD",
    "ENTIDAD",
    "ID_DISTRITO_LOCAL",
    "SECCION",
    "ID_CASILLA",
    "TIPO_CASILLA",
    "EXT_CONTIGUA",
    "UBICACION_CASILLA",
    "TIPO_ACTA",
    "TOTAL_BOLETAS_SOBRANTES",
    "TOTAL_PERSONAS_VOTARON",
    "TOTAL_REP_PARTIDO_CI_VOTARON",
    "TOTAL_VOTOS_SACADOS",
)
"""Columns before the party and coalition columns."""

ROW_TAIL: tuple[str, ...] = (
    "NO_REGISTRADOS",
    "NULOS",
    "TOTAL_VOTOS_ASENTADO",
    "TOTAL_VOTOS_CALCULADOS",
    "LISTA_NOMINAL",
    "REPRESENTANTES",
    "OBSERVACIONES",
    "CONTABILIZADA",
    "MECANISMOS_TRASLADO",
    "CODIGO_INTEGRIDAD",
    "FECHA_HORA_ACOPIO",
    "FECHA_HORA_CAPTURA",
    "FECHA_HORA_VERIFICACION",
    "ORIGEN",
    "DIGITALIZACION",
    "TIPO_DOCUMENTO",
)
"""Columns after the party and coalition columns."""

SIN_ACTA = "SIN ACTA"
"""Vote-total value of an acta not received yet."""
NOT_AVAILABLE = "N/A"
"""Timestamp value of an acta not received yet."""
NO_VALUE = "-"
"""Vote fields of an acta not received yet."""

CASILLA_TYPES = "BCSEMAP"
MECANISMOS = ("D", "F", "I", "")
ORIGENES = ("CASILLA", "CATD")
DIGITALIZACIONES = ("MOVIL", "ESCANER")

CLAVE_CASILLA_RE = re.compile(r"^(\d{2})(\d{4})([BCSEMAP])(\d{2})(\d{2})$")
CUT_TIME_RE = re.compile(r"^(\d{2}/\d{2}/\d{4} \d{2}:\d{2}) \((UTC[+-]\d{1,2})\)$")
TIMESTAMP_RE = re.compile(r"^(\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}) \((UTC[+-]\d{1,2})\)$")
CUT_TIME_FORMAT = "%d/%m/%Y %H:%M"
TIMESTAMP_FORMAT = "%d/%m/%Y %H:%M:%S"


def row_columns(party_columns: tuple[str, ...]) -> tuple[str, ...]:
    """Every acta column, in order, for a ballot's party and coalition columns."""
    return (*ROW_HEAD, *party_columns, *ROW_TAIL)


def truncated_percent(part: int, whole: int) -> str:
    """``part / whole`` as a percentage with 4 decimals, truncated as PREP does."""
    if whole <= 0:
        return "0.0000"
    scaled = part * 1_000_000 // whole
    return f"{scaled // 10_000}.{scaled % 10_000:04d}"


def cut_time_label(local: datetime, offset_label: str) -> str:
    """``01/07/2018 20:00 (UTC-6)`` from a local wall-clock time."""
    return f"{local:{CUT_TIME_FORMAT}} ({offset_label})"


def timestamp_label(local: datetime, offset_label: str) -> str:
    """``01/07/2018 20:03:17 (UTC-6)`` from a local wall-clock time."""
    return f"{local:{TIMESTAMP_FORMAT}} ({offset_label})"
