"""Writing the results CSV of one contest at one cut, exactly as PREP-FORMAT.md states.

Each acta's row has two possible texts (not received yet, final); both are
rendered once per night, so a cut's CSV is a join of ready-made rows plus a
fresh preamble and totals line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from prep_iac.cuts.actas import Acta, Status
from prep_iac.cuts.columns import (
    NO_VALUE,
    NOT_AVAILABLE,
    SIN_ACTA,
    TOTALS_COLUMNS,
    cut_time_label,
    row_columns,
    timestamp_label,
    truncated_percent,
)

LINE_END = "\r\n"
"""PREP CSVs come from Windows-era tooling; readers must accept both line ends."""


@dataclass(frozen=True, slots=True)
class Totals:
    """The totals line, computed from the rows a cut shows."""

    esperadas: int
    registradas: int
    fuera_catalogo: int
    capturadas: int
    contabilizadas: int
    inconsistentes: int
    no_contabilizadas: int
    lista_nominal_contabilizadas: int
    votos_con_especiales: int
    votos_sin_especiales: int

    @classmethod
    def of(cls, actas: Sequence[Acta], when: datetime) -> Totals:
        received = [a for a in actas if a.received_by(when)]
        counted = [a for a in received if a.status is Status.COUNTED]
        return cls(
            esperadas=len(actas),
            registradas=len(received),
            fuera_catalogo=sum(a.status is Status.OUTSIDE_CATALOGUE for a in received),
            capturadas=sum(a.status is not Status.OUTSIDE_CATALOGUE for a in received),
            contabilizadas=len(counted),
            inconsistentes=sum(a.status is Status.INCONSISTENT for a in received),
            no_contabilizadas=sum(a.status is not Status.COUNTED for a in received),
            lista_nominal_contabilizadas=sum(a.casilla.nominal_list for a in counted),
            votos_con_especiales=sum(a.total_calculado for a in counted),
            votos_sin_especiales=sum(a.total_calculado for a in counted if not a.casilla.special),
        )

    def values(self) -> list[str]:
        """Values in ``TOTALS_COLUMNS`` order."""
        return [
            str(self.esperadas),
            str(self.registradas),
            str(self.fuera_catalogo),
            str(self.capturadas),
            truncated_percent(self.capturadas, self.esperadas),
            str(self.contabilizadas),
            truncated_percent(self.contabilizadas, self.esperadas),
            truncated_percent(self.inconsistentes, self.esperadas),
            str(self.no_contabilizadas),
            str(self.lista_nominal_contabilizadas),
            str(self.votos_con_especiales),
            str(self.votos_sin_especiales),
            # Participation leaves casillas especiales out: they have no nominal list.
            truncated_percent(self.votos_sin_especiales, self.lista_nominal_contabilizadas),
        ]


def _line(values: Sequence[str | int]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=LINE_END).writerow(values)
    return buffer.getvalue()


class ResultsCsv:
    """Renders one contest's results CSV for any cut of the night."""

    def __init__(
        self,
        contest_name: str,
        entity_name: str,
        party_columns: tuple[str, ...],
        actas: tuple[Acta, ...],
        zone: tzinfo,
        offset_label: str,
    ) -> None:
        self.contest_name = contest_name
        self.actas = actas
        self.offset_label = offset_label
        self._zone = zone
        self._entity = entity_name.upper()
        self._header = _line(TOTALS_COLUMNS)
        self._row_header = _line(row_columns(party_columns))
        blanks = [NO_VALUE] * len(party_columns)
        self._pending = [_line(self._row(a, received=False, blanks=blanks)) for a in actas]
        self._final = [_line(self._row(a, received=True, blanks=blanks)) for a in actas]

    def render(self, when: datetime) -> str:
        """The CSV text a cut at ``when`` (aware) publishes."""
        local = when.astimezone(self._zone)
        parts = [
            _line([self.contest_name]),
            _line([cut_time_label(local, self.offset_label)]),
            self._header,
            _line(Totals.of(self.actas, when).values()),
            self._row_header,
        ]
        parts.extend(
            final if acta.received_by(when) else pending
            for acta, pending, final in zip(self.actas, self._pending, self._final, strict=True)
        )
        return "".join(parts)

    def _stamp(self, when: datetime | None) -> str:
        if when is None:
            return NOT_AVAILABLE
        return timestamp_label(when.astimezone(self._zone), self.offset_label)

    def _row(self, acta: Acta, *, received: bool, blanks: list[str]) -> list[str | int]:
        c = acta.casilla
        head: list[str | int] = [
            c.clave,
            acta.clave,
            int(c.clave[:2]),
            self._entity,
            c.district,
            c.section,
            c.number,
            c.kind,
            c.ext,
            1 if c.urban else 2,
            acta.tipo,
        ]
        catalogue: list[str | int] = [c.nominal_list]
        if not received:
            return [
                *head,
                *[NO_VALUE] * 4,
                *blanks,
                NO_VALUE,
                NO_VALUE,
                NO_VALUE,
                SIN_ACTA,
                *catalogue,
                NO_VALUE,
                "",
                0,
                "",
                "",
                NOT_AVAILABLE,
                NOT_AVAILABLE,
                NOT_AVAILABLE,
                "",
                "",
                "",
            ]
        return [
            *head,
            acta.boletas_sobrantes,
            acta.personas_votaron,
            acta.rep_votaron,
            acta.personas_votaron + acta.rep_votaron,
            *acta.votes,
            acta.no_registrados,
            acta.nulos,
            acta.total_asentado,
            acta.total_calculado,
            *catalogue,
            acta.representantes,
            acta.observaciones,
            acta.status.value,
            acta.mecanismo,
            acta.codigo,
            self._stamp(acta.collected),
            self._stamp(acta.captured),
            self._stamp(acta.verified),
            acta.origen,
            acta.digitalizacion,
            acta.tipo_documento,
        ]
