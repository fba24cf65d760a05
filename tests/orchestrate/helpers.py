"""A night of update periods over a real SQLite store, driven with explicit times."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prep_iac.cuts import generate_night
from prep_iac.models.difusor import Registry
from prep_iac.models.election import Election
from prep_iac.orchestrate import strikes
from prep_iac.orchestrate.schedule import PeriodClock
from prep_iac.orchestrate.store import Action, Store
from prep_iac.orchestrate.strikes import CutRef
from prep_iac.publish.push import DifusorResult, NodeResult


def small_night(election: Election, base: Path, cuts: int, seed: int) -> list[Path]:
    """``cuts`` consecutive cuts from the window's start under ``base``, each reduced to
    what states its time plus two pages (fast to hash, sign and push)."""
    small = []
    for info in generate_night(election, base / "full", cuts=cuts, seed=seed):
        cut = base / "small" / info.id
        cut.mkdir(parents=True)
        for name in (f"{info.id}_PREP_AYUN_COAH.zip", "corte.json", "index.html"):
            shutil.copyfile(Path(info.path) / name, cut / name)
        small.append(cut)
    shutil.rmtree(base / "full")
    return small


def push_result(
    registry: Registry, difusor: str, cut_id: str, at: datetime, ok: bool | list[bool],
    duration_s: float = 20.0, error_class: str = "unreachable",
) -> DifusorResult:  # fmt: skip
    """What ``push_many`` returns for one difusor, finishing ``duration_s`` after ``at``."""
    nodes = registry.get(difusor).nodes
    oks = ok if isinstance(ok, list) else [ok] * len(nodes)
    results = [
        NodeResult(
            difusor, strikes.node_key(node.host, node.port), cut_id,
            outcome="confirmed" if good else "failed",
            bytes_sent=1000 if good else 0, attempts=1 if good else 3, duration_s=duration_s,
            error_class="" if good else error_class,
            error="" if good else f"{node.host}:{node.port}: {error_class}",
            started_at=at.astimezone(UTC).isoformat(),
        )
        for node, good in zip(nodes, oks, strict=True)
    ]  # fmt: skip
    return DifusorResult(difusor, cut_id, results)


@dataclass
class Night:
    """Election night in periods numbered from the window start."""

    store: Store
    registry: Registry
    election: Election

    def start(self, index: int) -> datetime:
        return self.election.window_start.astimezone(UTC) + index * self.election.period

    def cut(self, index: int) -> CutRef:
        start = self.start(index)
        return CutRef(self.election.cut_id(start), start)

    def open(self, index: int, cut_index: int | None = None, late: float = 1.0) -> None:
        cut = self.cut(index if cut_index is None else cut_index)
        period = PeriodClock(self.election).period(index)
        assert period is not None
        strikes.open_period(
            self.store, self.registry, self.election, period, cut,
            self.start(index) + timedelta(seconds=late),
        )  # fmt: skip

    def push(
        self, difusor: str, index: int, ok: bool | list[bool], offset_s: float = 5.0,
        duration_s: float = 20.0, cut_index: int | None = None, error_class: str = "unreachable",
    ) -> None:  # fmt: skip
        cut = self.cut(index if cut_index is None else cut_index)
        at = self.start(index) + timedelta(seconds=offset_s)
        result = push_result(self.registry, difusor, cut.cut_id, at, ok, duration_s, error_class)
        strikes.record_push(self.store, self.start(index), result, cut)

    def close(self, index: int, up: bool = True) -> list[Action]:
        end = self.start(index + 1)
        return strikes.close_period(
            self.store, self.registry, self.election, self.start(index), end, up
        )

    def period(self, index: int, outcomes: dict[str, bool]) -> list[Action]:
        """Open, push each difusor with the given outcome, close."""
        self.open(index)
        for difusor, ok in outcomes.items():
            self.push(difusor, index, ok)
        return self.close(index)

    def strikes_of(self, difusor: str) -> int:
        return self.store.state(difusor).strikes


def timeline(store: Store) -> str:
    """The store's night as text, for assertion messages: events and attempts by time."""
    rows = [
        (e.at, f"event {e.kind} {e.difusor or ''} {e.detail}") for e in store.events()
    ] + [
        (a.finished_at, f"attempt {a.difusor} period={a.period:%H:%M} {a.outcome} "
                        f"{a.error_class} {a.duration_s:.1f}s {a.error}")
        for a in store.attempts()
    ]  # fmt: skip
    return "\n".join(f"{at:%H:%M:%S.%f} {text}" for at, text in sorted(rows, key=lambda r: r[0]))
