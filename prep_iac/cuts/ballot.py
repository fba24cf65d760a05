"""The synthetic ballot: parties, coalition combinations and candidacies per race.

Parties and coalitions come from ``data/ballot.yaml``. A race is what a
contest elects in one place: the governor for the whole entity (GOB), one
deputy per local district (DIP_LOC), one ayuntamiento per municipality (AYUN).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import yaml

from prep_iac.cuts.geography import Geography
from prep_iac.cuts.rng import seeded
from prep_iac.models.election import Contest


@dataclass(frozen=True, slots=True)
class Party:
    code: str
    name: str
    color: str
    weight: float


@dataclass(frozen=True, slots=True)
class Ballot:
    parties: tuple[Party, ...]
    combinations: tuple[str, ...]
    combination_share: float
    given_names: tuple[str, ...]
    surnames: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Party columns then coalition-combination columns, in CSV order."""
        return (*(p.code for p in self.parties), *self.combinations)


@dataclass(frozen=True, slots=True)
class Race:
    """One place a contest elects someone: its id, name and the casillas' key."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Candidacy:
    race: Race
    party: str
    owner: str
    substitute: str


@cache
def load_ballot() -> Ballot:
    data = yaml.safe_load(
        files(__package__).joinpath("data").joinpath("ballot.yaml").read_text("utf-8")
    )
    combinations: list[str] = []
    for coalition in data["coalitions"]:
        for size in range(len(coalition), 1, -1):
            combinations.extend("_".join(c) for c in itertools.combinations(coalition, size))
    return Ballot(
        parties=tuple(Party(**p) for p in data["parties"]),
        combinations=tuple(combinations),
        combination_share=float(data["combination_share"]),
        given_names=tuple(data["given_names"]),
        surnames=tuple(data["surnames"]),
    )


def races(contest: Contest, geography: Geography) -> tuple[Race, ...]:
    if contest.code == "GOB":
        return (Race(1, geography.entity.name),)
    if contest.code == "DIP_LOC":
        return tuple(Race(d.id, f"{d.name} ({d.head})") for d in geography.districts)
    return tuple(Race(m.id, m.name) for m in geography.municipalities)


def race_of(contest: Contest, municipality: int, district: int) -> int:
    """The race a casilla votes in for ``contest``."""
    if contest.code == "GOB":
        return 1
    return district if contest.code == "DIP_LOC" else municipality


def candidacies(contest: Contest, geography: Geography, seed: int) -> tuple[Candidacy, ...]:
    """Every party's owner and substitute candidate in every race of the contest."""
    ballot = load_ballot()
    rng = seeded(f"candidacies:{contest.code}", seed)

    def person() -> str:
        given, first, second = (rng.choice(ballot.given_names), *rng.choices(ballot.surnames, k=2))
        return f"{given} {first} {second}"

    return tuple(
        Candidacy(race, party.code, person(), person())
        for race in races(contest, geography)
        for party in ballot.parties
    )
