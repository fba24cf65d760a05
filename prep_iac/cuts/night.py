"""One election night's synthetic publication: everything a cut at any time contains.

``Night`` draws the geography, the ballot and every acta once, sizes the app
shell so that cuts land in the call's package size range, and then assembles
the files of a cut at any instant: shell, result JSON, download zips,
``index.html`` and ``corte.json``.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files

import yaml

from prep_iac.cuts.actas import Acta, arrival_offsets, build_actas
from prep_iac.cuts.assets import Shell, build_shell, candidate_photos, render
from prep_iac.cuts.ballot import Ballot, Candidacy, Race, candidacies, load_ballot, races
from prep_iac.cuts.columns import (
    ROW_HEAD,
    ROW_TAIL,
    TOTALS_COLUMNS,
    cut_time_label,
    truncated_percent,
)
from prep_iac.cuts.csvfile import LINE_END, ResultsCsv
from prep_iac.cuts.geography import Geography, build_geography
from prep_iac.cuts.places import ContestPlaces, json_bytes
from prep_iac.cuts.writer import STAMP_KEY, CutFile
from prep_iac.models.election import Contest, Election

MB = 1_000_000
SIZE_TARGET_FRACTION = 0.6
"""Aim a little above the middle of the call's range (33 of 30–35 MB, decimal megabytes),
so that a cut also stays above 30 MiB while its data files grow over the night."""
FULL_NIGHT = timedelta(hours=24)
"""By then every acta that will ever arrive has arrived."""


@dataclass(frozen=True, slots=True)
class ContestNight:
    contest: Contest
    actas: tuple[Acta, ...]
    csv: ResultsCsv
    places: ContestPlaces
    candidacies_csv: bytes
    leeme: bytes

    def counted(self, when: datetime) -> int:
        return sum(a.counted_by(when) for a in self.actas)


@dataclass(frozen=True, slots=True)
class ContestSummary:
    """What ``index.html`` and ``corte.json`` say about one contest at a cut."""

    code: str
    name: str
    expected: int
    counted: int
    zip: str
    csv: str

    @property
    def percent(self) -> str:
        return truncated_percent(self.counted, self.expected)


@cache
def _leeme_columns() -> dict[str, dict[str, str]]:
    text = files(__package__).joinpath("data").joinpath("leeme.yaml").read_text("utf-8")
    data: dict[str, dict[str, str]] = yaml.safe_load(text)
    return data


def candidacies_csv_name(election: Election, contest: Contest) -> str:
    """``COAH_AYUN_2018_CANDIDATURAS.csv``: next to the results CSV, not matching its pattern."""
    return election.results_csv_name(contest).removesuffix(".csv") + "_CANDIDATURAS.csv"


class Night:
    """Every cut of one election night, ready to be assembled at any instant."""

    def __init__(self, election: Election, seed: int) -> None:
        self.election = election
        self.seed = seed
        self.geography: Geography = build_geography(election.entity, seed)
        self.ballot: Ballot = load_ballot()
        start = election.window_start
        arrivals = arrival_offsets(self.geography, seed)
        self.contests = tuple(
            self._contest(contest, index, start, arrivals)
            for index, contest in enumerate(election.contests)
        )
        self._context: dict[str, object] = {
            "entity_name": election.entity.name,
            "code": election.entity.code,
            "year": election.year,
            "body": election.body,
            "process": election.name,
            "contests": [c.code for c in election.contests],
        }
        # index.html links the shell's hashed names, so the data size is measured with them.
        self.shell: Shell = build_shell(self.geography, self.ballot, self._context, seed)
        # Photos take what the rest leaves of the target, so every election lands in range.
        low, high = election.package_size_mb
        target = round((low + SIZE_TARGET_FRACTION * (high - low)) * MB)
        budget = target - self.shell.size - self._mean_data_size()
        photo_races: dict[str, tuple[Race, ...]] = {
            c.contest.code: races(c.contest, self.geography) for c in self.contests
        }
        photos = candidate_photos(self.ballot, photo_races, seed, budget)
        self.shell = replace(self.shell, files={**self.shell.files, **photos})

    def _contest(
        self, contest: Contest, index: int, start: datetime, arrivals: dict[str, float]
    ) -> ContestNight:
        e = self.election
        actas = build_actas(contest, index, self.geography, self.ballot, start, arrivals, self.seed)
        cands = candidacies(contest, self.geography, self.seed)
        columns = self.ballot.columns
        leeme = _leeme_columns()
        return ContestNight(
            contest=contest,
            actas=actas,
            csv=ResultsCsv(contest.name, e.entity.name, columns, actas, e.tz, e.csv_offset_label),
            places=ContestPlaces(
                contest.code, self.geography, columns, actas, cands, e.tz, e.csv_offset_label
            ),
            candidacies_csv=self._candidacies_csv(contest, cands),
            leeme=render(
                "LEEME.txt.j2",
                body=e.body,
                process=e.name,
                contest_name=contest.name,
                csv_name=e.results_csv_name(contest),
                candidacies_name=candidacies_csv_name(e, contest),
                offset_label=e.csv_offset_label,
                totals=[(c, leeme["totals"][c]) for c in TOTALS_COLUMNS],
                head=[(c, leeme["head"][c]) for c in ROW_HEAD],
                party_columns=columns,
                tail=[(c, leeme["tail"][c]) for c in ROW_TAIL],
            )
            .replace("\n", LINE_END)
            .encode(),
        )

    def _candidacies_csv(self, contest: Contest, cands: tuple[Candidacy, ...]) -> bytes:
        entity = self.election.entity
        scope = {
            "AYUN": ["ID_MUNICIPIO", "MUNICIPIO"],
            "DIP_LOC": ["ID_DISTRITO_LOCAL", "DISTRITO_LOCAL"],
        }
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator=LINE_END)
        extra = scope.get(contest.code, [])
        writer.writerow(
            [
                "ID_ENTIDAD",
                "ENTIDAD",
                *extra,
                "PARTIDO_CI",
                "CANDIDATURA_PROPIETARIA",
                "CANDIDATURA_SUPLENTE",
            ]
        )
        for c in cands:
            where = [c.race.id, c.race.name] if extra else []
            writer.writerow(
                [entity.id, entity.name.upper(), *where, c.party, c.owner, c.substitute]
            )
        return buffer.getvalue().encode()

    def _mean_data_size(self) -> int:
        """Size of the changing files, halfway between the first cut and the full night."""
        start = self.election.window_start
        sizes = []
        for when in (start, start + FULL_NIGHT):
            stamp_size = len(STAMP_KEY) + len(self.election.cut_id(when)) + 2
            sizes.append(
                sum(len(f.body) + (stamp_size if f.stamped else 0) for f in self.data_files(when))
            )
        return sum(sizes) // len(sizes)

    def counted_percent(self, when: datetime) -> float:
        """Counted actas over expected actas, all contests together."""
        counted = sum(c.counted(when) for c in self.contests)
        expected = sum(len(c.actas) for c in self.contests)
        return float(truncated_percent(counted, expected))

    def data_files(self, when: datetime) -> list[CutFile]:
        """Files that depend on the cut: result JSON, zips, ``corte.json``, ``index.html``."""
        e = self.election
        local = when.astimezone(e.tz)
        cut_id = e.cut_id(when)
        result: list[CutFile] = []
        summaries: list[ContestSummary] = []
        for c in self.contests:
            zip_name = e.download_zip_name(when, c.contest)
            result.append(CutFile(zip_name, self._zip(c, when, local)))
            result.extend(
                CutFile(path, body, stamped=True) for path, body in c.places.render(when).items()
            )
            summaries.append(
                ContestSummary(
                    code=c.contest.code,
                    name=c.contest.name,
                    expected=len(c.actas),
                    counted=c.counted(when),
                    zip=zip_name,
                    csv=e.results_csv_name(c.contest),
                )
            )
        label = cut_time_label(local, e.csv_offset_label)
        corte = {
            "corte": cut_id,
            "fecha_hora": local.isoformat(),
            "fecha_hora_etiqueta": label,
            "eleccion": e.id,
            "porcentaje_actas_contabilizadas": truncated_percent(
                sum(s.counted for s in summaries), sum(s.expected for s in summaries)
            ),
            "contiendas": {
                s.code: {
                    "nombre": s.name,
                    "actas_esperadas": s.expected,
                    "actas_contabilizadas": s.counted,
                    "porcentaje_actas_contabilizadas": s.percent,
                    "descarga": s.zip,
                    "csv": s.csv,
                }
                for s in summaries
            },
        }
        result.append(CutFile("corte.json", json_bytes(corte)))
        index = render(
            "index.html.j2",
            cut_id=cut_id,
            election_id=e.id,
            cut_iso=local.isoformat(),
            cut_label=label,
            offset_label=e.csv_offset_label,
            contests=summaries,
            municipalities=self.geography.municipalities,
            css=self.shell.css,
            vendor_js=self.shell.vendor_js,
            app_js=self.shell.app_js,
            **{k: v for k, v in self._context.items() if k != "contests"},
        )
        result.append(CutFile("index.html", index.encode()))
        return result

    def cut_files(self, when: datetime) -> list[CutFile]:
        """Every file of the cut at ``when``: shell first, then the data."""
        return [
            *(CutFile(p, b) for p, b in sorted(self.shell.files.items())),
            *self.data_files(when),
        ]

    def _zip(self, c: ContestNight, when: datetime, local: datetime) -> bytes:
        e = self.election
        members = [
            (e.results_csv_name(c.contest), c.csv.render(when).encode()),
            (candidacies_csv_name(e, c.contest), c.candidacies_csv),
            ("LEEME.txt", c.leeme),
        ]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in members:
                # Fixed metadata (the cut's local time, 0644) keeps zips byte-identical per seed.
                info = zipfile.ZipInfo(name, date_time=local.timetuple()[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data, compresslevel=6)
        return buffer.getvalue()
