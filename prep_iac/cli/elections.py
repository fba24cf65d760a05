"""``prep-iac elections``: list and show election presets or custom files."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from prep_iac.presets import election_presets, load_election

console = Console()


@click.group()
def elections() -> None:
    """Election presets taken from the calls, and custom election files."""


@elections.command("list")
def list_() -> None:
    """List the shipped presets."""
    table = Table("preset", "process", "window (local)", "period", "strikes")
    for name in election_presets():
        e = load_election(name)
        table.add_row(
            name,
            e.name,
            f"{e.publication_start:%Y-%m-%d %H:%M} → {e.publication_end:%Y-%m-%d %H:%M}",
            f"{e.update_period_minutes} min",
            str(e.strike_limit),
        )
    console.print(table)


@elections.command()
@click.argument("election")
@click.option("--json", "as_json", is_flag=True, help="Print the election as JSON.")
def show(election: str, as_json: bool) -> None:
    """Show a preset (by name) or a custom election (YAML file)."""
    e = load_election(election)
    if as_json:
        click.echo(e.model_dump_json(indent=2))
        return
    cuts = list(e.cut_times())
    table = Table(show_header=False, title=f"{e.id}: {e.name}")
    rows = [
        ("body", e.body),
        ("entity", f"{e.entity.name} ({e.entity.code}, {e.entity.municipalities} municipios)"),
        ("contests", ", ".join(f"{c.code} ({c.name})" for c in e.contests)),
        ("time zone", e.timezone),
        ("election day", f"{e.election_day}"),
        ("publication", f"{e.window_start.isoformat()} → {e.window_end.isoformat()}"),
        ("update period", f"{e.update_period_minutes} min ({len(cuts)} cuts in the window)"),
        ("transfer budget", f"{e.transfer_budget_seconds} s per push over {e.link_mbps:g} Mbit/s"),
        ("strike limit", f"{e.strike_limit} consecutive failed periods"),
        ("package size", f"{e.package_size_mb[0]:g}–{e.package_size_mb[1]:g} MB"),
        ("transport", e.transport),
        ("first cut", f"{e.cut_id(cuts[0])}: {e.download_zip_name(cuts[0])}"),
        ("source", e.call.document),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
