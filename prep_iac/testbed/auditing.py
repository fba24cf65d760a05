"""Third-party auditors against a deployed difusor: for tests and ``benchmarks/audit.py``.

- ``ssh-audit`` (PyPI) from the machine over the network: failures and warnings;
- ``gixy`` (gixy-ng, PyPI) on a copy of the host's ``/etc/nginx`` fetched over SSH;
- ``lynis`` inside the host (installed through the apt proxy here, never by the
  deploy): the hardening index from its report;
- the programs' own checks: ``nginx -t``, ``nft -c``, ``sshd -t``, ``suricata -T``.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prep_iac.testbed.difusor import Deployed

BIN = Path(sys.executable).parent
# web.py keeps nginx without open_file_cache on purpose: a cached descriptor could
# serve a file of the previous cut after "live" switches (gixy-ng's try_files check).
GIXY_SKIPS = ("try_files_is_evil_too",)
SELF_CHECKS = {
    "nginx -t": "nginx -t -q",
    "nft -c": "nft -c -f /etc/nftables.conf",
    "sshd -t": "sshd -t",
    "suricata -T": "suricata -T -c /etc/suricata/prep.yaml",
}


@dataclass
class SshAudit:
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def ssh_audit(address: str, port: int = 22) -> SshAudit:
    """Algorithms ssh-audit marks as failures and warnings (``kind name: note``)."""
    result = subprocess.run(
        [str(BIN / "ssh-audit"), "-j", "-p", str(port), address],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    report: dict[str, Any] = json.loads(result.stdout)
    found = SshAudit()
    for kind in ("kex", "key", "enc", "mac"):
        for algorithm in report.get(kind, []):
            notes = algorithm.get("notes", {})
            for note in notes.get("fail", []):
                found.failures.append(f"{kind} {algorithm['algorithm']}: {note}")
            for note in notes.get("warn", []):
                found.warnings.append(f"{kind} {algorithm['algorithm']}: {note}")
    found.failures += [f"CVE {cve.get('name')}" for cve in report.get("cves", [])]
    return found


def gixy(deployed: Deployed, skips: tuple[str, ...] = GIXY_SKIPS) -> list[dict[str, Any]]:
    """gixy's findings on the host's nginx configuration, includes followed."""
    archive = subprocess.run(
        [*deployed.testbed.ssh_command(deployed.host.name, "tar -C / -chf - etc/nginx")],
        capture_output=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="prep-iac-gixy-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp) / "etc" / "nginx"
        # Absolute includes must resolve inside the copy.
        for conf in root.rglob("*.conf"):
            if conf.is_file() and not conf.is_symlink():
                conf.write_text(conf.read_text().replace("/etc/nginx", str(root)))
        result = subprocess.run(
            [str(BIN / "gixy"), "-f", "json", *(["--skips", ",".join(skips)] if skips else []),
             str(root / "nginx.conf")],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"gixy failed ({result.returncode}): {result.stderr[-2000:]}")
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def lynis_index(deployed: Deployed) -> tuple[int, list[str]]:
    """Run ``lynis audit system`` in the host; its hardening index and suggestion ids."""
    deployed.root(
        "command -v lynis >/dev/null || { apt-get update -q >/dev/null"
        " && DEBIAN_FRONTEND=noninteractive"
        " apt-get install -y -q --no-install-recommends lynis >/dev/null; }"
    )
    deployed.testbed.ssh(
        deployed.host.name, "lynis audit system --quick --no-colors >/dev/null 2>&1",
        check=True, timeout=600,
    )  # fmt: skip
    report = deployed.root("cat /var/log/lynis-report.dat").stdout.splitlines()
    index = next(
        int(line.split("=", 1)[1]) for line in report if line.startswith("hardening_index=")
    )
    suggestions = [line.split("=", 1)[1].split("|")[0] for line in report
                   if line.startswith("suggestion[]=")]  # fmt: skip
    return index, suggestions


def self_checks(deployed: Deployed) -> dict[str, str]:
    """Each program's check of its deployed configuration: ``""`` when clean, else its output."""
    found = {}
    for name, command in SELF_CHECKS.items():
        result = deployed.root(command, check=False)
        found[name] = "" if result.returncode == 0 else (result.stdout + result.stderr)[-2000:]
    return found
