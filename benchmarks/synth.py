"""Time the synthetic cut generator: 10 cuts, per-cut size, files and changes.

Run: ``.venv/bin/python benchmarks/synth.py [--election coahuila-2018] [--cuts 10] [--every 1]``.
Prints one line per cut and the total; writes under a fresh temporary directory
(removed afterwards unless ``--keep``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from prep_iac.cuts import CutInfo, generate_night
from prep_iac.presets import load_election


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--election", default="coahuila-2018")
    parser.add_argument("--cuts", type=int, default=10)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--no-link", action="store_true", help="write unchanged files again")
    parser.add_argument("--keep", action="store_true", help="keep the generated cuts")
    args = parser.parse_args()

    election = load_election(args.election)
    out = Path(tempfile.mkdtemp(prefix="prep-iac-synth-bench-", dir="/var/tmp"))
    marks: list[float] = []
    started = time.perf_counter()

    def lap(_: CutInfo) -> None:
        marks.append(time.perf_counter())

    infos = generate_night(
        election,
        out,
        cuts=args.cuts,
        seed=args.seed,
        every=args.every,
        link_unchanged=not args.no_link,
        progress=lap,
    )
    total = time.perf_counter() - started

    print(f"{election.id}: {len(infos)} cuts, seed {args.seed}, every {args.every}, in {out}")
    print(f"{'cut':<14} {'files':>6} {'MB':>7} {'changed':>8} {'linked':>7} {'%count':>8} {'s':>6}")
    previous = started
    for info, mark in zip(infos, marks, strict=True):
        print(
            f"{info.id:<14} {info.files:>6} {info.megabytes:>7.2f} {info.changed_files:>8}"
            f" {info.linked_files:>7} {info.counted_percent:>8.2f} {mark - previous:>6.2f}"
        )
        previous = mark
    sizes = [i.megabytes for i in infos]
    print(
        f"total {total:.2f} s ({total / len(infos):.2f} s per cut,"
        f" the first including the night's setup); {min(sizes):.2f}–{max(sizes):.2f} MB per cut"
    )
    if not args.keep:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
