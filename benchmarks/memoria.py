"""``prep-iac memoria`` against GoAccess on the same synthetic access log: wall time and peak RSS.

Run: ``.venv/bin/python benchmarks/memoria.py [--lines 2000000] [--lines 10000000] [--keep]``.
For each size it writes one election night in the deploy's JSON format (seeded), then
runs, one after the other on the same file: GoAccess (Debian's, with the JSON log
format, an HTML report and no progress display), ``prep-iac memoria`` without
the bitácoras archive, and the whole ``prep-iac memoria`` (HTML, PDF, figures and
bitácoras). Each is a child process measured with ``wait4``: wall time, CPU time
(user + system: the fairer figure when other jobs share the machine) and its own
peak RSS. What is compared is each tool's whole job: GoAccess parsing the log and
writing its HTML report, against ``prep-iac memoria`` from start-up to its last
output. The issue's targets: at least 10× GoAccess's speed and a peak RSS of at
most 1 GB.
Not part of the test suite (minutes of CPU on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import NamedTuple

from prep_iac.memoria.ingest import GOACCESS_JSON_FORMAT
from prep_iac.memoria.synthetic import TrafficSpec, write_logs

# The generator writes about 0.89 requests per one asked for (visits are drawn at random).
YIELD = 0.89


class Run(NamedTuple):
    wall: float  # seconds
    cpu: float  # user + system seconds
    rss: float  # peak resident MB


def measure(command: list[str]) -> Run:
    """Wall and CPU seconds and peak RSS of one child process (its output goes to a file)."""
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            output.seek(0)
            raise SystemExit(
                f"{command[0]} failed: {output.read()[-2000:].decode(errors='replace')}"
            )
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, action="append", help="about this many lines")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    parser.add_argument("--keep", action="store_true", help="keep the logs and reports")
    args = parser.parse_args()
    goaccess = shutil.which("goaccess")
    if goaccess is None:
        raise SystemExit("goaccess is not installed (bash .ci/setup)")
    prep_iac = [sys.executable, "-m", "prep_iac.cli"]
    work = Path(tempfile.mkdtemp(prefix="prep-iac-memoria-bench-", dir=args.dir))
    print(f"in {work}; {os.cpu_count()} CPUs")
    try:
        for lines in args.lines or [2_000_000]:
            log = work / f"prep-access-{lines}.log"
            began = time.perf_counter()
            spec = TrafficSpec(date(2018, 7, 1), requests=round(lines / YIELD), seed=2018)
            count = write_logs(spec, log, None)
            size = log.stat().st_size / 1e6
            took = time.perf_counter() - began
            print(f"\n{count:,} lines, {size:,.0f} MB (written in {took:.0f} s)")
            days = ["--day", "2018-07-01", "--day", "2018-07-02", "--day", "2018-07-03"]
            runs = {
                "goaccess": [goaccess, str(log), "--no-global-config", "--no-progress",
                             f"--log-format={GOACCESS_JSON_FORMAT}",
                             "--datetime-format=%Y-%m-%dT%H:%M:%S%z",
                             "-o", str(work / f"goaccess-{lines}.html")],
                "memoria --no-bitacoras": [*prep_iac, "memoria", "--access-log", str(log), *days,
                                           "--no-bitacoras", "--out", str(work / f"m-{lines}")],
                "memoria (all outputs)": [*prep_iac, "memoria", "--access-log", str(log), *days,
                                          "--out", str(work / f"all-{lines}")],
            }  # fmt: skip
            results = {name: measure(command) for name, command in runs.items()}
            base = results["goaccess"]
            print(
                f"{'':<24} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12} {'lines/s':>12}"
                f" {'wall vs goaccess':>17} {'CPU vs goaccess':>16}"
            )
            for name, run in results.items():
                print(
                    f"{name:<24} {run.wall:>8.2f} {run.cpu:>8.2f} {run.rss:>12.0f}"
                    f" {count / run.wall:>12,.0f} {base.wall / run.wall:>16.1f}×"
                    f" {base.cpu / run.cpu:>15.1f}×"
                )
            whole = results["memoria (all outputs)"]
            print(f"memoria (all outputs): {base.wall / whole.wall:.1f}× GoAccess's wall time"
                  f" ({whole.wall:.2f} s against {base.wall:.2f} s; target ≥ 10×), peak RSS"
                  f" {whole.rss:.0f} MB (target ≤ 1024 MB)")  # fmt: skip
            if not args.keep:
                log.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
