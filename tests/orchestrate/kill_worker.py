"""Close periods in a loop, resuming from the store; the kill -9 victim, and its checks.

Run as ``python kill_worker.py DB PERIODS``. Outcomes are a pure function of
(difusor, period), so a run killed at any point and resumed must end in the
same verdicts as a run never killed. Prints ``ready`` once the store is open.

``check_invariants`` (what must hold whatever instant it died at) and
``check_same_end`` (resumed = never killed) raise ``AssertionError``; the test
(tests/orchestrate/test_crash_safety.py) and the benchmark (benchmarks/crash.py)
share them, and ``spawn``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
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


def spawn(db: Path, periods: int) -> subprocess.Popen[str]:
    """This worker in a new process; it prints ``ready`` on stdout once the store is open."""
    return subprocess.Popen(
        [sys.executable, __file__, str(db), str(periods)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def kill_after(db: Path, periods: int, seconds: float) -> bool:
    """Start the worker, SIGKILL it ``seconds`` after ``ready``; False if it finished first."""
    process = spawn(db, periods)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=60) == -signal.SIGKILL


def finish(db: Path, periods: int) -> None:
    """Run the worker to its end (resuming from ``db``); raise if it fails."""
    process = spawn(db, periods)
    _, err = process.communicate(timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"worker exited {process.returncode}: {err}")


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


def check_invariants(db: Path) -> None:
    """What must hold whatever instant the orchestrator died at."""
    limit = load_election("coahuila-2018").strike_limit
    with Store(db) as store:
        periods = {p.start: p for p in store.periods()}
        verdicts = store.verdicts()
        reinstated = {(e.difusor, e.period) for e in store.events(kinds=("reinstated",))}
        # Every attempt belongs to a recorded period.
        assert all(a.period in periods for a in store.attempts())
        # A closed period has one verdict per known difusor, an open one none.
        per_period: dict[object, int] = defaultdict(int)
        for verdict in verdicts:
            per_period[verdict.period] += 1
        known = len(store.states())
        for start, period in periods.items():
            expected = known if period.closed_at is not None else 0
            assert per_period[start] == expected, (start, period)
        # Strikes are the failed periods since the last success or reinstatement.
        by_difusor: dict[str, list[tuple[object, str, int]]] = defaultdict(list)
        for verdict in verdicts:
            by_difusor[verdict.difusor].append(
                (verdict.period, verdict.verdict, verdict.strikes_after)
            )
        for state in store.states():
            count = 0
            ordered = sorted(periods)
            recorded = {p: (v, s) for p, v, s in by_difusor[state.difusor]}
            for start in ordered:
                if (state.difusor, start) in reinstated:
                    count = 0
                if start not in recorded:
                    continue
                kind, strikes_after = recorded[start]
                count = 0 if kind == "success" else count + (kind == "failed")
                assert strikes_after == count, (state.difusor, start)
            assert state.strikes == count, state
            disabled = state.status is DifusorStatus.DISABLED
            assert disabled == (count >= limit or state.manual), state
        # Every automatic disabling queued its suspension and notices in the same commit.
        keys = {a.key for a in store.pending_actions()} | _done_keys(store)
        for event in store.events(kinds=("disabled",)):
            assert any(k.startswith(f"suspend:{event.difusor}:") for k in keys)
        # The IEC's list: at most one render queued per period.
        renders = {a.key: a.payload for a in store.pending_actions() if a.kind == "render-list"}
        for event in store.events(kinds=("list-rendered",)):
            renders[str(event.detail["key"])] = event.detail
        per_period = Counter(p["period_start"] for p in renders.values() if "period_start" in p)
        assert all(n == 1 for n in per_period.values()), per_period


def _done_keys(store: Store) -> set[str]:
    return {str(e.detail.get("key")) for e in store.events(kinds=("suspension-sent", "notified"))}


def check_same_end(reference: Path, db: Path) -> None:
    """A run killed and resumed ended exactly where the uninterrupted ``reference`` did."""
    with Store(reference) as ref, Store(db) as got:
        assert [(v.difusor, v.period, v.verdict, v.strikes_after) for v in got.verdicts()] == [
            (v.difusor, v.period, v.verdict, v.strikes_after) for v in ref.verdicts()
        ]
        assert [(s.difusor, s.status, s.strikes) for s in got.states()] == [
            (s.difusor, s.status, s.strikes) for s in ref.states()
        ]
        assert len(got.events(kinds=("disabled",))) == len(ref.events(kinds=("disabled",))) > 0
        assert got.pending_actions() == []
        # The list announced the night's last confirmed cut.
        newest = got.newest_confirmed()
        assert newest is not None
        assert newest[0] in {e.detail.get("cut_id") for e in got.events(kinds=("list-rendered",))}


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
