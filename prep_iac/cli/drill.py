"""``prep-iac drill``: a compressed election night on real hosts, with faults, checked.

Runs ``prep_iac.drill.night.run_drill`` and prints what happened: a
timeline (period × difusor: ✓ confirmed, ✗ failed, ⛔ disabled, – not judged),
the faults, what every host serves now, and the checks; exit status 1 if any
check failed. ``--json`` prints the same as JSON (for CI and tests); it is also
written to ``drill.json`` in the work directory.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

import click
from rich.console import Console
from rich.table import Table

from prep_iac.drill.night import DrillResult, Scenario, default_scenario, run_drill
from prep_iac.models.loading import load_model

MARKS = {
    "success": "[green]✓[/]", "failed": "[red]✗[/]", "disabled": "[bold red]⛔[/]",
    "iec-fault": "[yellow]○[/]",
}  # fmt: skip
FAULT_LETTERS = {"link-down": "L", "shape": "S", "stop-sshd": "D", "host-key": "K", "tamper": "T"}
LEGEND = (
    "✓ confirmed  ✗ failed (strike)  ⛔ disabled  ○ the IEC's fault  – not judged;"
    " faults: L link down, S slow link, D sshd stopped, K host key changed, T tampered cut;"
    " a period marked · had no new cut (the PREP paused or had closed), ∎ the PREP's last cut,"
    " ! the IEC's own uplink was down (iec-fault: nobody struck)"
)


def timeline(result: DrillResult) -> Table:
    """Period × difusor grid: the verdict, and the letters of the faults active then."""
    first = result.periods[0]["start"][11:16] if result.periods else "?"
    table = Table(
        title="Simulacro: veredicto por periodo (cláusula III)",
        caption=f"period 0 = {first}, one per update period. {LEGEND}",
    )
    table.add_column("difusor", no_wrap=True)
    scenario = result.scenario
    for entry in result.periods:
        index = int(entry["index"])
        mark = "∎" if index == scenario.close_at else "·" if scenario.quiet(index) else ""
        if any(f.kind == "iec-outage" and f.active(index) for f in scenario.faults):
            mark += "!"
        table.add_column(f"{index}{mark}", justify="center", no_wrap=True)
    for difusor, row in result.verdicts.items():
        cells = []
        for index, verdict in enumerate(row):
            letters = "".join(
                FAULT_LETTERS[f.kind]
                for f in result.scenario.faults
                if f.difusor == difusor and f.active(index)
            )
            cells.append(MARKS.get(verdict, "–") + (f"[dim]{letters}[/]" if letters else ""))
        table.add_row(difusor, *cells)
    return table


def summary(result: DrillResult) -> Table:
    mail = result.mail
    table = Table(
        title="Al terminar",
        caption=f"mails to the contact: failed periods + disabling; to the IEC operators:"
        f" {mail.get('operators', '?')}; {mail.get('total', '?')} in all",
    )
    for name in ("difusor", "state", "strikes", "last cut confirmed", "served (X-PREP-Corte)"):
        table.add_column(name, no_wrap=True)
    table.add_column("notice")
    table.add_column("mails", justify="right")
    hosts = {d.id: d.hosts for d in result.scenario.difusores}
    for difusor, state in result.states.items():
        served = [result.served.get(f"difusor-{h}", {}) for h in hosts.get(difusor, [])]
        style = "bold red" if state["status"] == "disabled" else "green"
        table.add_row(
            difusor,
            f"[{style}]{state['status']}[/]",
            str(state["strikes"]),
            state["last_cut_id"] or "—",
            ", ".join(s.get("corte") or "—" for s in served),
            ", ".join(s.get("notice", "?") for s in served),
            _mails(mail.get("contacts", {}).get(difusor, {})),
        )
    return table


def checks(result: DrillResult, console: Console) -> None:
    console.print("[bold]Comprobaciones[/]")
    for check in result.checks:
        mark = "[green]ok  [/]" if check.ok else "[bold red]FAIL[/]"
        console.print(f"{mark} {check.name}: [dim]{check.detail}[/]", highlight=False)


@click.command()
@click.option(
    "--scenario",
    "scenario_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A scenario YAML (default: the embedded one, prep_iac/drill/templates/drill.yaml).",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where cuts, keys, the database and the list go (default: a new temporary directory).",
)
@click.option("--name", default="drill", show_default=True, help="The testbed's name.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def drill(scenario_path: Path | None, workdir: Path | None, name: str, as_json: bool) -> None:
    """Rehearse election night on real hosts with faults; check clause III end to end (root)."""
    scenario = load_model(Scenario, scenario_path) if scenario_path else default_scenario()
    work = workdir or Path(tempfile.mkdtemp(prefix="prep-drill-"))
    err = Console(stderr=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Unwind whatever is running; run_drill's finally tears the testbed down.
        stop.set()
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    result = run_drill(scenario, work, name, stop, progress=lambda line: err.print(line))
    (work / "drill.json").write_text(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        console = Console(width=max(Console().width, 120))
        console.print(timeline(result))
        console.print(summary(result))
        checks(result, console)
        console.print(f"work directory: {work}")
    if threading.active_count() > 1:
        sys.stdout.flush()
        os._exit(0 if result.ok else 1)
    sys.exit(0 if result.ok else 1)


def _mails(counts: dict[str, int]) -> str:
    """``3 + 1``: period-failed mails, plus the disablement if there was one."""
    failed, disabled = counts.get("period-failed", 0), counts.get("disabled", 0)
    return f"{failed} + {disabled}" if disabled else str(failed)
