"""kill -9 at random points: the state is consistent after every kill, and resuming
ends exactly where a run that was never killed ends."""

from __future__ import annotations

import random
from pathlib import Path

from .kill_worker import check_invariants, check_same_end, finish, kill_after

PERIODS = 300
KILLS = 20


def test_kill_during_close_leaves_consistent_state(tmp_path: Path) -> None:
    reference = tmp_path / "reference.sqlite3"
    finish(reference, PERIODS)
    db = tmp_path / "killed.sqlite3"
    rng = random.Random(20180701)
    kills = 0
    for _ in range(KILLS * 2):  # a run that finished before its kill does not count
        kills += kill_after(db, PERIODS, rng.uniform(0.0, 0.25))
        check_invariants(db)
        if kills == KILLS:
            break
    assert kills == KILLS
    finish(db, PERIODS)
    check_invariants(db)
    check_same_end(reference, db)
