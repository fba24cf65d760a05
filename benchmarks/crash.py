"""kill -9 the orchestrator at random points in 20 runs; count the runs left consistent.

Each run starts from an empty SQLite store and drives the clause-III state
machine through ``--periods`` update periods (tests/orchestrate/kill_worker.py:
open, push outcomes that are a pure function of difusor and period, close,
outbox, reinstatements), killing it with SIGKILL ``--kills`` times at a random
instant (sorted uniform draws over an uninterrupted run's duration), and
resuming it from the store each time. A run is **consistent** when, after every kill, the store's
invariants hold (one verdict per difusor in each closed period, none in an open
one; strikes = failed periods since the last success or reinstatement;
disabled iff at the limit or by hand; every automatic disabling queued its
suspension in the same commit), and the resumed run ends exactly where the
uninterrupted reference run ends (verdicts, states, disablings, no action left).

Run: ``.venv/bin/python benchmarks/crash.py [--runs 20] [--kills 3] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The worker lives beside the test that uses it too (tests/orchestrate/test_crash_safety.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.orchestrate.kill_worker import check_invariants, check_same_end, finish, kill_after


def one_run(work: Path, reference: Path, args: argparse.Namespace, rng: random.Random,
            span_s: float) -> dict[str, Any]:  # fmt: skip
    """Kill one run at ``args.kills`` random instants of its progress, resume it to the end.

    The instants are sorted uniform draws over an uninterrupted run's duration;
    each resumed worker is killed after the gap to the next one, so the kills
    land across the whole night, not only near its start.
    """
    db = work / "killed.sqlite3"
    instants = sorted(rng.uniform(0.0, span_s) for _ in range(args.kills))
    gaps = [b - a for a, b in zip([0.0, *instants], instants, strict=False)]
    kills = 0
    try:
        for gap in gaps:
            landed = kill_after(db, args.periods, gap)
            check_invariants(db)
            kills += landed
            if not landed:  # the resumed worker reached the end first
                break
        finish(db, args.periods)
        check_invariants(db)
        check_same_end(reference, db)
    except AssertionError as exc:
        return {"kills": kills, "consistent": False, "error": repr(exc)[:300]}
    return {"kills": kills, "consistent": kills > 0, "error": "" if kills else "never killed"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per run")
    parser.add_argument("--periods", type=int, default=300, help="update periods per run")
    parser.add_argument("--seed", type=int, default=20180701)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="prep-crash-") as tmp:
        base = Path(tmp)
        reference = base / "reference.sqlite3"
        began = time.monotonic()
        finish(reference, args.periods)
        # Kill instants spread over a whole uninterrupted run (less the interpreter's start).
        span_s = max(0.1, time.monotonic() - began - 0.5)
        runs = []
        for index in range(args.runs):
            work = base / f"run{index:02d}"
            work.mkdir()
            runs.append(one_run(work, reference, args, rng, span_s))
            mark = "consistent" if runs[-1]["consistent"] else f"INCONSISTENT {runs[-1]['error']}"
            print(f"run {index + 1:2d}: {runs[-1]['kills']} kills, {mark}", flush=True)
    consistent = sum(r["consistent"] for r in runs)
    kills = sum(r["kills"] for r in runs)
    figures = {
        "runs": args.runs, "consistent_runs": consistent, "kills": kills,
        "periods_per_run": args.periods, "kill_window_s": round(span_s, 2),
        "seconds": round(time.monotonic() - began, 1), "detail": runs,
    }  # fmt: skip
    print(f"{consistent} of {args.runs} runs consistent ({kills} kill -9 in all,"
          f" {args.periods} periods per run, kills uniform over {span_s:.1f} s)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if consistent == args.runs else 1


if __name__ == "__main__":
    sys.exit(main())
