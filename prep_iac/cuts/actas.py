"""What each acta says and when it reaches the PREP, for a whole night.

Every acta's final content and its verification instant are drawn once from
the seed; a cut at time ``T`` shows the actas verified at or before ``T``.
So the counted share is a function of the cut *time*, rows fill in place, and
an acta's row never changes again once filled.

Arrival instants follow a logistic curve centred five hours after the window
opens (23:00 for an 18:00 start): almost nothing in the first hour, the bulk
before 02:00, ~95 % of actas counted by 04:00 and ~96.5 % by morning. About
2 % of actas never arrive, 1.4 % arrive with inconsistencies (not counted) and
a handful are outside the catalogue.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from prep_iac.cuts.ballot import Ballot, race_of
from prep_iac.cuts.geography import Casilla, Geography
from prep_iac.cuts.rng import seeded
from prep_iac.models.election import Contest

ARRIVAL_MIDPOINT_MINUTES = 300.0
ARRIVAL_SCALE_MINUTES = 70.0
SAME_PACKAGE_SPREAD_MINUTES = 15.0
"""Actas of one casilla travel in one package: other contests arrive shortly after."""
P_MISSING = 0.020
P_INCONSISTENT = 0.014
P_OUTSIDE_CATALOGUE = 0.001
INCONSISTENCIES = (
    "Excede lista nominal",
    "Ilegible",
    "Sin dato",
    "Todos los campos ilegibles o sin dato",
)
TIPO_ACTA = {"GOB": "G01", "DIP_LOC": "D02", "AYUN": "A03"}
"""Acta type code per contest (assumed: PREP-FORMAT.md only shows the ``A02`` shape)."""


class Status(Enum):
    COUNTED = 1
    INCONSISTENT = 0
    OUTSIDE_CATALOGUE = 2
    MISSING = -1


@dataclass(frozen=True, slots=True)
class Acta:
    """An acta's final content; ``verified`` is when it enters the PREP (None: never)."""

    casilla: Casilla
    contest: str
    race: int
    clave: str
    tipo: str
    status: Status
    verified: datetime | None
    captured: datetime | None
    collected: datetime | None
    votes: tuple[int, ...]
    no_registrados: int
    nulos: int
    personas_votaron: int
    representantes: int
    rep_votaron: int
    boletas_sobrantes: int
    total_asentado: int
    observaciones: str
    mecanismo: str
    origen: str
    digitalizacion: str
    tipo_documento: str
    codigo: str

    @property
    def total_calculado(self) -> int:
        return sum(self.votes) + self.no_registrados + self.nulos

    def received_by(self, when: datetime) -> bool:
        return self.verified is not None and self.verified <= when

    def counted_by(self, when: datetime) -> bool:
        return self.status is Status.COUNTED and self.received_by(when)


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def arrival_offsets(geography: Geography, seed: int) -> dict[str, float]:
    """Minutes after the window opens at which each casilla's package is verified."""
    rng = seeded("arrivals", seed)
    floor = _logistic(-ARRIVAL_MIDPOINT_MINUTES / ARRIVAL_SCALE_MINUTES)
    offsets: dict[str, float] = {}
    for casilla in geography.casillas:
        u = rng.uniform(floor, 1.0 - 1e-9)
        minutes = ARRIVAL_MIDPOINT_MINUTES + ARRIVAL_SCALE_MINUTES * math.log(u / (1.0 - u))
        offsets[casilla.clave] = max(1.0, minutes)
    return offsets


def build_actas(
    contest: Contest,
    contest_index: int,
    geography: Geography,
    ballot: Ballot,
    start: datetime,
    arrivals: dict[str, float],
    seed: int,
) -> tuple[Acta, ...]:
    """One acta per casilla for ``contest``, with its final votes and arrival."""
    rng = seeded(f"actas:{contest.code}", seed)
    shares = _race_shares(rng, ballot, len(geography.municipalities) + len(geography.districts) + 1)
    turnout = [rng.uniform(0.50, 0.68) for _ in geography.municipalities]
    actas: list[Acta] = []
    for casilla in geography.casillas:
        race = race_of(contest, casilla.municipality, casilla.district)
        delay = rng.uniform(0, SAME_PACKAGE_SPREAD_MINUTES) if contest_index else 0.0
        verified_at = start + timedelta(seconds=round((arrivals[casilla.clave] + delay) * 60))
        actas.append(
            _acta(
                rng,
                contest,
                casilla,
                race,
                shares[race],
                turnout[casilla.municipality - 1],
                ballot,
                start,
                verified_at,
                seed,
            )
        )
    return tuple(actas)


def _race_shares(rng: random.Random, ballot: Ballot, count: int) -> list[list[float]]:
    """Each race's expected shares: party weights with local noise, small combinations."""
    result: list[list[float]] = []
    for _ in range(count + 1):
        raw = [p.weight * rng.lognormvariate(0, 0.35) for p in ballot.parties]
        raw.extend(ballot.combination_share * rng.uniform(0.3, 1.7) for _ in ballot.combinations)
        total = sum(raw)
        result.append([x / total for x in raw])
    return result


def _acta(
    rng: random.Random,
    contest: Contest,
    casilla: Casilla,
    race: int,
    shares: list[float],
    turnout: float,
    ballot: Ballot,
    start: datetime,
    verified_at: datetime,
    seed: int,
) -> Acta:
    draw = rng.random()
    if draw < P_MISSING:
        status = Status.MISSING
    elif draw < P_MISSING + P_INCONSISTENT:
        status = Status.INCONSISTENT
    elif draw < P_MISSING + P_INCONSISTENT + P_OUTSIDE_CATALOGUE:
        status = Status.OUTSIDE_CATALOGUE
    else:
        status = Status.COUNTED

    if casilla.special:
        voters = rng.randint(150, 700)
        ballots = 750
    else:
        voters = max(0, round(casilla.nominal_list * min(0.95, max(0.2, rng.gauss(turnout, 0.06)))))
        ballots = casilla.nominal_list + 2 * len(ballot.parties)
    nulos = round(voters * rng.uniform(0.01, 0.035))
    no_registrados = 1 if rng.random() < 0.08 else 0
    valid = max(0, voters - nulos - no_registrados)
    weights = [s * rng.uniform(0.6, 1.4) for s in shares]
    scale = sum(weights)
    votes = [math.floor(valid * w / scale) for w in weights]
    votes[max(range(len(votes)), key=lambda i: weights[i])] += valid - sum(votes)
    representantes = rng.randint(4, 2 * len(ballot.parties))
    rep_votaron = rng.randint(0, min(representantes, 6))
    total = sum(votes) + nulos + no_registrados
    # A few actas state a total that differs from the sum of their fields, as real ones do.
    asentado = total + (rng.choice((-1, 1)) if rng.random() < 0.03 else 0)

    capture_gap = timedelta(seconds=rng.randint(60, 600))
    collect_gap = timedelta(seconds=rng.randint(300, 3000))
    elapsed = verified_at - start
    captured = max(start + elapsed * 2 / 3, verified_at - capture_gap).replace(microsecond=0)
    collected = max(start + elapsed / 3, captured - collect_gap).replace(microsecond=0)

    from_casilla = rng.random() < 0.6
    clave = casilla.clave + TIPO_ACTA[contest.code]
    received = status is not Status.MISSING
    return Acta(
        casilla=casilla,
        contest=contest.code,
        race=race,
        clave=clave,
        tipo=TIPO_ACTA[contest.code],
        status=status,
        verified=verified_at if received else None,
        captured=captured if received else None,
        collected=collected if received else None,
        votes=tuple(votes),
        no_registrados=no_registrados,
        nulos=nulos,
        personas_votaron=voters,
        representantes=representantes,
        rep_votaron=rep_votaron,
        boletas_sobrantes=max(0, ballots - voters),
        total_asentado=asentado,
        observaciones=rng.choice(INCONSISTENCIES) if status is Status.INCONSISTENT else "",
        mecanismo="" if from_casilla else rng.choice(("D", "F", "I")),
        origen="CASILLA" if from_casilla else "CATD",
        digitalizacion="MOVIL" if from_casilla or rng.random() < 0.15 else "ESCANER",
        tipo_documento="ACTA PREP" if rng.random() < 0.93 else "ACTA DE ESCRUTINIO Y CÓMPUTO",
        # Stands for the SHA-256 of the digitised image, which the synthetic cut does not carry.
        codigo=hashlib.sha256(f"{seed}:{clave}:imagen".encode()).hexdigest() if received else "",
    )
