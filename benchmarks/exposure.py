"""systemd's exposure score of the activation units, confined and unconfined, as root here.

On a testbed host deployed as a difusor (a fresh one, or ``--testbed NAME``'s
first host, already deployed): ``systemd-analyze security`` of
``prep-activate.service`` and ``prep-activate-watchdog.service`` as deployed,
and of each unit without its confinement (the same unit with the lines of
``prep-activate-sandbox.j2`` and the start timeout removed, installed for the
measurement under ``/run/systemd/system`` and removed after): the figure
before and after. Target: at most 2.0.

Run: ``.venv/bin/python benchmarks/exposure.py [--testbed NAME] [--json out.json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prep_iac.deploy.publication import LOG_DIR
from prep_iac.deploy.rendering import render
from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import difusor_on

ROOT = Path(__file__).resolve().parents[1]
UNITS = ("prep-activate.service", "prep-activate-watchdog.service")
TARGET = 2.0


def exposure(bed: Testbed, host: str, unit: str) -> float:
    report = bed.ssh(host, f"systemd-analyze security {unit}", timeout=60).stdout
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: ([0-9.]+)", report)
    if match is None:
        raise RuntimeError(f"no exposure level for {unit}:\n{report}")
    return float(match.group(1))


def unconfined(bed: Testbed, host: str, unit: str) -> float:
    """The exposure of ``unit`` with its confinement taken out."""
    sandbox = render("prep-activate-sandbox.j2", root="/srv/prep", log_dir=LOG_DIR)
    confinement = {line.split("=", 1)[0] for line in sandbox.splitlines() if "=" in line}
    confinement.add("TimeoutStartSec")
    deployed = bed.ssh(host, f"cat /etc/systemd/system/{unit}", timeout=60).stdout
    kept = [line for line in deployed.splitlines() if line.split("=", 1)[0] not in confinement]
    copy = f"/run/systemd/system/{unit.replace('.service', '-unconfined.service')}"
    text = "\n".join(kept) + "\n"
    bed.ssh(host, f"cat > {copy} <<'EOF'\n{text}EOF\nsystemctl daemon-reload", timeout=60)
    try:
        return exposure(bed, host, Path(copy).name)
    finally:
        bed.ssh(host, f"rm -f {copy} && systemctl daemon-reload", timeout=60)


@contextlib.contextmanager
def deployed_host(name: str | None) -> Iterator[tuple[Testbed, str]]:
    """The first host of testbed ``name`` as it is, or of a fresh testbed, deployed."""
    if name is not None:
        bed = Testbed.load(name)
        yield bed, bed.hosts[0].name
        return
    bed = Testbed.up(f"bexp{os.getpid()}", hosts=1)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="prep-iac-exposure-") as tmp,
            difusor_on(bed, bed.hosts[0], Path(tmp), ROOT) as target,
        ):
            target.deploy()
            yield bed, bed.hosts[0].name
    finally:
        bed.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testbed", help="measure this running testbed's deployed first host")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures: dict[str, dict[str, float]] = {}
    with deployed_host(args.testbed) as (bed, host):
        for unit in UNITS:
            figures[unit] = {
                "unconfined": unconfined(bed, host, unit),
                "deployed": exposure(bed, host, unit),
            }
    for unit, figure in figures.items():
        verdict = "meets" if figure["deployed"] <= TARGET else "MISSES"
        print(
            f"{unit}: exposure {figure['unconfined']:.1f} unconfined, {figure['deployed']:.1f}"
            f" as deployed ({verdict} the {TARGET} target)"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
