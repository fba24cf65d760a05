"""``prep-iac audit``: verify live difusor hosts against the calls, clause by clause."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from prep_iac.models.difusor import Registry
from prep_iac.models.loading import load_model

if TYPE_CHECKING:
    from prep_iac.audit.target import Target

console = Console()
files = click.Path(path_type=Path, dir_okay=False, exists=True)
outputs = click.Path(path_type=Path, dir_okay=False)


@click.command()
@click.option(
    "--inventory", type=files, help="A full audit, as the admin: this pyinfra inventory's hosts."
)
@click.option("--limit", multiple=True, help="Only this inventory host (repeatable).")
@click.option(
    "--project", type=click.Path(path_type=Path, file_okay=False, exists=True), default=Path(),
    show_default=True, help="Where group_data/ is, as for pyinfra.",
)  # fmt: skip
@click.option("--registry", type=files, help="As the IEC: the registry holding --difusor.")
@click.option("--difusor", "difusor_id", help="The difusor of --registry to audit.")
@click.option("--iec-key", type=files, help="The IEC's SFTP key (the account's view, confinement).")
@click.option(
    "--waivers", type=files, help="YAML of accepted exceptions, each with reason and expiry."
)
@click.option("--expected-cut", help="The cut the IEC last confirmed: the live one must be it.")
@click.option(
    "--store", type=files, help="The orchestrator's state: the newest cut it confirmed is expected."
)
@click.option("--lynis", is_flag=True, help="Run lynis on the host first (it must be installed).")
@click.option(
    "--source", help="Local address the IEC's login and the visitor's requests leave from."
)
@click.option("--only", multiple=True, help="Only this control id (repeatable).")
@click.option("--json", "json_out", type=outputs, help="Write the findings as JSON.")
@click.option("--junit", type=outputs, help="Write JUnit XML (one test case per control).")
@click.option("--html", type=outputs, help="Write the Spanish HTML report.")
def audit(
    inventory: Path | None,
    limit: tuple[str, ...],
    project: Path,
    registry: Path | None,
    difusor_id: str | None,
    iec_key: Path | None,
    waivers: Path | None,
    expected_cut: str | None,
    store: Path | None,
    lynis: bool,
    source: str | None,
    only: tuple[str, ...],
    json_out: Path | None,
    junit: Path | None,
    html: Path | None,
) -> None:
    """Check every requirement of clauses I, II, III and IV that software can observe.

    Exits 1 when a control of high impact fails (not waived); a control that
    cannot be checked is reported as such, never as a pass.
    """
    from dataclasses import replace

    from prep_iac.audit import report
    from prep_iac.audit.controls import catalogue
    from prep_iac.audit.run import audit as run_audit
    from prep_iac.audit.target import from_inventory, from_registry
    from prep_iac.audit.waivers import load_waivers

    if (inventory is None) == (registry is None):
        raise click.UsageError("give either --inventory (as the admin) or --registry (as the IEC)")
    known = {c.id for c in catalogue()}
    unknown = sorted(set(only) - known)
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not control ids", param_hint="--only")
    accepted = load_waivers(waivers)
    if store is not None and expected_cut is None:
        from prep_iac.orchestrate.store import Store

        with Store(store) as state:
            newest = state.newest_confirmed()
        expected_cut = newest[0] if newest else None
    if inventory is not None:
        targets = from_inventory(inventory, project, list(limit), iec_key)
    else:
        assert registry is not None
        if not difusor_id:
            raise click.UsageError("--registry needs --difusor")
        try:
            targets = from_registry(load_model(Registry, registry), difusor_id, iec_key)
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="--difusor") from None
    if source:
        targets = [replace(t, source=source) for t in targets]
    done = run_audit(targets, accepted, lynis=lynis, expected_cut=expected_cut, only=set(only))
    report.table(done, console)
    if json_out:
        report.write_json(done, json_out)
    if junit:
        report.write_junit(done, junit)
    if html:
        report.write_html(done, html)
    sys.exit(1 if done.blocking else 0)


def own_host(command: Callable[..., None]) -> Callable[..., None]:
    """``--inventory``, ``--project`` and ``--host``: one host of the difusor's own inventory."""
    for option in reversed([
        click.option("--inventory", type=files, required=True,
                     help="The difusor's own inventory."),
        click.option("--project", type=click.Path(path_type=Path, file_okay=False, exists=True),
                     default=Path(), show_default=True, help="Where group_data/ is (pyinfra's)."),
        click.option("--host", "host_name", help="The inventory host (needed if several)."),
    ]):  # fmt: skip
        command = option(command)
    return command


def results(command: Callable[..., None]) -> Callable[..., None]:
    """``--json`` and ``--html``."""
    command = click.option("--html", type=outputs, help="Write the Spanish HTML report.")(command)
    return click.option("--json", "json_out", type=outputs, help="Write the results as JSON.")(
        command
    )


def _own(inventory: Path, project: Path, host_name: str | None) -> tuple[Target, list[Target]]:
    """The host to act on and the difusor's other nodes; a host not in the inventory is refused."""
    from prep_iac.audit.pentest import NotOwnHost, own_target
    from prep_iac.audit.target import from_inventory

    targets = from_inventory(inventory, project)
    try:
        target = own_target(targets, host_name)
    except NotOwnHost as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    return target, [t for t in targets if t is not target]


@click.command()
@own_host
@click.option("--attacker-source", required=True, help="Local address the attacks leave from.")
@click.option("--visitor-source", help="Another local address, for the ordinary visitor.")
@click.option("--yes", is_flag=True, help="Confirm: this attacks the host (bounded).")
@results
def pentest(
    inventory: Path,
    project: Path,
    host_name: str | None,
    attacker_source: str,
    visitor_source: str | None,
    yes: bool,
    json_out: Path | None,
    html: Path | None,
) -> None:
    """Attack one's own publication host (bounded) and show what it detected and contained.

    Only hosts of ``--inventory`` are attacked. Exits 1 when an attack was not
    detected and contained, or the ordinary visitor was not served meanwhile.
    """
    import socket

    from prep_iac.audit import report
    from prep_iac.audit.pentest import pentest as run_pentest

    target, _ = _own(inventory, project, host_name)
    for option, address in (("--attacker-source", attacker_source),
                            ("--visitor-source", visitor_source)):  # fmt: skip
        if address is None:
            continue
        try:
            with socket.socket() as probe:
                probe.bind((address, 0))
        except OSError as exc:
            raise click.BadParameter(f"{address} is not an address of this machine: {exc}",
                                     param_hint=option) from None  # fmt: skip
    if not yes:
        raise click.UsageError(f"this attacks {target.name} ({target.address}): add --yes")
    done = run_pentest(target, attacker_source, visitor_source)
    report.pentest_table(done, console)
    report.write_result(done, "pentest.html.j2", json_out, html)
    sys.exit(1 if done.failed else 0)


@click.command()
@own_host
@click.option("--yes", is_flag=True, help="Confirm: this kills nginx and fills the disk.")
@click.option("--reboot", is_flag=True, help="Also reboot the host and time its return.")
@click.option("--max-recovery", default=10.0, show_default=True, help="Seconds nginx may take.")
@click.option("--only", multiple=True, help="Only this step (repeatable).")
@results
def continuity(
    inventory: Path,
    project: Path,
    host_name: str | None,
    yes: bool,
    reboot: bool,
    max_recovery: float,
    only: tuple[str, ...],
    json_out: Path | None,
    html: Path | None,
) -> None:
    """Break the host one way at a time and time how soon the same cut is served again.

    Exits 1 when a step failed (the cut not served again in time, or not served
    throughout a step that must not interrupt it).
    """
    from prep_iac.audit import report
    from prep_iac.audit.continuity import continuity as run_continuity

    target, others = _own(inventory, project, host_name)
    if not yes:
        raise click.UsageError(
            f"this kills nginx and fills the disk of {target.name} ({target.address}): add --yes"
        )
    done = run_continuity(target, others, max_recovery, reboot, set(only))
    report.continuity_table(done, console)
    report.write_result(done, "continuity.html.j2", json_out, html)
    sys.exit(1 if done.failed else 0)
