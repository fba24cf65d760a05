"""The audit's third-party tools on a deployed testbed host: for tests and ``benchmarks/audit.py``.

``prep_iac.audit.tools`` runs them through any shell; here the shell is the
testbed's root SSH (``DeployedShell``). lynis is installed in the host through
the apt proxy by ``install_lynis``, never by the deploy.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

from prep_iac.audit.target import Result
from prep_iac.audit.tools import SshAudit, lynis_report, run_lynis
from prep_iac.audit.tools import gixy as gixy_on
from prep_iac.audit.tools import self_checks as self_checks_on
from prep_iac.audit.tools import ssh_audit as ssh_audit_of
from prep_iac.testbed.difusor import Deployed


@dataclass
class DeployedShell:
    """The audit's ``Runs`` protocol over the testbed's root SSH to a host."""

    deployed: Deployed

    def run(self, command: str) -> Result:
        done = subprocess.run(
            self.deployed.testbed.ssh_command(self.deployed.host.name, command),
            capture_output=True, timeout=600, check=False,
        )  # fmt: skip
        return Result(done.returncode, done.stdout.decode(errors="replace"),
                      done.stderr.decode(errors="replace"), done.stdout)  # fmt: skip


def install_lynis(deployed: Deployed) -> None:
    deployed.root(
        "command -v lynis >/dev/null || { apt-get update -q >/dev/null"
        " && DEBIAN_FRONTEND=noninteractive"
        " apt-get install -y -q --no-install-recommends lynis >/dev/null; }"
    )


def lynis_index(deployed: Deployed) -> tuple[int, list[str]]:
    """Install and run ``lynis audit system`` in the host; its index and suggestion ids."""
    install_lynis(deployed)
    shell = DeployedShell(deployed)
    run_lynis(shell)
    report = lynis_report(shell)
    return report.index, report.suggestions


def ssh_audit(address: str, port: int = 22) -> SshAudit:
    return ssh_audit_of(address, port)


def gixy(deployed: Deployed) -> list[dict[str, Any]]:
    return gixy_on(DeployedShell(deployed))


def self_checks(deployed: Deployed) -> dict[str, str]:
    return self_checks_on(DeployedShell(deployed))
