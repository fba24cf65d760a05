"""Time the difusor deploy on testbed hosts, as root on this machine.

- Fresh deploy: ``pyinfra -y <inventory> deploys/difusor.py`` on a host that has
  never been deployed, with the apt cache warm (a first host is deployed first,
  untimed, to fill it when it is cold).
- No-change re-run on the same host (target <= 20 s); it must report no changes.

Each round uses a host that is fresh (the testbed starts each from the image).

Run: ``.venv/bin/python benchmarks/deploy.py [--rounds 2] [--release bookworm,trixie]
[--json out.json]``: with several releases, each is timed on hosts of its own.
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
    parser.add_argument(
        "--release", default="bookworm", help="Debian releases, comma-separated (default bookworm)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = {
        release: time_release(release.strip(), args.rounds) for release in args.release.split(",")
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def time_release(release: str, rounds: int) -> dict[str, object]:
    """Deploy ``rounds`` + 1 fresh hosts of ``release`` twice each; the figures."""
    bed = Testbed.up(f"bdep{os.getpid()}", hosts=rounds + 1, release=release)
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
                print(f"{release} {host.name}: {times}; {label}", flush=True)
                if index:
                    fresh.append(first)
                    rerun.append(second)
    finally:
        bed.down()

    fresh_median = round(statistics.median(r.seconds for r in fresh), 1)
    rerun_median = round(statistics.median(r.seconds for r in rerun), 1)
    verdict = "meets" if rerun_median <= TARGET_RERUN_SECONDS else "MISSES"
    print(
        f"{release}: fresh deploy (warm apt cache): median {fresh_median} s;"
        f" no-change re-run: median {rerun_median} s"
        f" ({verdict} the {TARGET_RERUN_SECONDS:.0f} s target)"
    )
    return {
        "fresh_deploy_seconds": [round(r.seconds, 1) for r in fresh],
        "rerun_seconds": [round(r.seconds, 1) for r in rerun],
        "fresh_deploy_median": fresh_median,
        "rerun_median": rerun_median,
        "rerun_target": TARGET_RERUN_SECONDS,
    }


if __name__ == "__main__":
    main()
