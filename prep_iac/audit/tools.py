"""Third-party auditors, folded into the audit as controls.

- ``ssh-audit`` from the auditor's machine over the network: failed algorithms, CVEs;
- ``testssl.sh`` (Debian's ``testssl``) likewise, where the publication is on HTTPS:
  protocols, the certificate and the known TLS vulnerabilities;
- ``gixy`` (gixy-ng) on a copy of the host's ``/etc/nginx`` fetched over the shell;
- ``lynis`` inside the host: the hardening index of its latest report (the audit
  runs it when asked; it never installs it);
- each program's own configuration check: ``nginx -t``, ``nft -c``, ``sshd -t``,
  ``suricata -T``.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from prep_iac.audit.target import NotChecked, Result

BIN = Path(sys.executable).parent
# The deploy keeps nginx without open_file_cache on purpose: a cached descriptor
# could serve a file of the previous cut after "live" switches (gixy's try_files check).
GIXY_SKIPS = ("try_files_is_evil_too",)
SELF_CHECKS = {
    "nginx -t": "nginx -t -q",
    "nft -c": "nft -c -f /etc/nftables.conf",
    "sshd -t": "sshd -t",
    "suricata -T": "suricata -T -c /etc/suricata/prep.yaml",
}
LYNIS_REPORT = "/var/log/lynis-report.dat"
# testssl.sh's checks: offered protocols, the server's defaults (its certificate) and
# every vulnerability it knows; about 30 s against one address.
TESTSSL_CHECKS = ("--protocols", "--server-defaults", "--vulnerable")
TESTSSL_FAIL = ("HIGH", "CRITICAL")
TESTSSL_WARN = ("MEDIUM", "LOW")


class Runs(Protocol):
    def run(self, command: str) -> Result: ...


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise NotChecked(f"{name} no está instalado en la máquina del auditor")
    return found


@dataclass
class SshAudit:
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def ssh_audit(address: str, port: int = 22) -> SshAudit:
    """Algorithms ssh-audit marks as failures and warnings (``kind name: note``), and CVEs."""
    result = subprocess.run(
        [_tool("ssh-audit"), "-j", "-p", str(port), address],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except json.JSONDecodeError:
        detail = (result.stdout or result.stderr)[-300:]
        raise NotChecked(f"ssh-audit no pudo auditar {address}:{port}: {detail}") from None
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


@dataclass
class TlsScan:
    """testssl.sh's findings (``id: finding``), by severity; ``certificate``: the failures
    about the certificate (``cert_*``: trust, names, expiry), apart from the protocol's."""

    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    certificate: list[str] = field(default_factory=list)
    checked: int = 0


def tls_scan(address: str, port: int, server_name: str) -> TlsScan:
    """testssl.sh against ``server_name`` at ``address:port`` (SNI, no DNS lookup)."""
    with tempfile.TemporaryDirectory(prefix="prep-iac-testssl-") as tmp:
        out = Path(tmp) / "testssl.json"
        result = subprocess.run(
            [_tool("testssl"), "--quiet", "--color", "0", "--warnings", "off",
             "--jsonfile", str(out), *TESTSSL_CHECKS, "--ip", address, f"{server_name}:{port}"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        try:
            records: list[dict[str, Any]] = json.loads(out.read_text())
        except (OSError, json.JSONDecodeError):
            detail = (result.stdout or result.stderr)[-300:]
            raise NotChecked(f"testssl.sh no pudo auditar {address}:{port}: {detail}") from None
    found = TlsScan(checked=len(records))
    for record in records:
        severity, what = record.get("severity"), f"{record.get('id')}: {record.get('finding')}"
        if severity == "FATAL":
            raise NotChecked(f"testssl.sh no pudo auditar {address}:{port}: {what}")
        if severity in TESTSSL_FAIL:
            found.failures.append(what)
            if str(record.get("id", "")).startswith("cert_"):
                found.certificate.append(what)
        elif severity in TESTSSL_WARN:
            found.warnings.append(what)
    return found


def gixy(shell: Runs, skips: tuple[str, ...] = GIXY_SKIPS) -> list[dict[str, Any]]:
    """gixy's findings on the host's nginx configuration, includes followed."""
    archive = shell.run("tar -C / -chf - etc/nginx")
    if archive.rc != 0:
        raise NotChecked(f"no se pudo copiar /etc/nginx del servidor: {archive.stderr[-300:]}")
    with tempfile.TemporaryDirectory(prefix="prep-iac-gixy-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout_bytes)) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp) / "etc" / "nginx"
        # Absolute includes must resolve inside the copy.
        for conf in root.rglob("*.conf"):
            if conf.is_file() and not conf.is_symlink():
                conf.write_text(conf.read_text().replace("/etc/nginx", str(root)))
        result = subprocess.run(
            [_tool("gixy"), "-f", "json", *(["--skips", ",".join(skips)] if skips else []),
             str(root / "nginx.conf")],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise NotChecked(f"gixy falló ({result.returncode}): {result.stderr[-300:]}")
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


@dataclass
class Lynis:
    index: int
    suggestions: list[str]
    finished: datetime | None


def run_lynis(shell: Runs) -> None:
    """``lynis audit system`` on the host (a minute or two); it must be installed."""
    result = shell.run("lynis audit system --quick --no-colors >/dev/null 2>&1")
    if result.rc != 0:
        raise NotChecked(f"lynis no corrió en el servidor (código {result.rc})")


def lynis_report(shell: Runs) -> Lynis:
    """The hardening index and suggestion ids of the host's latest lynis report."""
    found = shell.run(f"cat {LYNIS_REPORT}")
    if found.rc != 0:
        raise NotChecked(f"el servidor no tiene informe de Lynis ({LYNIS_REPORT})")
    lines = found.stdout.splitlines()
    values = dict(line.split("=", 1) for line in lines if "=" in line and "[]" not in line)
    if "hardening_index" not in values:
        raise NotChecked(f"el informe de Lynis ({LYNIS_REPORT}) no tiene índice")
    finished = values.get("report_datetime_end")
    return Lynis(
        index=int(values["hardening_index"]),
        suggestions=[line.split("=", 1)[1].split("|")[0] for line in lines
                     if line.startswith("suggestion[]=")],
        finished=datetime.fromisoformat(finished) if finished else None,
    )  # fmt: skip


def fail2ban_jails(shell: Runs) -> list[str]:
    """fail2ban's running jails, from ``fail2ban-client status`` (none when its server is
    down or absent)."""
    out = shell.run("fail2ban-client status").stdout
    listed = re.search(r"Jail list:\s*(.*)", out)
    return [j.strip() for j in listed.group(1).split(",") if j.strip()] if listed else []


def self_checks(shell: Runs) -> dict[str, str]:
    """Each program's check of its configuration: ``""`` when clean, else its output."""
    found = {}
    for name, command in SELF_CHECKS.items():
        result = shell.run(command)
        found[name] = "" if result.rc == 0 else (result.stdout + result.stderr)[-2000:]
    return found
