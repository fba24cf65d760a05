"""The night as the orchestrator recorded it, per difusor and per period.

Read through the store's public methods only (periods, verdicts, attempts,
events, states). Definitions, stated in the report:

- *availability*: the share of the judged periods (success or failure) in
  which the difusor was node-complete at the period's cut by the period's end;
- *propagation delay*: from the cut's arrival (when the orchestrator first
  saw it: the period that opened with it, or the event that raised a period to
  it) to its confirmation on every node of the difusor (the latest node's first
  confirmation of that cut or a newer one), for each new cut;
- percentiles by the nearest-rank method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from prep_iac.models.difusor import Registry
from prep_iac.orchestrate.store import Attempt, Store
from prep_iac.orchestrate.strikes import node_key

JUDGED = {"success", "failed"}
ARRIVAL_EVENTS = ("period-opened", "period-cut")
LIFECYCLE_EVENTS = ("disabled", "manual-disable", "reinstated", "reinstate-failed", "recovered")


class DelayStats(BaseModel):
    count: int
    p50: float
    p95: float
    max: float


class Lifecycle(BaseModel):
    at: datetime
    kind: str
    period: datetime | None
    reason: str


class DifusorNight(BaseModel):
    difusor: str
    name: str
    nodes: list[str]
    verdicts: dict[str, int]
    availability: float | None
    max_strikes: int
    strikes: int
    status: str
    lifecycle: list[Lifecycle]
    delay: DelayStats | None


class PeriodRow(BaseModel):
    start: datetime
    cut_id: str | None
    new_cut: bool
    judged: bool
    note: str
    arrival: datetime | None
    verdicts: dict[str, str]
    delays: dict[str, float]
    delay: DelayStats | None


class Night(BaseModel):
    election: str
    periods: list[PeriodRow]
    difusores: list[DifusorNight]
    delay: DelayStats | None
    attempts: int
    failed_attempts: int


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def stats(values: Sequence[float]) -> DelayStats | None:
    if not values:
        return None
    return DelayStats(
        count=len(values), p50=round(percentile(values, 0.5), 2),
        p95=round(percentile(values, 0.95), 2), max=round(max(values), 2),
    )  # fmt: skip


def _complete_at(attempts: list[Attempt], nodes: list[str], cut_time: datetime) -> datetime | None:
    """When the last of ``nodes`` first confirmed ``cut_time`` or a newer cut."""
    times = []
    for node in nodes:
        confirmed = [
            a.finished_at for a in attempts
            if a.node == node and a.confirmed and a.cut_time >= cut_time
        ]  # fmt: skip
        if not confirmed:
            return None
        times.append(min(confirmed))
    return max(times) if times else None


def read_night(store: Store, registry: Registry | None, election: str) -> Night:
    """Everything the IEC's report shows, from the orchestrator's store."""
    periods = store.periods()
    verdicts = store.verdicts()
    states = {s.difusor: s for s in store.states()}
    ids = [d.id for d in registry.difusores] if registry else sorted(states)
    attempts_by = {d: store.attempts(d) for d in ids}
    nodes = {
        d.id: [node_key(n.host, n.port) for n in d.nodes]
        for d in (registry.difusores if registry else [])
    } or {d: sorted({a.node for a in attempts_by[d]}) for d in ids}
    names = {d.id: d.legal_name for d in registry.difusores} if registry else {}
    arrivals: dict[str, datetime] = {}
    for event in store.events(kinds=ARRIVAL_EVENTS):
        cut = event.detail.get("cut_id")
        if cut and cut not in arrivals:
            arrivals[cut] = event.at
    by_period: dict[datetime, dict[str, str]] = {}
    for verdict in verdicts:
        by_period.setdefault(verdict.period, {})[verdict.difusor] = verdict.verdict
    rows: list[PeriodRow] = []
    delays_by: dict[str, list[float]] = {d: [] for d in ids}
    seen_cuts: set[str] = set()
    for period in periods:
        delays: dict[str, float] = {}
        arrival = arrivals.get(period.cut_id or "", period.opened_at)
        if period.cut_id and period.cut_time and period.cut_id not in seen_cuts:
            seen_cuts.add(period.cut_id)
            for difusor in ids:
                done = _complete_at(attempts_by[difusor], nodes.get(difusor, []), period.cut_time)
                if done is not None and done >= arrival:
                    delays[difusor] = round((done - arrival).total_seconds(), 2)
                    delays_by[difusor].append(delays[difusor])
        rows.append(
            PeriodRow(
                start=period.start, cut_id=period.cut_id, new_cut=period.new_cut,
                judged=period.judged, note=period.note,
                arrival=arrival if period.cut_id else None,
                verdicts=by_period.get(period.start, {}), delays=delays,
                delay=stats(list(delays.values())),
            )
        )  # fmt: skip
    lifecycle: dict[str, list[Lifecycle]] = {d: [] for d in ids}
    for event in store.events(kinds=LIFECYCLE_EVENTS):
        if event.difusor in lifecycle:
            lifecycle[event.difusor].append(
                Lifecycle(at=event.at, kind=event.kind, period=event.period,
                          reason=str(event.detail.get("reason", "")))
            )  # fmt: skip
    strikes = {d: 0 for d in ids}
    for event in store.events(kinds=("strike",)):
        if event.difusor in strikes:
            strikes[event.difusor] += 1
    difusores = []
    for difusor in ids:
        counts: dict[str, int] = {}
        for verdict in verdicts:
            if verdict.difusor == difusor:
                counts[verdict.verdict] = counts.get(verdict.verdict, 0) + 1
        judged = sum(counts.get(k, 0) for k in JUDGED)
        state = states.get(difusor)
        difusores.append(
            DifusorNight(
                difusor=difusor, name=names.get(difusor, difusor), nodes=nodes.get(difusor, []),
                verdicts=counts,
                availability=round(100 * counts.get("success", 0) / judged, 1) if judged else None,
                max_strikes=max((v.strikes_after for v in verdicts if v.difusor == difusor),
                                default=0),
                strikes=strikes[difusor], status=state.status.value if state else "unknown",
                lifecycle=lifecycle[difusor], delay=stats(delays_by[difusor]),
            )
        )  # fmt: skip
    every = [a for attempts in attempts_by.values() for a in attempts]
    return Night(
        election=election, periods=rows, difusores=difusores,
        delay=stats([v for values in delays_by.values() for v in values]),
        attempts=len(every), failed_attempts=sum(1 for a in every if not a.confirmed),
    )  # fmt: skip


def open_store(path: Path) -> Store:
    """The orchestrator's store, which must exist (a missing file is a mistake, not a new night)."""
    if not path.is_file():
        raise FileNotFoundError(f"no orchestrator database at {path}")
    return Store(path)
