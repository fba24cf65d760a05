"""Measure the testbed figures the issue asks for, on this machine, as root.

- ``up`` of N hosts (default 3) with a warm image cache (target <= 45 s), and
  ``down`` (target <= 10 s): wall time of ``Testbed.up``/``down``, median of rounds.
- Memory per idle host (target <= 80 MB), after boot settles, two ways: PSS of
  the host's process tree (nspawn included; shared pages split fairly) and the
  host's memory cgroup (processes, kernel memory and the page cache it charged).
- A 35 MB (35,000,000 bytes) upload over SFTP to a host shaped to 10 Mbit/s;
  the physical limit is 280 Mbit / 10 Mbit/s = 28 s.
- Per-host clean start: the overlay the testbed uses, against copying the image
  (``cp -a``), the alternative the issue mentions.

Run: ``.venv/bin/python benchmarks/testbed.py [--hosts 3] [--rounds 3] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from prep_iac.testbed import Testbed, TestbedSettings, image

SIZE = 35_000_000


def timed_up_down(name: str, hosts: int) -> tuple[float, float, float]:
    """Seconds to ``up`` (sshd answers), to every host booted (systemd says so), to ``down``."""
    started = time.monotonic()
    bed = Testbed.up(name, hosts=hosts)
    up = time.monotonic() - started
    waits = [
        subprocess.Popen(
            bed.ssh_command(h.name, "systemctl is-system-running --wait"), stdout=subprocess.DEVNULL
        )
        for h in bed.hosts
    ]
    for wait in waits:
        wait.wait()
    booted = time.monotonic() - started
    started = time.monotonic()
    bed.down()
    return up, booted, time.monotonic() - started


def idle_memory(bed: Testbed, settle: float) -> dict[str, dict[str, float]]:
    for host in bed.hosts:
        bed.ssh(host.name, "systemctl is-system-running --wait", check=False)
    time.sleep(settle)
    out = {}
    for host in bed.hosts:
        out[host.name] = {
            "pss_mib": round(bed.memory_pss(host.name) / 2**20, 1),
            "cgroup_mib": round(bed.memory_cgroup(host.name) / 2**20, 1),
        }
    return out


def shaped_upload(bed: Testbed, rate: float) -> float:
    host = bed.hosts[0].name
    with tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp) / "cut.zip"
        payload.write_bytes(os.urandom(SIZE))  # incompressible, like a zipped cut
        bed.shape(host, rate)
        try:
            started = time.monotonic()
            subprocess.run(
                ["sftp", "-q", "-F", str(bed.ssh_config), "-b", "-", host],
                input=f"put {payload} /tmp/cut.zip\n",
                text=True,
                check=True,
                capture_output=True,
                timeout=600,
            )
            return time.monotonic() - started
        finally:
            bed.unshape(host)


def clean_start(settings: TestbedSettings) -> dict[str, float]:
    """Seconds to give one host a clean root: copy of the image vs an overlay mount."""
    rootfs = image.ensure(settings)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        started = time.monotonic()
        subprocess.run(["cp", "-a", str(rootfs), f"{tmp}/copy"], check=True)
        copy = time.monotonic() - started
        for sub in ("upper", "work", "root"):
            Path(tmp, sub).mkdir()
        options = f"lowerdir={rootfs},upperdir={tmp}/upper,workdir={tmp}/work"
        started = time.monotonic()
        mount = ["mount", "-t", "overlay", "overlay", "-o", options, f"{tmp}/root"]
        subprocess.run(mount, check=True)
        overlay = time.monotonic() - started
        subprocess.run(["umount", f"{tmp}/root"], check=True)
        shutil.rmtree(f"{tmp}/copy")
    return {"copy_s": round(copy, 2), "overlay_s": round(overlay, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=20, help="idle seconds before memory")
    parser.add_argument("--rate", type=float, default=10, help="Mbit/s for the upload")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    settings = TestbedSettings()
    image.ensure(settings)  # warm cache: the build is not what is measured
    name = f"bench{os.getpid()}"
    rounds = [timed_up_down(name, args.hosts) for _ in range(args.rounds)]
    bed = Testbed.up(name, hosts=args.hosts)
    try:
        memory = idle_memory(bed, args.settle)
        upload = shaped_upload(bed, args.rate)
    finally:
        bed.down()
    results = {
        "hosts": args.hosts,
        "up_s": [round(u, 2) for u, _, _ in rounds],
        "booted_s": [round(b, 2) for _, b, _ in rounds],
        "down_s": [round(d, 2) for _, _, d in rounds],
        "up_median_s": round(statistics.median(u for u, _, _ in rounds), 2),
        "down_median_s": round(statistics.median(d for _, _, d in rounds), 2),
        "idle_memory": memory,
        "upload_35MB_s": round(upload, 1),
        "upload_limit_s": SIZE * 8 / (args.rate * 1e6),
        "clean_start": clean_start(settings),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
