"""Result JSON per entity, municipality, district, section and casilla of one contest.

Paths follow the 2018 national layout, ``assets/JSON/<ELECCION>/<NIVEL>/<id>.json``.
Bodies carry no cut time, so a place whose actas did not change renders the
same bytes; the writer stamps ``corte_actualizacion`` (see ``prep_iac.cuts``).
Renders are cached by how many of the place's actas were received: the sets
of received actas at two cut times are nested, so equal counts mean equal
content.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from prep_iac.cuts.actas import Acta, Status
from prep_iac.cuts.ballot import Candidacy
from prep_iac.cuts.columns import NOT_AVAILABLE, timestamp_label, truncated_percent
from prep_iac.cuts.geography import Geography

PENDING = "sin acta"
STATE_NAMES = {
    Status.COUNTED: "contabilizada",
    Status.INCONSISTENT: "no contabilizada",
    Status.OUTSIDE_CATALOGUE: "fuera de catálogo",
    Status.MISSING: PENDING,
}


def json_bytes(payload: object) -> bytes:
    """Compact UTF-8 JSON, as a built site ships it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(slots=True)
class Tally:
    """Counts and votes of the counted actas of a set of casillas."""

    expected: int = 0
    received: int = 0
    counted: int = 0
    nominal_list: int = 0
    votes: list[int] = field(default_factory=list)
    no_registrados: int = 0
    nulos: int = 0

    def add_acta(self, acta: Acta, received: bool) -> None:
        self.expected += 1
        if not received:
            return
        self.received += 1
        if acta.status is not Status.COUNTED:
            return
        self.counted += 1
        if not acta.casilla.special:
            self.nominal_list += acta.casilla.nominal_list
        self._add_votes(acta.votes, acta.no_registrados, acta.nulos)

    def add(self, other: Tally) -> None:
        self.expected += other.expected
        self.received += other.received
        self.counted += other.counted
        self.nominal_list += other.nominal_list
        if other.votes:
            self._add_votes(other.votes, other.no_registrados, other.nulos)

    def _add_votes(self, votes: Sequence[int], no_registrados: int, nulos: int) -> None:
        self.votes = (
            [a + b for a, b in zip(self.votes, votes, strict=True)] if self.votes else list(votes)
        )
        self.no_registrados += no_registrados
        self.nulos += nulos

    def payload(self, columns: Sequence[str]) -> dict[str, object]:
        votes = self.votes or [0] * len(columns)
        total = sum(votes) + self.no_registrados + self.nulos
        return {
            "actas": {
                "esperadas": self.expected,
                "registradas": self.received,
                "contabilizadas": self.counted,
                "porcentaje_contabilizadas": truncated_percent(self.counted, self.expected),
            },
            "lista_nominal_actas_contabilizadas": self.nominal_list,
            "votos": dict(zip(columns, votes, strict=True)),
            "porcentajes": {
                c: truncated_percent(v, total) for c, v in zip(columns, votes, strict=True)
            },
            "no_registrados": self.no_registrados,
            "nulos": self.nulos,
            "total": total,
        }


class ContestPlaces:
    """Renders every result JSON of one contest for any cut of the night."""

    def __init__(
        self,
        code: str,
        geography: Geography,
        columns: tuple[str, ...],
        actas: tuple[Acta, ...],
        candidacies: tuple[Candidacy, ...],
        zone: tzinfo,
        offset_label: str,
    ) -> None:
        self.code = code
        self._geo = geography
        self._columns = columns
        self._actas = actas
        self._zone = zone
        self._label = offset_label
        self._by_section: dict[int, list[Acta]] = {}
        for acta in actas:
            self._by_section.setdefault(acta.casilla.section, []).append(acta)
        self._candidacies: dict[int, list[dict[str, str]]] = {}
        for cand in candidacies:
            self._candidacies.setdefault(cand.race.id, []).append(
                {"partido": cand.party, "propietario": cand.owner, "suplente": cand.substitute}
            )
        self._casilla_bodies = {
            a.clave: (self._casilla(a, received=False), self._casilla(a, received=True))
            for a in actas
        }
        self._section_cache: dict[int, tuple[int, Tally, bytes]] = {}
        self._root = f"assets/JSON/{code}"

    def render(self, when: datetime) -> dict[str, bytes]:
        """Relative path to JSON body (without ``corte_actualizacion``) at ``when``."""
        files: dict[str, bytes] = {}
        section_tallies: dict[int, Tally] = {}
        for section in self._geo.sections:
            actas = self._by_section[section.number]
            flags = [a.received_by(when) for a in actas]
            received = sum(flags)
            cached = self._section_cache.get(section.number)
            if cached is None or cached[0] != received:
                tally = Tally()
                for acta, flag in zip(actas, flags, strict=True):
                    tally.add_acta(acta, flag)
                body = self._section(
                    section.number, section.municipality, section.district, actas, flags, tally
                )
                cached = (received, tally, body)
                self._section_cache[section.number] = cached
            section_tallies[section.number] = cached[1]
            files[f"{self._root}/seccion/{section.number:04d}.json"] = cached[2]
            for acta, flag in zip(actas, flags, strict=True):
                files[f"{self._root}/casilla/{acta.casilla.clave}.json"] = self._casilla_bodies[
                    acta.clave
                ][flag]

        municipality_race = self.code == "AYUN"
        for m in self._geo.municipalities:
            tally = _sum(section_tallies[s] for s in m.sections)
            extra: dict[str, object] = {"secciones": list(m.sections)}
            files[f"{self._root}/municipio/{m.id:03d}.json"] = self._area(
                "municipio",
                m.id,
                m.name,
                tally,
                extra,
                self._candidacies.get(m.id) if municipality_race else None,
            )
        district_race = self.code == "DIP_LOC"
        for d in self._geo.districts:
            tally = _sum(section_tallies[s] for s in d.sections)
            extra = {"cabecera": d.head, "secciones": list(d.sections)}
            files[f"{self._root}/distrito/{d.id:02d}.json"] = self._area(
                "distrito",
                d.id,
                d.name,
                tally,
                extra,
                self._candidacies.get(d.id) if district_race else None,
            )
        total = _sum(section_tallies.values())
        files[f"{self._root}/entidad.json"] = self._area(
            "entidad",
            self._geo.entity.id,
            self._geo.entity.name,
            total,
            {"municipios": [m.name for m in self._geo.municipalities]},
            self._candidacies.get(1) if self.code == "GOB" else None,
        )
        return files

    def _area(
        self,
        level: str,
        ident: int,
        name: str,
        tally: Tally,
        extra: Mapping[str, object],
        candidacies: list[dict[str, str]] | None,
    ) -> bytes:
        payload: dict[str, object] = {
            "eleccion": self.code,
            "nivel": level,
            "id": ident,
            "nombre": name,
        }
        payload.update(tally.payload(self._columns))
        if candidacies is not None:
            payload["candidaturas"] = candidacies
        payload.update(extra)
        return json_bytes(payload)

    def _section(
        self,
        number: int,
        municipality: int,
        district: int,
        actas: list[Acta],
        flags: list[bool],
        tally: Tally,
    ) -> bytes:
        payload: dict[str, object] = {
            "eleccion": self.code,
            "nivel": "seccion",
            "id": number,
            "municipio": municipality,
            "distrito": district,
        }
        payload.update(tally.payload(self._columns))
        payload["casillas"] = [
            {
                "clave": a.casilla.clave,
                "tipo": a.casilla.kind,
                "estado": STATE_NAMES[a.status] if flag else PENDING,
                "total": a.total_calculado if flag else None,
            }
            for a, flag in zip(actas, flags, strict=True)
        ]
        return json_bytes(payload)

    def _stamp(self, when: datetime | None) -> str:
        return (
            NOT_AVAILABLE
            if when is None
            else timestamp_label(when.astimezone(self._zone), self._label)
        )

    def _casilla(self, acta: Acta, *, received: bool) -> bytes:
        c = acta.casilla
        payload: dict[str, object] = {
            "eleccion": self.code,
            "nivel": "casilla",
            "clave_casilla": c.clave,
            "clave_acta": acta.clave,
            "seccion": c.section,
            "municipio": c.municipality,
            "distrito": c.district,
            "tipo_casilla": c.kind,
            "id_casilla": c.number,
            "ext_contigua": c.ext,
            "ubicacion": "urbana" if c.urban else "no urbana",
            "lista_nominal": c.nominal_list,
            "estado": STATE_NAMES[acta.status] if received else PENDING,
        }
        # A pending acta carries every key (nulls, "N/A"), so files grow little as actas arrive.
        stamp = self._stamp if received else _not_available
        payload.update(
            {
                "votos": dict(
                    zip(
                        self._columns,
                        acta.votes if received else _nulls(self._columns),
                        strict=True,
                    )
                ),
                "no_registrados": acta.no_registrados if received else None,
                "nulos": acta.nulos if received else None,
                "total_votos_asentado": acta.total_asentado if received else None,
                "total_votos_calculados": acta.total_calculado if received else None,
                "personas_votaron": acta.personas_votaron if received else None,
                "boletas_sobrantes": acta.boletas_sobrantes if received else None,
                "observaciones": acta.observaciones if received else "",
                "codigo_integridad": acta.codigo if received else "",
                "fecha_hora_acopio": stamp(acta.collected),
                "fecha_hora_captura": stamp(acta.captured),
                "fecha_hora_verificacion": stamp(acta.verified),
                "origen": acta.origen if received else "",
                "digitalizacion": acta.digitalizacion if received else "",
                "mecanismo_traslado": acta.mecanismo if received else "",
                "tipo_documento": acta.tipo_documento if received else "",
            }
        )
        return json_bytes(payload)


def _not_available(_: datetime | None) -> str:
    return NOT_AVAILABLE


def _nulls(columns: Sequence[str]) -> list[None]:
    return [None] * len(columns)


def _sum(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.add(tally)
    return total
