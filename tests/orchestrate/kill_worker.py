"""Close periods in a loop, resuming from the store; the kill -9 test's victim.

Run as ``python kill_worker.py DB PERIODS``. Outcomes are a pure function of
(difusor, period), so a run killed at any point and resumed must end in the
same verdicts as a run never killed. Prints ``ready`` once the store is open.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prep_iac.models.difusor import DifusorStatus, Registry
from prep_iac.models.election import Election
from prep_iac.models.loading import load_model
from prep_iac.orchestrate import outbox, strikes
from prep_iac.orchestrate.schedule import PeriodClock
from prep_iac.orchestrate.store import Store
from prep_iac.orchestrate.strikes import CutRef
from prep_iac.presets import load_election
from prep_iac.publish.push import DifusorResult, NodeResult

FIXTURES = Path(__file__).parent.parent / "fixtures"
DIFUSORES = 6


def registry() -> Registry:
    base = load_model(Registry, FIXTURES / "registry-ok.yaml")
    template = base.difusores[1]
    extra = [
        template.model_copy(
            update={
                "id": f"medio{k}",
                "nodes": [n.model_copy(update={"host": f"198.18.9.{k}"}) for n in template.nodes],
            }
        )
        for k in range(DIFUSORES - len(base.difusores))
    ]
    return base.model_copy(update={"difusores": [*base.difusores, *extra]})


def fails(difusor: str, index: int) -> bool:
    digest = hashlib.sha256(f"{difusor}:{index}".encode()).digest()
    return digest[0] < 110  # about 43 %: enough runs of three to disable some


def start(election: Election, index: int) -> datetime:
    return election.window_start.astimezone(UTC) + index * election.period


def index_of(election: Election, when: datetime) -> int:
    return int((when - election.window_start.astimezone(UTC)) / election.period)


def resume_point(store: Store, election: Election) -> tuple[int, datetime]:
    """The period to work on and the time this run starts at, from what is recorded."""
    last = store.last_period()
    if last is None:
        return 0, start(election, 0) - timedelta(seconds=1)
    index = index_of(election, last.start)
    if last.closed_at is not None:
        return index + 1, start(election, index + 1)
    seen = store.last_seen()
    if seen is not None and seen >= last.end:
        return index + 1, last.end + timedelta(seconds=1)  # start_run closes it
    return index, last.start + timedelta(seconds=2)  # died mid-period: carry on with it


def push(reg: Registry, difusor: str, cut: CutRef, at: datetime, ok: bool) -> DifusorResult:
    nodes = [
        NodeResult(
            difusor, strikes.node_key(n.host, n.port), cut.cut_id,
            outcome="confirmed" if ok else "failed", duration_s=12.5,
            error_class="" if ok else "timeout", started_at=at.isoformat(),
        )
        for n in reg.get(difusor).nodes
    ]  # fmt: skip
    return DifusorResult(difusor, cut.cut_id, nodes)


def at_time(when: datetime) -> Callable[[], datetime]:
    return lambda: when


def main(db: Path, periods: int) -> int:
    reg = registry()
    election = load_election("coahuila-2018")
    clock = PeriodClock(election)
    store = Store(db)
    print("ready", flush=True)
    index, now = resume_point(store, election)
    run, _ = strikes.start_run(store, reg, election, os.getpid(), now)
    handlers: dict[str, outbox.Handler] = {kind: lambda _a: None for kind in outbox.DONE_EVENT}
    outbox.perform_pending(store, handlers, at_time(now))
    for i in range(index, periods):
        period = clock.period(i)
        assert period is not None
        t0 = start(election, i)
        cut = CutRef(period.cut_id, t0)
        strikes.open_period(store, reg, election, period, cut, t0 + timedelta(seconds=1))
        for state in store.states():
            # Reinstated after a whole period disabled, so difusores keep cycling. Decided
            # from verdicts, not from times, which depend on when a crash was recovered.
            history = store.verdicts(state.difusor)
            if (
                state.status is DifusorStatus.DISABLED
                and history
                and history[-1].period == start(election, i - 1)
                and history[-1].verdict == "disabled"
            ):
                at = t0 + timedelta(seconds=2)
                result = push(reg, state.difusor, cut, at, True)
                strikes.reinstate(store, reg, t0, result, cut, at, "kill-test")
        for difusor in strikes.targets(store, reg):
            at = t0 + timedelta(seconds=5)
            strikes.record_push(
                store, t0, push(reg, difusor.id, cut, at, not fails(difusor.id, i)), cut
            )
        end = t0 + election.period
        strikes.heartbeat(store, run, end)
        strikes.close_period(store, reg, election, t0, end)
        outbox.perform_pending(store, handlers, at_time(end))
    strikes.stop_run(store, run, start(election, periods))
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
