"""``prep-iac config check``: validate registry and election files before election night."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from prep_iac.models.difusor import Registry
from prep_iac.models.loading import ConfigError, load_model
from prep_iac.presets import load_election

console = Console()


@click.group()
def config() -> None:
    """Validate configuration files."""


@config.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(["registry", "election"]),
    default="registry",
    show_default=True,
    help="What the files hold.",
)
def check(files: tuple[Path, ...], kind: str) -> None:
    """Check FILES; report every problem of every file, then fail if any."""
    problems = []
    for path in files:
        try:
            if kind == "registry":
                registry = load_model(Registry, path)
                load_election(registry.election)
                console.print(f"[green]ok[/] {path}: {len(registry.difusores)} difusores")
            else:
                election = load_election(path)
                console.print(f"[green]ok[/] {path}: {election.id}")
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
