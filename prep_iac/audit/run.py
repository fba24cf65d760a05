"""Run the catalogue's checks against each target host and collect the findings."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

from pydantic import BaseModel, Field

from prep_iac.audit.checks import CHECKS, Probe
from prep_iac.audit.controls import Finding, Observation, Status, catalogue
from prep_iac.audit.target import Http, NotChecked, Sftp, Target, admin_shell
from prep_iac.audit.waivers import Waivers


class Audit(BaseModel):
    """Every finding of one audit run."""

    started: datetime
    finished: datetime
    access: str = Field(description="'administrador' (full) or 'IEC' (what the IEC sees).")
    hosts: list[str]
    findings: list[Finding]

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    def count(self, status: Status) -> int:
        return sum(f.status is status for f in self.findings)


def judge(
    observation: Observation, waiver_text: str | None, valid: bool
) -> tuple[Status, str | None]:
    """A failure with a valid waiver is waived; an expired waiver changes nothing."""
    if waiver_text is None:
        return observation.status, None
    if observation.status is not Status.FAIL:
        return observation.status, None
    return (Status.WAIVED if valid else Status.FAIL), waiver_text


def audit_host(
    target: Target,
    waivers: Waivers,
    today: date,
    lynis: bool = False,
    expected_cut: str | None = None,
    only: set[str] | None = None,
) -> list[Finding]:
    """Every control (or those of ``only``) on one host, in the catalogue's order."""
    findings = []
    with admin_shell(target) as shell:
        sftp = Sftp(target.iec, target.source)
        http = Http(
            address=target.address, host=target.http_host or target.address,
            tls=target.tls, source=target.source, port=target.http_port,
        )  # fmt: skip
        probe = Probe(target, shell, sftp, http, lynis=lynis, expected_cut=expected_cut)
        try:
            for control in catalogue():
                if only and control.id not in only:
                    continue
                start = time.monotonic()
                try:
                    observation = CHECKS[control.id](probe)
                except NotChecked as exc:
                    observation = Observation(status=Status.NOT_CHECKED, evidence=[str(exc)])
                except Exception as exc:  # one check's failure must not lose the others
                    observation = Observation(
                        status=Status.NOT_CHECKED,
                        evidence=[f"la verificación falló: {type(exc).__name__}: {exc}"],
                    )
                waiver = waivers.find(control.id, target.name)
                text = valid = None
                if waiver is not None:
                    valid = waiver.expires >= today
                    state = "vigente hasta" if valid else "VENCIDA el"
                    text = f"{waiver.reason} (dispensa {state} {waiver.expires.isoformat()})"
                status, shown = judge(observation, text, bool(valid))
                findings.append(
                    Finding(
                        host=target.name,
                        control=control,
                        status=status,
                        evidence=observation.evidence,
                        waiver=shown,
                        seconds=round(time.monotonic() - start, 2),
                    )
                )
        finally:
            sftp.close()
    return findings


def audit(
    targets: list[Target],
    waivers: Waivers,
    lynis: bool = False,
    expected_cut: str | None = None,
    only: set[str] | None = None,
) -> Audit:
    started = datetime.now(UTC)
    findings = []
    for target in targets:
        findings += audit_host(target, waivers, started.date(), lynis, expected_cut, only)
    full = all(t.admin is not None for t in targets)
    return Audit(
        started=started, finished=datetime.now(UTC),
        access="administrador" if full else "IEC",
        hosts=[t.name for t in targets], findings=findings,
    )  # fmt: skip
