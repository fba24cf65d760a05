"""Synthetic electoral geography: municipalities, local districts, sections, casillas.

Deterministic from the seed. Municipality names and weights come from
``data/<ENTITY>.yaml`` when it lists as many municipalities as the election's
entity has; otherwise municipalities get generic names and random weights.
Section numbers run in municipality order, as INE numbers them; local districts
are contiguous runs of sections with similar nominal lists.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import yaml

from prep_iac.cuts.rng import seeded
from prep_iac.models.election import Entity

VOTERS_PER_CASILLA = 750
"""INE opens a contiguous casilla for every 750 voters of a section."""
VOTERS_PER_SECTION = (1230, 1330)
"""Mean nominal list per section drawn from this range; gives Coahuila ~1,600 sections."""
SPECIAL_CASILLAS_PER_DISTRICT = (1, 3)
DEFAULT_NOMINAL_LIST_PER_MUNICIPALITY = 50_000


@dataclass(frozen=True, slots=True)
class Casilla:
    """One polling station: the unit that produces one acta per contest."""

    clave: str
    section: int
    kind: str
    number: int
    ext: int
    urban: bool
    nominal_list: int
    municipality: int
    district: int

    @property
    def special(self) -> bool:
        """Casillas especiales serve voters away from home and have no nominal list."""
        return self.kind == "S"


@dataclass(frozen=True, slots=True)
class Section:
    number: int
    municipality: int
    district: int
    nominal_list: int
    casillas: tuple[Casilla, ...]


@dataclass(frozen=True, slots=True)
class Municipality:
    id: int
    name: str
    sections: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class District:
    id: int
    name: str
    head: str
    sections: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Geography:
    entity: Entity
    municipalities: tuple[Municipality, ...]
    districts: tuple[District, ...]
    sections: tuple[Section, ...]

    @property
    def casillas(self) -> tuple[Casilla, ...]:
        return tuple(c for s in self.sections for c in s.casillas)


@dataclass(frozen=True, slots=True)
class _EntityData:
    nominal_list: int
    names: tuple[str, ...]
    shares: tuple[float, ...]


@cache
def _entity_data(code: str) -> _EntityData | None:
    resource = files(__package__).joinpath("data").joinpath(f"{code}.yaml")
    if not resource.is_file():
        return None
    data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    return _EntityData(
        nominal_list=int(data["nominal_list"]),
        names=tuple(m["name"] for m in data["municipalities"]),
        shares=tuple(float(m["share"]) for m in data["municipalities"]),
    )


def _municipality_weights(entity: Entity, rng: random.Random) -> tuple[int, list[str], list[float]]:
    known = _entity_data(entity.code)
    if known is not None and len(known.names) == entity.municipalities:
        names, shares, total = list(known.names), list(known.shares), known.nominal_list
    else:
        names = [f"Municipio {i:02d}" for i in range(1, entity.municipalities + 1)]
        shares = [rng.lognormvariate(0, 1.2) for _ in names]
        total = DEFAULT_NOMINAL_LIST_PER_MUNICIPALITY * entity.municipalities
    scale = sum(shares)
    return total, names, [s / scale for s in shares]


def _largest_remainder(total: int, weights: list[float], minimum: int) -> list[int]:
    """Split ``total`` units by weight, each part at least ``minimum``."""
    free = total - minimum * len(weights)
    scale = sum(weights)
    exact = [w * free / scale for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))
    for i in by_remainder[: free - sum(parts)]:
        parts[i] += 1
    return [p + minimum for p in parts]


def build_geography(entity: Entity, seed: int) -> Geography:
    """The entity's synthetic municipalities, districts, sections and casillas."""
    rng = seeded("geography", seed)
    total_voters, names, shares = _municipality_weights(entity, rng)
    total_voters = round(total_voters * rng.uniform(0.985, 1.015))
    section_count = round(total_voters / rng.uniform(*VOTERS_PER_SECTION))
    per_municipality = _largest_remainder(section_count, shares, minimum=2)

    # Section nominal lists: the municipality's voters split with random weights.
    section_voters: list[tuple[int, int]] = []
    for index, (share, count) in enumerate(zip(shares, per_municipality, strict=True)):
        voters = round(total_voters * share)
        weights = [rng.uniform(0.35, 1.65) for _ in range(count)]
        scale = sum(weights)
        section_voters.extend((index + 1, max(60, round(voters * w / scale))) for w in weights)

    # Districts: contiguous runs of sections holding similar shares of voters.
    districts_of: list[int] = []
    running = 0
    district_total = sum(v for _, v in section_voters)
    for _, voters in section_voters:
        districts_of.append(
            min(entity.local_districts, running * entity.local_districts // district_total + 1)
        )
        running += voters

    specials = _special_sections(rng, section_voters, districts_of, entity.local_districts)
    sections: list[Section] = []
    for number, ((municipality, voters), district) in enumerate(
        zip(section_voters, districts_of, strict=True), start=1
    ):
        urban = rng.random() < (0.92 if shares[municipality - 1] > 0.01 else 0.25)
        casillas = _casillas(entity.id, number, municipality, district, voters, urban, rng)
        if number in specials:
            casillas.append(_casilla(entity.id, number, "S", 1, 0, True, 0, municipality, district))
        sections.append(Section(number, municipality, district, voters, tuple(casillas)))

    municipalities = tuple(
        Municipality(i, name, tuple(s.number for s in sections if s.municipality == i))
        for i, name in enumerate(names, start=1)
    )
    districts = tuple(
        _district(d, [s for s in sections if s.district == d], municipalities)
        for d in range(1, entity.local_districts + 1)
    )
    return Geography(entity, municipalities, districts, tuple(sections))


def _special_sections(
    rng: random.Random, section_voters: list[tuple[int, int]], districts_of: list[int], count: int
) -> set[int]:
    """Sections hosting a casilla especial: a few of the busiest of each district."""
    chosen: set[int] = set()
    for district in range(1, count + 1):
        numbers = [n for n, d in enumerate(districts_of, start=1) if d == district]
        numbers.sort(key=lambda n: -section_voters[n - 1][1])
        chosen.update(numbers[: rng.randint(*SPECIAL_CASILLAS_PER_DISTRICT)])
    return chosen


def _casillas(
    entity_id: int,
    section: int,
    municipality: int,
    district: int,
    voters: int,
    urban: bool,
    rng: random.Random,
) -> list[Casilla]:
    """Básica plus contiguas by the 750-voter rule; remote rural sections add extraordinarias."""
    stations = max(1, math.ceil(voters / VOTERS_PER_CASILLA))
    extraordinary = 0 if urban or rng.random() > 0.06 else rng.randint(1, 2)
    ordinary = max(1, stations - extraordinary)
    lists = _largest_remainder(voters, [1.0] * (ordinary + extraordinary), minimum=0)
    result = [
        _casilla(
            entity_id,
            section,
            "B" if i == 0 else "C",
            max(1, i),
            0,
            urban,
            lists[i],
            municipality,
            district,
        )
        for i in range(ordinary)
    ]
    result.extend(
        _casilla(entity_id, section, "E", 1, e, urban, lists[ordinary + e], municipality, district)
        for e in range(extraordinary)
    )
    return result


def _casilla(
    entity_id: int,
    section: int,
    kind: str,
    number: int,
    ext: int,
    urban: bool,
    voters: int,
    municipality: int,
    district: int,
) -> Casilla:
    clave = f"{entity_id:02d}{section:04d}{kind}{number:02d}{ext:02d}"
    return Casilla(clave, section, kind, number, ext, urban, voters, municipality, district)


def _district(
    number: int, sections: list[Section], municipalities: tuple[Municipality, ...]
) -> District:
    voters: dict[int, int] = {}
    for s in sections:
        voters[s.municipality] = voters.get(s.municipality, 0) + s.nominal_list
    head = max(sorted(voters), key=lambda m: voters[m])
    return District(
        number,
        f"Distrito {number:02d}",
        municipalities[head - 1].name,
        tuple(s.number for s in sections),
    )
