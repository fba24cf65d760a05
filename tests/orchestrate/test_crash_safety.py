"""kill -9 at random points: the state is consistent after every kill, and resuming
ends exactly where a run that was never killed ends."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from prep_iac.models.difusor import DifusorStatus
from prep_iac.orchestrate.store import Store
from prep_iac.presets import load_election

WORKER = Path(__file__).with_name("kill_worker.py")
PERIODS = 300
KILLS = 20


def worker(db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(PERIODS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


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


def _done_keys(store: Store) -> set[str]:
    return {str(e.detail.get("key")) for e in store.events(kinds=("suspension-sent", "notified"))}


def test_kill_during_close_leaves_consistent_state(tmp_path: Path) -> None:
    reference = tmp_path / "reference.sqlite3"
    assert worker(reference).wait(timeout=120) == 0
    db = tmp_path / "killed.sqlite3"
    rng = random.Random(20180701)
    kills = 0
    for _ in range(KILLS * 2):  # a run that finished before its kill does not count
        process = worker(db)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.25))
        process.send_signal(signal.SIGKILL)
        code = process.wait(timeout=60)
        kills += code == -signal.SIGKILL
        check_invariants(db)
        if kills == KILLS:
            break
    assert kills == KILLS
    finish = worker(db)
    _, err = finish.communicate(timeout=120)
    assert finish.returncode == 0, err
    check_invariants(db)
    with Store(reference) as ref, Store(db) as got:
        assert [(v.difusor, v.period, v.verdict, v.strikes_after) for v in got.verdicts()] == [
            (v.difusor, v.period, v.verdict, v.strikes_after) for v in ref.verdicts()
        ]
        assert [(s.difusor, s.status, s.strikes) for s in got.states()] == [
            (s.difusor, s.status, s.strikes) for s in ref.states()
        ]
        assert len(got.events(kinds=("disabled",))) == len(ref.events(kinds=("disabled",))) > 0
        assert got.pending_actions() == []
