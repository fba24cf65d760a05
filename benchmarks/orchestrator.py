"""The orchestrator's fan-out to 50 difusor registry entries on testbed hosts, as root.

Five hosts get the real difusor deploy; each then holds ten publication trees
(``/srv/prep/b0..b9``, laid out like the deploy's, inside the IEC account's
chroot) served by the deployed ``prep-activate`` (a loop runs it with
``--root`` for every tree that has an upload: the deploy's path unit watches
only ``/srv/prep/incoming``). So 50 registry entries = 5 hosts × 10 entries,
each its own ``publication_path``.

Each measured period runs in a child process as the loop does it
(``open_period``, ``targets``, ``push_many`` with ``--concurrency``,
``record_push``, ``close_period``), so its CPU seconds and peak RSS are the
orchestrator's alone (``wait4``):

1. the night's first cut to all 50 (full ~33 MB each: what a night without a seed costs);
2. the next cut (a period's delta, the steady state);
3. a quiet period: the PREP produced no new cut, so all 50 are up to date and each
   node gets only its freshness statement (bytes per node are the statement's);
4. the same with 20 of the 50 dead (SSH dropped on 2 of the 5 hosts: every connect
   times out), pushed as the orchestrator's round does (fail-fast, its worker
   sizing): the period time, and whether every one of the 30 healthy confirmed.

Every phase sends each entry its signed freshness statement, as the loop does.

Run: ``.venv/bin/python benchmarks/orchestrator.py [--concurrency 8] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prep_iac.cuts import generate_night
from prep_iac.drill.night import DrillDifusor, Scenario, deploy_all
from prep_iac.models.difusor import Difusor, Registry
from prep_iac.models.loading import load_model
from prep_iac.orchestrate import strikes
from prep_iac.orchestrate.runner import round_workers
from prep_iac.orchestrate.schedule import PeriodClock, utc_now
from prep_iac.orchestrate.store import Store
from prep_iac.presets import load_election
from prep_iac.publish.freshness import sign_statements, validity
from prep_iac.publish.prepare import prepare_cut
from prep_iac.publish.push import Credentials, push_many
from prep_iac.publish.signing import generate_signing_key
from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import make_key
from prep_iac.testbed.registry import to_yaml

HOSTS = 5
TREES = 10
TARGET_RSS_MB = 200
ACTIVATE = "/usr/local/lib/prep-iac/prep-activate process --config /etc/prep-iac/activate.json"
# Each tree is its own registry entry, so its own difusor id (``registry_for``).
TREE_SETUP = """set -e
for t in $(seq 0 {last}); do
  r=/srv/prep/b$t
  install -d -o root -g root -m 755 $r $r/releases $r/notice
  install -d -o iec -g iec -m 750 $r/incoming
  install -d -o root -g iec -m 750 $r/status
  cp /srv/prep/notice/index.html $r/notice/index.html
  [ -e $r/live ] || ln -s notice $r/live
done
nohup sh -c {loop} >/dev/null 2>&1 &
"""
# Activate every tree that has something in incoming/ (one find per round, not 10 forks).
LOOP = (
    "while :; do for r in $(find /srv/prep -mindepth 3 -maxdepth 3 -path '/srv/prep/b*/incoming/*'"
    " ! -name '*.part'"
    " -printf '%h\\n' | sort -u); do t=${r%/incoming}; " + ACTIVATE + " --root $t"
    " --difusor {host}-${t##*/}; done; sleep 0.1; done"
)


def child(args: argparse.Namespace) -> None:
    """One period of the loop against the registry; prints its figures as JSON."""
    registry = load_model(Registry, args.registry)
    election = load_election(registry.election)
    clock = PeriodClock(election)
    period = clock.period(args.period)
    assert period is not None
    with Store(args.db) as store:
        cut = prepare_cut(args.cut, election, args.signing_key, args.workdir)
        ref = strikes.CutRef(cut.manifest.cut_id, cut.manifest.cut_time)
        opened = period.start + timedelta(seconds=1)
        strikes.open_period(store, registry, election, period, ref, opened)
        targets = strikes.targets(store, registry)
        statements, _ = sign_statements(
            election.id, [d.id for d in targets], ref.cut_id, ref.cut_time, utc_now(),
            validity(election), args.signing_key,
        )  # fmt: skip
        credentials = Credentials(args.iec_key)
        workers = round_workers(targets, args.concurrency, credentials.connect_timeout, args.budget)
        began, real_start = time.monotonic(), utc_now()
        results = push_many(
            cut, targets, credentials, args.budget, workers, statements=statements,
            fail_fast=True,
        )  # fmt: skip
        seconds = time.monotonic() - began
        # The pushes ran now; the period is one of the 2018 night: record them on its clock,
        # as a drill does, so that they confirm inside the period they were made for.
        shift = opened - real_start
        for result in results:
            nodes = [
                replace(n, started_at=(datetime.fromisoformat(n.started_at) + shift).isoformat())
                for n in result.nodes
            ]
            strikes.record_push(store, period.start, replace(result, nodes=nodes), ref)
        strikes.close_period(store, registry, election, period.start, period.end)
        states = Counter(s.status.value for s in store.states())
    failed = {
        r.difusor: sorted({n.error_class for n in r.nodes if not n.ok}) for r in results if not r.ok
    }
    print(
        json.dumps(
            {
                "cut": ref.cut_id,
                "difusores": len(results),
                "fanout_s": round(seconds, 2),
                "workers": workers,
                "bytes": sum(n.bytes_sent for r in results for n in r.nodes),
                "failed": failed,
                "states": dict(states),
            }
        )
    )


def measure(argv: list[str]) -> dict[str, Any]:
    """Run one child period; its JSON plus CPU seconds and peak RSS from wait4."""
    process = subprocess.Popen([sys.executable, __file__, "--child", *argv], stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed: {output!r}")
    figures: dict[str, Any] = json.loads(output)
    figures["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    figures["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    return figures


def bench_scenario() -> Scenario:
    """The deploy's view of the hosts: one difusor per host (its trees are set up after)."""
    return Scenario(
        period_seconds=600, periods=4, transfer_budget_seconds=180,
        difusores=[DrillDifusor(id=f"difusor-{h}", legal_name=f"Host {h}", hosts=[h])
                   for h in range(1, HOSTS + 1)],
    )  # fmt: skip


def registry_for(bed: Testbed) -> Registry:
    """Ten entries per host, each its own publication tree."""
    base = bed.registry()
    entries = []
    for host in base.difusores:
        for tree in range(TREES):
            data = host.model_dump()
            data.update(id=f"{host.id}-b{tree}", publication_path=f"/b{tree}")
            entries.append(Difusor.model_validate(data))
    return base.model_copy(update={"difusores": entries})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8, help="nodes in flight (default 8)")
    parser.add_argument("--budget", type=float, default=180.0, help="push budget, s (default 180)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--registry", "--cut", "--db", "--workdir", "--iec-key", "--signing-key"):
        parser.add_argument(name, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--period", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    election = load_election("coahuila-2018")
    bed = Testbed.up(f"borc{os.getpid()}", hosts=HOSTS)
    figures: dict[str, Any] = {"entries": HOSTS * TREES, "concurrency": args.concurrency}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="prep-iac-orch-bench-") as tmp,
            ExitStack() as stack,
        ):
            work = Path(tmp)
            cuts = generate_night(election, work / "cuts", cuts=2, seed=3)
            iec_key = make_key(work / "iec_ed25519")
            signing_key = generate_signing_key(work / "iec_signing")
            began = time.monotonic()
            # Two at a time: five fresh deploys at once (AIDE baselines) outlast the
            # deploy timeout on a 2-core machine.
            deploy_all(bed, stack, work, iec_key, signing_key, bench_scenario(), parallel=2)
            figures["deploy_s"] = round(time.monotonic() - began, 1)
            setup = TREE_SETUP.format(last=TREES - 1, loop=shlex.quote(LOOP))
            for host in bed.hosts:
                bed.ssh(host.name, setup.replace("{host}", host.name))
            registry = work / "registry.yaml"
            registry.write_text(to_yaml(registry_for(bed)))
            common = [
                "--registry", str(registry), "--db", str(work / "db.sqlite3"),
                "--workdir", str(work / "prepared"), "--iec-key", str(iec_key),
                "--signing-key", str(signing_key), "--concurrency", str(args.concurrency),
                "--budget", str(args.budget),
            ]  # fmt: skip
            phases = [
                ("full", cuts[0].path, 0),
                ("delta", cuts[1].path, 1),
                ("fresh", cuts[1].path, 2),
                ("dead20", cuts[1].path, 3),
            ]
            for label, cut, period in phases:
                if label == "dead20":
                    for number in range(HOSTS - 1, HOSTS + 1):  # 2 hosts x 10 trees: 20 dead
                        bed.block_port(f"difusor-{number}", 22)
                figures[label] = measure([*common, "--cut", str(cut), "--period", str(period)])
                print(f"{label}: {json.dumps(figures[label])}", flush=True)
    finally:
        bed.down()
    peak = max(figures[p]["peak_rss_mb"] for p in ("full", "delta", "fresh", "dead20"))
    dead = figures["dead20"]
    dead_hosts = tuple(f"difusor-{h}" for h in range(HOSTS - 1, HOSTS + 1))
    healthy_failed = [d for d in dead["failed"] if not d.startswith(dead_hosts)]
    print(f"20 of 50 dead: period {dead['fanout_s']} s with {dead['workers']} workers;"
          f" healthy entries that failed: {healthy_failed or 'none'}")  # fmt: skip
    per_node = figures["fresh"]["bytes"] / (HOSTS * TREES)
    print(f"quiet period: {figures['fresh']['fanout_s']} s for {HOSTS * TREES} entries,"
          f" {per_node:.0f} bytes per node (the statement and its signature)")  # fmt: skip
    verdict = "meets" if peak <= TARGET_RSS_MB else "MISSES"
    print(f"peak RSS {peak} MB: {verdict} the {TARGET_RSS_MB} MB target")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
