"""``prep-iac synth``: generate a night of synthetic PREP cuts and summarise them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from prep_iac.cuts import CutInfo, generate_night
from prep_iac.presets import load_election

# The README's documented place. Cuts are public, synthetic data, and the writer creates
# every file exclusively ("xb"), so a planted file cannot be overwritten through it.
DEFAULT_OUT = Path("/var/tmp/prep-iac/cuts")  # noqa: S108
DEFAULT_CUTS = 24
"""The night's first four hours at 10-minute periods: actas start arriving, a few seconds' work."""

console = Console()
err_console = Console(stderr=True)


def _disk_bytes(infos: list[CutInfo]) -> int:
    """Bytes on disk, each hard-linked inode counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for info in infos:
        for path in info.path.rglob("*"):
            stat = path.stat()
            key = (stat.st_dev, stat.st_ino)
            if path.is_file() and key not in seen:
                seen.add(key)
                total += stat.st_size
    return total


@click.command()
@click.option(
    "--election", default="coahuila-2018", show_default=True, help="Preset name or YAML file."
)
@click.option(
    "--cuts",
    default=DEFAULT_CUTS,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many cuts from the window's start (24: the first 4 hours at 10-minute periods).",
)
@click.option(
    "--out",
    default=DEFAULT_OUT,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Parent directory; each cut goes to OUT/<cut id>/.",
)
@click.option("--seed", default=2018, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--every",
    metavar="K",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Take one update period in K (6 with 10-minute periods: hourly cuts).",
)
@click.option(
    "--no-link",
    is_flag=True,
    help="Write unchanged files again instead of hard-linking them to the previous cut.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the cuts as JSON instead of a table.")
def synth(
    election: str, cuts: int, out: Path, seed: int, every: int, no_link: bool, as_json: bool
) -> None:
    """Generate synthetic PREP cuts (a complete publication site each) for drills and tests."""
    e = load_election(election)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]synth[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{e.id} → {out}", total=cuts)

        def advance(info: CutInfo) -> None:
            progress.update(task, advance=1, description=f"{e.id} {info.id}")

        infos = generate_night(
            e, out, cuts=cuts, seed=seed, every=every, link_unchanged=not no_link, progress=advance
        )
    elapsed = time.perf_counter() - started

    if as_json:
        click.echo(json.dumps([i.model_dump(mode="json") for i in infos], indent=2))
        return
    table = Table(title=f"{e.id}: {len(infos)} cuts in {out} (seed {seed})")
    table.add_column("cut")
    table.add_column(f"local time ({e.csv_offset_label})")
    table.add_column("files", justify="right")
    table.add_column("MB", justify="right")
    table.add_column("changed", justify="right")
    table.add_column("% actas contab.", justify="right")
    for info in infos:
        table.add_row(
            info.id,
            f"{info.time.astimezone(e.tz):%Y-%m-%d %H:%M}",
            f"{info.files:,}",
            f"{info.megabytes:.2f}",
            f"{info.changed_files:,}",
            f"{info.counted_percent:.4f}",
        )
    console.print(table)
    apparent = sum(i.bytes for i in infos)
    console.print(
        f"{len(infos)} cuts, {apparent / 1e6:,.1f} MB of files,"
        f" {_disk_bytes(infos) / 1e6:,.1f} MB on disk (unchanged files hard-linked),"
        f" generated in {elapsed:.1f} s",
        highlight=False,
    )
