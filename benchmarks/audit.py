"""Audit a difusor with third-party tools, before and after the deploy, as root on this machine.

On a fresh testbed host: lynis' hardening index of the host as it comes; then
``pyinfra -y <inventory> deploys/difusor.py`` (timed) and on the deployed host:
lynis again (target >= 80), ssh-audit failures and warnings, gixy findings on
the nginx config, and ``nginx -t``, ``nft -c``, ``sshd -t``, ``suricata -T``.
lynis is installed in the host through the testbed's apt proxy, by this script
only (the deploy never installs it).

Run: ``.venv/bin/python benchmarks/audit.py [--release bookworm|trixie] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from prep_iac.testbed import Testbed
from prep_iac.testbed.auditing import gixy, lynis_index, self_checks, ssh_audit
from prep_iac.testbed.difusor import difusor_on

ROOT = Path(__file__).resolve().parents[1]
LYNIS_TARGET = 80


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="bookworm", help="Debian release (default bookworm)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    bed = Testbed.up(f"baud{os.getpid()}", hosts=1, release=args.release)
    print(f"release: Debian {bed.hosts[0].suite}")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="prep-iac-audit-bench-") as tmp,
            difusor_on(bed, bed.hosts[0], Path(tmp), ROOT) as target,
        ):
            before, _ = lynis_index(target)
            run = target.deploy()
            after, suggestions = lynis_index(target)
            ssh = ssh_audit(target.address)
            findings = gixy(target)
            checks = self_checks(target)
    finally:
        bed.down()

    verdict = "meets" if after >= LYNIS_TARGET else "MISSES"
    print(f"fresh deploy: {run.seconds:.1f} s ({run.changed} changes)")
    print(f"lynis hardening index: {before} before the deploy, {after} after"
          f" ({verdict} the {LYNIS_TARGET} target)")  # fmt: skip
    print(f"lynis suggestions left: {', '.join(sorted(set(suggestions)))}")
    print(f"ssh-audit: {len(ssh.failures)} failures, {len(ssh.warnings)} warnings")
    for line in ssh.failures + ssh.warnings:
        print(f"  {line}")
    print(f"gixy: {len(findings)} findings")
    for finding in findings:
        print(f"  {finding.get('plugin')}: {finding.get('summary')}")
    for name, problem in checks.items():
        print(f"{name}: {'clean' if not problem else 'FAILED: ' + problem}")
    figures = {
        "release": args.release,
        "fresh_deploy_seconds": round(run.seconds, 1),
        "lynis_before": before,
        "lynis_after": after,
        "lynis_suggestions": sorted(set(suggestions)),
        "ssh_audit_failures": ssh.failures,
        "ssh_audit_warnings": ssh.warnings,
        "gixy_findings": findings,
        "self_checks": {name: not problem for name, problem in checks.items()},
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
