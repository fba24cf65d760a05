"""Time the difusor deploy on testbed hosts, as root on this machine.

- Fresh deploy: ``pyinfra -y <inventory> deploys/difusor.py`` on a host that has
  never been deployed, with the apt cache warm (a first host is deployed first,
  untimed, to fill it when it is cold).
- No-change re-run on the same host (target <= 20 s); it must report no changes.

Each round uses a host that is fresh (the testbed starts each from the image).

Run: ``.venv/bin/python benchmarks/deploy.py [--rounds 2] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import Run, difusor_on

ROOT = Path(__file__).resolve().parents[1]
TARGET_RERUN_SECONDS = 20.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="fresh hosts timed (default 2)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    bed = Testbed.up(f"bdep{os.getpid()}", hosts=args.rounds + 1)
    fresh: list[Run] = []
    rerun: list[Run] = []
    try:
        with tempfile.TemporaryDirectory(prefix="prep-iac-deploy-bench-") as tmp:
            for index, host in enumerate(bed.hosts):
                work = Path(tmp) / host.name
                work.mkdir()
                with difusor_on(bed, host, work, ROOT) as target:
                    first, second = target.deploy(), target.deploy()
                if second.changed:
                    raise SystemExit(f"{host.name}: the re-run changed {second.changed} operations")
                label = "warm-up: fills the apt cache" if index == 0 else "timed"
                times = f"fresh {first.seconds:.1f} s, re-run {second.seconds:.1f} s"
                print(f"{host.name}: {times}; {label}")
                if index:
                    fresh.append(first)
                    rerun.append(second)
    finally:
        bed.down()

    fresh_median = round(statistics.median(r.seconds for r in fresh), 1)
    rerun_median = round(statistics.median(r.seconds for r in rerun), 1)
    verdict = "meets" if rerun_median <= TARGET_RERUN_SECONDS else "MISSES"
    print(
        f"fresh deploy (warm apt cache): median {fresh_median} s;"
        f" no-change re-run: median {rerun_median} s"
        f" ({verdict} the {TARGET_RERUN_SECONDS:.0f} s target)"
    )
    figures = {
        "fresh_deploy_seconds": [round(r.seconds, 1) for r in fresh],
        "rerun_seconds": [round(r.seconds, 1) for r in rerun],
        "fresh_deploy_median": fresh_median,
        "rerun_median": rerun_median,
        "rerun_target": TARGET_RERUN_SECONDS,
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
