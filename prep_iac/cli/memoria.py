"""``prep-iac memoria``, ``prep-iac informe`` and ``prep-iac synth-traffic``.

The reports' libraries (DuckDB, matplotlib, WeasyPrint, Fabric) are imported by
the commands that use them, so that every other ``prep-iac`` command starts fast.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path

import click
from rich.console import Console

from prep_iac.models.difusor import Registry
from prep_iac.models.loading import load_model
from prep_iac.presets import load_election

console = Console()
err_console = Console(stderr=True)
files = click.Path(path_type=Path, dir_okay=False, exists=True)


def _dates(values: tuple[str, ...]) -> list[date]:
    try:
        return [date.fromisoformat(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; expected YYYY-MM-DD", param_hint="--day") from exc


@click.command()
@click.option(
    "--election",
    default="coahuila-2018",
    show_default=True,
    help="Election preset or YAML file (its dates are the default days).",
)
@click.option(
    "--inventory", type=files, help="Fetch the logs over SSH from this pyinfra inventory's hosts."
)
@click.option(
    "--ssh-key", type=files, help="Key for --inventory (default: your SSH agent and keys)."
)
@click.option(
    "--known-hosts", type=files, help="known_hosts for --inventory (default: ~/.ssh/known_hosts)."
)
@click.option(
    "--access-log",
    "access_logs",
    multiple=True,
    type=files,
    help="An access log of the election (JSON lines or combined; .gz too). Repeatable.",
)
@click.option(
    "--normal-log",
    "normal_logs",
    multiple=True,
    type=files,
    help="The portal's access log of normal days (any combined log). Repeatable.",
)
@click.option(
    "--host-log",
    "host_logs",
    multiple=True,
    type=files,
    help="events.log, activate.log, eve.json or modsec_audit.log. Repeatable.",
)
@click.option("--incidents", type=files, help="The IEC's CSV (prep-iac events --format csv).")
@click.option("--difusor", help="Your id in the IEC's registry (selects your rows of --incidents).")
@click.option("--name", "difusor_name", help="Your name as the report shows it.")
@click.option(
    "--site-host",
    "site_hosts",
    multiple=True,
    help="Your PREP site's host name (not counted as a referrer). Repeatable.",
)
@click.option(
    "--day", "days", multiple=True, help="A local date of the election (YYYY-MM-DD). Repeatable."
)
@click.option("--comments", type=files, help="A text file with your comments for the report.")
@click.option(
    "--no-bitacoras", is_flag=True, help="Do not write bitacoras.tar (e.g. when re-running)."
)
@click.option("--no-pdf", is_flag=True, help="Do not write memoria.pdf (e.g. to check figures).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
def memoria(
    election: str, inventory: Path | None, ssh_key: Path | None, known_hosts: Path | None,
    access_logs: tuple[Path, ...], normal_logs: tuple[Path, ...], host_logs: tuple[Path, ...],
    incidents: Path | None, difusor: str | None, difusor_name: str | None,
    site_hosts: tuple[str, ...], days: tuple[str, ...], comments: Path | None,
    no_bitacoras: bool, no_pdf: bool, out: Path,
) -> None:  # fmt: skip
    """The memoria técnica (clause VI): HTML, PDF, figures and bitácoras from your logs."""
    from prep_iac.memoria import MemoriaRequest, build_memoria
    from prep_iac.memoria.bitacoras import BitacorasError

    began = time.monotonic()
    chosen = load_election(election)
    wanted = _dates(days) or [chosen.election_day, chosen.election_day + timedelta(days=1)]
    access, host = list(access_logs), list(host_logs)
    names, hosts = difusor_name, list(site_hosts)
    if inventory is not None:
        # Fabric and Paramiko (a tenth of a second to import) only when fetching.
        from prep_iac.memoria.fetch import fetch_logs, read_inventory

        read = read_inventory(inventory)
        since = datetime.combine(min(wanted), datetime.min.time(), chosen.tz)
        console.print(f"fetching logs from {len(read.hosts)} host(s) into {out / 'logs'}")
        fetched = fetch_logs(read.hosts, out / "logs", since, ssh_key, known_hosts)
        for failure in fetched.failed:
            err_console.print(f"[yellow]not fetched[/] {failure}", highlight=False)
        access += fetched.access
        host += fetched.host
        names = names or read.difusor_name
        hosts += read.server_names
    if not access:
        raise click.UsageError("no access logs: give --access-log FILE or --inventory FILE")
    request = MemoriaRequest(
        election=chosen, access_logs=access, normal_logs=list(normal_logs), host_logs=host,
        incident_csv=incidents, difusor=difusor, difusor_name=names or "Difusor oficial",
        own_hosts=hosts, days=wanted, out=out, bitacoras=not no_bitacoras, pdf=not no_pdf,
        comments=comments.read_text(encoding="utf-8") if comments else "",
    )  # fmt: skip
    try:
        result = build_memoria(
            request, progress=lambda line: err_console.print(line, highlight=False)
        )
    except BitacorasError as exc:
        raise click.ClickException(
            f"{exc}. The memoria was not written (--no-bitacoras writes it without the archive)"
        ) from exc
    for problem in result.problems:
        err_console.print(f"[yellow]skipped[/] {problem}", highlight=False, soft_wrap=True)
    for day in result.figures.empty_days:
        err_console.print(f"[yellow]warning[/] no access-log request on {day}", highlight=False)
    readers = result.figures.readers
    console.print(
        f"{result.figures.all_clients.total_requests:,} requests in the period"
        f" ({readers.hits if readers else 0:,} from readers), {result.skipped:,} skipped lines,"
        f" {time.monotonic() - began:.1f} s",
        highlight=False,
    )
    for path in result.outputs:
        console.print(f"  {path}", highlight=False)


@click.command()
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=Path("/var/lib/prep-iac/orchestrator.sqlite3"),
    show_default=True,
    envvar="PREP_IAC_DB",
)
@click.option(
    "--difusores",
    "registry_path",
    type=files,
    envvar="PREP_IAC_DIFUSORES",
    help="The registry (names and nodes); without it, nodes come from the attempts.",
)
@click.option("--election", help="Election preset or file (default: the registry's).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
def informe(db_path: Path, registry_path: Path | None, election: str | None, out: Path) -> None:
    """The IEC's report of the night, per difusor, from the orchestrator's store."""
    from prep_iac.informe import write_informe

    registry = load_model(Registry, registry_path) if registry_path else None
    name = election or (registry.election if registry else "coahuila-2018")
    for path in write_informe(db_path, out, load_election(name), registry):
        console.print(f"  {path}", highlight=False)


@click.command("synth-traffic")
@click.option("--election", default="coahuila-2018", show_default=True)
@click.option(
    "--requests",
    default=200_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="About this many requests in all.",
)
@click.option(
    "--normal-days",
    default=7,
    show_default=True,
    type=click.IntRange(min=0),
    help="Ordinary days before the election (one a week, same weekday).",
)
@click.option("--seed", default=2018, show_default=True, type=int)
@click.option("--gzip", "gzipped", is_flag=True, help="Write .gz files.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
def synth_traffic(
    election: str, requests: int, normal_days: int, seed: int, gzipped: bool, out: Path
) -> None:
    """Synthetic access logs of an election night and of normal days (JSON and combined)."""
    from prep_iac.memoria.synthetic import TrafficSpec, write_logs

    chosen = load_election(election)
    suffix = ".gz" if gzipped else ""
    normal = tuple(chosen.election_day - timedelta(weeks=w) for w in range(normal_days, 0, -1))
    election_share = 0.8 if normal else 1.0
    written = write_logs(
        TrafficSpec(chosen.election_day, requests=int(requests * election_share), seed=seed,
                    timezone=chosen.timezone),
        out / f"prep-access.log{suffix}", out / f"prep-access.combined.log{suffix}",
    )  # fmt: skip
    console.print(f"{written:,} election requests: {out}/prep-access.log{suffix} (+ combined)")
    if normal:
        written = write_logs(
            TrafficSpec(chosen.election_day, normal_days=normal, election_share=0.0,
                        requests=requests - int(requests * election_share), seed=seed + 1,
                        timezone=chosen.timezone),
            None, out / f"portal-normal.log{suffix}",
        )  # fmt: skip
        console.print(f"{written:,} normal-day requests: {out}/portal-normal.log{suffix}")
