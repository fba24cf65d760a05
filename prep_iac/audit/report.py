"""The audit's outputs: a Rich table, JSON and JUnit XML for CI, the Spanish HTML report."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from rich.console import Console
from rich.table import Table

from prep_iac.audit.continuity import Continuity
from prep_iac.audit.controls import STATUS_ES, Status, catalogue
from prep_iac.audit.pentest import Pentest
from prep_iac.audit.run import Audit

STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.NOT_APPLICABLE: "dim",
    Status.NOT_CHECKED: "yellow",
    Status.WAIVED: "cyan",
}


def table(audit: Audit, console: Console) -> None:
    """One row per host and control: verdict, impact, title and the first evidence."""
    view = Table(title=f"prep-iac audit ({audit.access})", show_lines=False)
    for column in ("host", "control", "status", "impact", "clause", "evidence"):
        view.add_column(column, overflow="fold")
    for f in audit.findings:
        evidence = "; ".join(f.evidence[:2]) + (f" [{f.waiver}]" if f.waiver else "")
        view.add_row(
            f.host, f.control.id, f"[{STYLE[f.status]}]{f.status.value}[/]",
            f.control.impact.value, f.control.clause, evidence,
        )  # fmt: skip
    console.print(view)
    summary = ", ".join(f"{audit.count(s)} {s.value}" for s in Status)
    console.print(f"{len(audit.findings)} controls on {len(audit.hosts)} host(s): {summary}")
    for f in audit.blocking:
        console.print(f"[bold red]FAILED[/] {f.host} {f.control.id}: {f.control.remedy}")


def write_json(audit: Audit, path: Path) -> None:
    path.write_text(audit.model_dump_json(indent=2) + "\n", encoding="utf-8")


def write_junit(audit: Audit, path: Path) -> None:
    """One test suite per host, one test case per control: failures fail, the rest skip."""
    suites = ET.Element("testsuites", name="prep-iac audit")
    for host in audit.hosts:
        findings = [f for f in audit.findings if f.host == host]
        suite = ET.SubElement(
            suites, "testsuite", name=host, tests=str(len(findings)),
            failures=str(sum(f.status is Status.FAIL for f in findings)),
            skipped=str(sum(f.status not in (Status.PASS, Status.FAIL) for f in findings)),
            timestamp=audit.started.isoformat(),
        )  # fmt: skip
        for f in findings:
            case = ET.SubElement(
                suite, "testcase", classname=f"{host}.{f.control.clause}",
                name=f"{f.control.id} {f.control.title}", time=str(f.seconds),
            )  # fmt: skip
            text = "\n".join(f.evidence)
            if f.status is Status.FAIL:
                failure = ET.SubElement(
                    case, "failure", type=f"impact-{f.control.impact.value}",
                    message=f.control.remedy,
                )  # fmt: skip
                failure.text = text
            elif f.status is not Status.PASS:
                skipped = ET.SubElement(case, "skipped", message=STATUS_ES[f.status])
                skipped.text = "\n".join(filter(None, [text, f.waiver]))
            else:
                ET.SubElement(case, "system-out").text = text
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def html(audit: Audit) -> str:
    """The Spanish report the IEC files: a summary, then every control with its clause."""
    env = _environment()
    by_host = {h: [f for f in audit.findings if f.host == h] for h in audit.hosts}
    return env.get_template("audit.html.j2").render(
        audit=audit, by_host=by_host, statuses=list(Status), status_es=STATUS_ES,
        controls=catalogue(),
    )  # fmt: skip


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("prep_iac.audit", "templates"), autoescape=True,
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip


def write_html(audit: Audit, path: Path) -> None:
    path.write_text(html(audit), encoding="utf-8")


def pentest_table(test: Pentest, console: Console) -> None:
    view = Table(title=f"prep-iac pentest {test.host} ({test.address}) from {test.attacker}")
    for column in ("attack", "status", "answered", "detected / contained / missing", "visitor"):
        view.add_column(column, overflow="fold")
    for a in test.attacks:
        seen = "; ".join([*a.detected, *a.contained, *(f"MISSING {m}" for m in a.missing)])
        view.add_row(a.id, f"[{STYLE[a.status]}]{a.status.value}[/]", a.answered, seen, a.visitors)
    console.print(view)


def continuity_table(test: Continuity, console: Console) -> None:
    view = Table(title=f"prep-iac continuity {test.host} ({test.address}), cut {test.cut}")
    for column in ("step", "status", "recovery", "requests", "evidence"):
        view.add_column(column, overflow="fold")
    for s in test.steps:
        recovery = f"{s.recovery_s:.2f} s" if s.recovery_s is not None else ""
        view.add_row(s.id, f"[{STYLE[s.status]}]{s.status.value}[/]", recovery, s.requests,
                     "; ".join(s.evidence))  # fmt: skip
    console.print(view)


def write_result(
    test: Pentest | Continuity, template: str, json_path: Path | None, html_path: Path | None
) -> None:
    """A pentest's or continuity drill's JSON and Spanish HTML (``template``)."""
    if json_path:
        json_path.write_text(test.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if html_path:
        page = _environment().get_template(template).render(test=test, status_es=STATUS_ES)
        html_path.write_text(page, encoding="utf-8")
