"""Push a synthetic night to testbed difusores: bytes and time against rsync and a naive upload.

Hosts are provisioned by the real difusor deploy. Part 1, a night of
``--cuts`` cuts to ``--hosts`` hosts each shaped to ``--rate`` Mbit/s; per cut:

- prep-iac push (``push_many``: one tar bundle of the changed files, gzipped
  when that pays, plus a manifest patch): payload bytes and wire bytes per host
  (the machine's end of the host's link, TCP/IP included), time until every
  host confirms, and activation time (rename of the upload -> status shows it
  live);
- ``rsync -az --checksum --delete`` over SSH as root (a non-chrooted account,
  what a sysadmin would script) into ``/var/tmp/rsync-anchor`` on the same hosts:
  its "Total bytes sent" and wire bytes, and time;
- a naive full upload of the package (the cut as one tar over SFTP), every
  ``--naive-every`` cuts (it is the same size every time; it bounds the runtime).

Targets: push bytes <= rsync's for every cut after the first; the first push
within 1.2x of the link-limited time of its wire bytes; activation <= 2 s.

Part 2, fan-out: a full push of one cut (the hosts' live manifests removed
first, so each gets every file) to 1, 2, 5 and 10 unshaped hosts.

Run (as root): ``.venv/bin/python benchmarks/push.py [--json figures.json]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prep_iac.cuts import generate_night
from prep_iac.models.difusor import Difusor
from prep_iac.presets import load_election
from prep_iac.publish.prepare import PreparedCut, prepare_cut
from prep_iac.publish.push import (
    KNOWN_MANIFESTS,
    Credentials,
    DifusorResult,
    connect,
    push_many,
)
from prep_iac.publish.signing import generate_signing_key
from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import Deployed, difusor_on

ROOT = Path(__file__).resolve().parents[1]
ELECTION = load_election("coahuila-2018")
ANCHOR = "/var/tmp/rsync-anchor/"


def wire_bytes(deployed: Deployed) -> int:
    """Bytes the machine has sent into the host's link (all traffic, headers included)."""
    return int(Path(f"/sys/class/net/{deployed.host.veth}/statistics/tx_bytes").read_text())


def rsync(bed: Testbed, deployed: Deployed, cut: Path) -> tuple[int, float]:
    """rsync the cut into the anchor directory; (its Total bytes sent, seconds)."""
    start = time.monotonic()
    result = subprocess.run(
        [
            "rsync", "-az", "--checksum", "--delete", "--stats",
            "-e", f"ssh -F {bed.ssh_config}", f"{cut}/", f"{deployed.host.name}:{ANCHOR}",
        ],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    seconds = time.monotonic() - start
    match = re.search(r"Total bytes sent: ([\d,]+)", result.stdout)
    assert match, result.stdout
    return int(match.group(1).replace(",", "")), seconds


def naive(cut: Path, difusor: Difusor, credentials: Credentials) -> tuple[int, float]:
    """Upload the whole cut as one tar over SFTP (then delete it); (bytes, seconds)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(cut, arcname=cut.name)
    size = buffer.tell()
    buffer.seek(0)
    start = time.monotonic()
    with connect(difusor.nodes[0], difusor.sftp_user, credentials) as conn:
        sftp = conn.sftp()
        sftp.putfo(buffer, f"/incoming/naive-{cut.name}.tar", confirm=False)
        seconds = time.monotonic() - start
        sftp.remove(f"/incoming/naive-{cut.name}.tar")
    return size, seconds


def parallel(function: Any, items: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        return list(pool.map(function, items))


def timed_push(
    cut: PreparedCut,
    targets: list[tuple[Deployed, Difusor, Credentials]],
    budget: float,
) -> tuple[list[DifusorResult], list[int], float]:
    """Push to every target at once (each with its own source address)."""
    before = [wire_bytes(d) for d, _, _ in targets]
    start = time.monotonic()
    results = parallel(lambda t: push_many(cut, [t[1]], t[2], budget, 1)[0], targets)
    seconds = time.monotonic() - start
    after = [wire_bytes(d) for d, _, _ in targets]
    return results, [a - b for a, b in zip(after, before, strict=True)], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuts", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--rate", type=float, default=10.0, help="Mbit/s per host link")
    parser.add_argument("--naive-every", type=int, default=5)
    parser.add_argument("--fanout", default="1,2,5,10", help="host counts of part 2")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    fanout = [int(n) for n in args.fanout.split(",")]
    total_hosts = max(args.hosts, *fanout)
    bed = Testbed.up(f"bpush{os.getpid()}", hosts=total_hosts)
    figures: dict[str, Any] = {"night": [], "fanout": []}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="prep-iac-push-bench-") as tmp,
            contextlib.ExitStack() as stack,
        ):
            work = Path(tmp)
            infos = generate_night(ELECTION, work / "cuts", cuts=args.cuts + len(fanout), seed=2018)
            sources = [i.path for i in infos]
            key = generate_signing_key(work / "signing")
            public = key.with_name(key.name + ".pub").read_text().strip()
            registry = {d.id: d for d in bed.registry().difusores}

            def deploy(host: Any) -> tuple[Deployed, Difusor, Credentials]:
                (work / host.name).mkdir()
                deployed = stack.enter_context(difusor_on(bed, host, work / host.name, ROOT))
                deployed.write_inventory(iec_signing_keys=[public])
                deployed.deploy()
                deployed.root("apt-get install -y -q rsync >/dev/null && mkdir -p " + ANCHOR)
                return (
                    deployed,
                    registry[host.name],
                    Credentials(deployed.iec_key, source_address=deployed.iec_source),
                )

            start = time.monotonic()
            # The first deploy fills the apt cache; the rest go four at a time.
            targets = [deploy(bed.hosts[0])]
            with ThreadPoolExecutor(max_workers=4) as pool:
                targets += list(pool.map(deploy, bed.hosts[1:]))
            print(f"deployed {len(targets)} hosts in {time.monotonic() - start:.0f} s")
            prepared = [prepare_cut(s, ELECTION, key, work / "prepared") for s in sources]

            night = targets[: args.hosts]
            for deployed, _, _ in night:
                bed.shape(deployed.host.name, args.rate)
            for index in range(args.cuts):
                cut = prepared[index]
                results, wire, seconds = timed_push(cut, night, ELECTION.transfer_budget_seconds)
                assert all(r.ok for r in results), results
                nodes = [r.nodes[0] for r in results]
                before = [wire_bytes(d) for d, _, _ in night]
                rsynced = parallel(lambda t, c=cut: rsync(bed, t[0], c.directory), night)
                rsync_wire = [wire_bytes(d) - b for (d, _, _), b in zip(night, before, strict=True)]
                row: dict[str, Any] = {
                    "cut": cut.manifest.cut_id,
                    "cut_bytes": cut.manifest.total_bytes,
                    "push_payload_bytes": [n.bytes_sent for n in nodes],
                    "push_wire_bytes": wire,
                    "push_all_confirmed_s": round(seconds, 2),
                    "push_upload_s": [n.upload_s for n in nodes],
                    "activation_s": [n.activation_s for n in nodes],
                    "rsync_sent_bytes": [b for b, _ in rsynced],
                    "rsync_wire_bytes": rsync_wire,
                    "rsync_all_done_s": round(max(s for _, s in rsynced), 2),
                }
                if index % args.naive_every == 0:
                    naived = parallel(lambda t, c=cut: naive(c.directory, t[1], t[2]), night)
                    row["naive_bytes"] = naived[0][0]
                    row["naive_all_done_s"] = round(max(s for _, s in naived), 2)
                if index == 0:
                    link_s = max(wire) * 8 / (args.rate * 1e6)
                    row["first_push_vs_link_time"] = round(
                        max(n.duration_s for n in nodes) / link_s, 2
                    )
                figures["night"].append(row)
                print(json.dumps(row))
            for deployed, _, _ in night:
                bed.unshape(deployed.host.name)

            for n, cut in zip(fanout, prepared[args.cuts :], strict=True):
                chosen = targets[:n]
                KNOWN_MANIFESTS.clear()
                for deployed, _, _ in chosen:
                    deployed.root("rm -f /srv/prep/status/manifest.json")
                results, wire, seconds = timed_push(cut, chosen, ELECTION.transfer_budget_seconds)
                assert all(r.ok for r in results), results
                row = {
                    "hosts": n,
                    "all_confirmed_s": round(seconds, 2),
                    "bytes_per_host": [r.nodes[0].bytes_sent for r in results],
                    "wire_bytes_per_host": wire,
                }
                figures["fanout"].append(row)
                print(json.dumps(row))
    finally:
        bed.down()
    summarize(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


def summarize(figures: dict[str, Any]) -> None:
    night = figures["night"]
    later = night[1:]
    beats = all(max(r["push_wire_bytes"]) <= min(r["rsync_wire_bytes"]) for r in later)
    print(f"push wire bytes <= rsync's on every cut after the first: {beats}")
    payload = all(max(r["push_payload_bytes"]) <= min(r["rsync_sent_bytes"]) for r in later)
    print(f"push payload <= rsync's Total bytes sent on every cut after the first: {payload}")
    if later:
        push = [b for r in later for b in r["push_payload_bytes"]]
        sent = [b for r in later for b in r["rsync_sent_bytes"]]
        print(
            f"cuts after the first, per host: push {min(push)}-{max(push)} B,"
            f" rsync {min(sent)}-{max(sent)} B"
        )
    if night:
        print(
            f"first push / link-limited time: {night[0]['first_push_vs_link_time']} (target <= 1.2)"
        )
        worst = max(max(r["activation_s"]) for r in night)
        print(f"activation (upload complete -> live), worst: {worst} s (target <= 2)")
    base = next((r["all_confirmed_s"] for r in figures["fanout"] if r["hosts"] == 1), None)
    for row in figures["fanout"]:
        ratio = f" ({row['all_confirmed_s'] / base:.2f}x one host)" if base else ""
        print(f"fan-out {row['hosts']:>2} hosts: {row['all_confirmed_s']} s{ratio}")


if __name__ == "__main__":
    main()
