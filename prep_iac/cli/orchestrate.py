"""``prep-iac status|events|disable|list``: the orchestrator's state, for operators.

These commands read and change the orchestrator's database; they never push.
``disable`` changes it, so it holds the state's lock (``orchestrate.lock``)
like ``run``: it refuses while another command holds it. ``locked`` is how
every command takes that lock.
Actions a decision requires (the signed suspension, notices) are queued in the
database and performed by the running orchestrator; ``list render`` publishes
the IEC's list of difusores itself.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from prep_iac.models.difusor import DifusorStatus, Registry
from prep_iac.models.election import Election
from prep_iac.models.loading import load_model
from prep_iac.orchestrate import outbox, runner, strikes
from prep_iac.orchestrate.iec_list import ListPublisher, S3Target
from prep_iac.orchestrate.lock import StateLocked, state_lock
from prep_iac.orchestrate.settings import IecListSettings, load_settings
from prep_iac.orchestrate.store import DifusorState, Event, Store
from prep_iac.presets import load_election

DEFAULT_DB = Path("/var/lib/prep-iac/orchestrator.sqlite3")
console = Console()

db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_DB,
    show_default=True,
    envvar="PREP_IAC_DB",
    help="The orchestrator's SQLite database.",
)
registry_option = click.option(
    "--difusores",
    "registry_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    envvar="PREP_IAC_DIFUSORES",
    help="The registry of difusores (YAML).",
)


@contextmanager
def locked(db_path: Path, command: str) -> Iterator[None]:
    """Hold the lock of the state in ``db_path``; a clear error when another process does."""
    try:
        with state_lock(db_path, command):
            yield
    except StateLocked as exc:
        raise click.ClickException(str(exc)) from None


def _open(db_path: Path, must_exist: bool = True) -> Store:
    if must_exist and not db_path.is_file():
        raise click.ClickException(
            f"no orchestrator database at {db_path} (pass --db, or set PREP_IAC_DB)"
        )
    return Store(db_path)


def _load(registry_path: Path) -> tuple[Registry, Election]:
    registry = load_model(Registry, registry_path)
    return registry, load_election(registry.election)


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "—"
    minutes = int((now - since).total_seconds() // 60)
    if minutes >= 24 * 60:
        return f"{minutes // 1440} d {minutes % 1440 // 60} h"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _rows(store: Store, registry: Registry, election: Election) -> list[dict[str, Any]]:
    states = {s.difusor: s for s in store.states()}
    rows = []
    for difusor in registry.difusores:
        state = states.get(difusor.id)
        rows.append(
            {
                "difusor": difusor.id,
                "nodes": len(difusor.nodes),
                "state": state.status.value if state else difusor.status.value,
                "strikes": state.strikes if state else 0,
                "strike_limit": election.strike_limit,
                "live_cut": state.last_cut_id if state else None,
                "live_cut_time": _iso(state.last_cut_time if state else None),
                "confirmed_at": _iso(state.last_confirmed_at if state else None),
                "last_error_class": state.last_error_class if state else "",
                "last_error": state.last_error if state else "",
                "disabled_at": _iso(state.disabled_at if state else None),
                "reason": state.reason if state else "",
                "_state": state,
            }
        )
    return rows


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


STATE_STYLE = {"active": "green", "disabled": "bold red", "pending": "yellow"}


def _table(rows: list[dict[str, Any]], election: Election, now: datetime) -> Table:
    table = Table(title=f"{election.id}: {now.astimezone(election.tz):%Y-%m-%d %H:%M:%S %Z}")
    for name in ("difusor", "nodes", "live cut", "age", "strikes", "state"):
        table.add_column(name, no_wrap=True)
    table.add_column("last error", overflow="fold", min_width=10)  # the one column that may wrap
    for row in rows:
        state: DifusorState | None = row["_state"]
        style = STATE_STYLE.get(row["state"], "")
        error = f"{row['last_error_class']}: {row['last_error']}" if row["last_error_class"] else ""
        if row["state"] == DifusorStatus.DISABLED.value:
            error = row["reason"] or error
        table.add_row(
            row["difusor"],
            str(row["nodes"]),
            row["live_cut"] or "—",
            _age(state.last_cut_time if state else None, now),
            f"{row['strikes']}/{row['strike_limit']}",
            f"[{style}]{row['state']}[/]" if style else row["state"],
            error,
        )
    return table


@click.command()
@db_option
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print the states as JSON.")
@click.option(
    "--watch",
    type=click.FloatRange(min=0.5),
    default=None,
    metavar="SECONDS",
    help="Refresh every SECONDS until interrupted.",
)
def status(db_path: Path, registry_path: Path, as_json: bool, watch: float | None) -> None:
    """Each difusor: nodes, live cut and its age, strikes, state, last error."""
    registry, election = _load(registry_path)
    with _open(db_path) as store:
        if as_json:
            rows = [
                {k: v for k, v in r.items() if k != "_state"}
                for r in _rows(store, registry, election)
            ]
            click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
            return
        if watch is None:
            console.print(_table(_rows(store, registry, election), election, datetime.now(UTC)))
            return
        with Live(console=console, auto_refresh=False) as live:
            try:
                while True:
                    now = datetime.now(UTC)
                    live.update(
                        _table(_rows(store, registry, election), election, now), refresh=True
                    )
                    time.sleep(watch)
            except KeyboardInterrupt:
                return


RELATIVE = re.compile(r"^(\d+)\s*([mhd])$")


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``2h``, ``1d`` ago, or an ISO 8601 time (without offset: UTC)."""
    match = RELATIVE.match(text.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match[2]]
        return now - timedelta(**{unit: int(match[1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: expected 30m, 2h, 1d or an ISO 8601 time such as 2018-07-01T18:00-05:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _event_row(event: Event) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "kind": event.kind,
        "difusor": event.difusor or "",
        "period": _iso(event.period) or "",
        "detail": event.detail,
    }


@click.command()
@db_option
@click.option("--since", default="1d", show_default=True, help="30m, 2h, 1d or an ISO 8601 time.")
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable).")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
def events(db_path: Path, since: str, kinds: tuple[str, ...], fmt: str) -> None:
    """Everything the orchestrator decided and did, oldest first (the incident report)."""
    start = parse_since(since, datetime.now(UTC))
    with _open(db_path) as store:
        rows = [_event_row(e) for e in store.events(since=start, kinds=kinds or None)]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, ["at", "kind", "difusor", "period", "detail"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {**row, "detail": json.dumps(row["detail"], ensure_ascii=False, sort_keys=True)}
        )
    click.echo(out.getvalue(), nl=False)


def operator_name() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


@click.command()
@click.argument("difusor")
@click.option("--reason", required=True, help="Why, for the record and the notices (Spanish).")
@click.option("--operator", default=operator_name, help="Who decides (default: the login name).")
@db_option
@registry_option
def disable(difusor: str, reason: str, operator: str, db_path: Path, registry_path: Path) -> None:
    """Disable DIFUSOR by hand: no more cuts; suspension, notices and list update are queued."""
    registry, _ = _load(registry_path)
    try:
        registry.get(difusor)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    with locked(db_path, f"disable {difusor}"), _open(db_path, must_exist=False) as store:
        try:
            actions = strikes.disable(store, registry, difusor, reason, datetime.now(UTC), operator)
        except strikes.StrikeError as exc:
            raise click.ClickException(str(exc)) from None
    queued = ", ".join(sorted({a.kind for a in actions}))
    console.print(f"[bold red]disabled[/] {difusor} ({reason}); queued: {queued}")


@click.command("close-prep")
@click.option("--cut", "cut_id", default=None, help="The PREP's last cut id, for the record.")
@click.option("--operator", default=operator_name, help="Who decides (default: the login name).")
@db_option
def close_prep(cut_id: str | None, operator: str, db_path: Path) -> None:
    """Record that the PREP published its last cut: from now on every freshness statement
    is final ("publicación concluida"), so each difusor keeps its last cut published through
    the rest of the window and after. The running orchestrator takes it at its next push."""
    with _open(db_path, must_exist=True) as store:
        if not runner.close_prep(store, datetime.now(UTC), operator, cut_id=cut_id):
            raise click.ClickException("the PREP's close is already recorded")
    console.print(f"PREP closed{f' at cut {cut_id}' if cut_id else ''}: statements are final")


@click.group("list")
def iec_list() -> None:
    """The IEC's public list of difusores (clause I.7)."""


@iec_list.command()
@db_option
@registry_option
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    envvar="PREP_IAC_ORCHESTRATOR_CONFIG",
    help="Orchestrator settings (YAML): iec_list.directory, iec_list.s3, page settings.",
)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Local directory.")
@click.option("--s3-bucket", help="Also publish to this S3 bucket.")
@click.option("--s3-prefix", default="", help="Key prefix in the bucket.")
@click.option("--s3-region", default="us-east-1", show_default=True)
@click.option("--s3-endpoint-url", help="For S3-compatible services other than AWS.")
def render(
    db_path: Path, registry_path: Path, config_path: Path | None, out: Path | None,
    s3_bucket: str | None, s3_prefix: str, s3_region: str, s3_endpoint_url: str | None,
) -> None:  # fmt: skip
    """Render the list from the live states and publish it to --out and/or S3.

    Targets given as options replace those of --config.
    """
    listing = load_settings(config_path).iec_list if config_path else IecListSettings()
    s3 = listing.s3
    if s3_bucket is not None:
        s3 = S3Target.model_validate(
            {"bucket": s3_bucket, "prefix": s3_prefix, "region": s3_region,
             "endpoint_url": s3_endpoint_url}
        )  # fmt: skip
    out = out or listing.directory
    if out is None and s3 is None:
        raise click.UsageError("give --out DIR, --s3-bucket BUCKET, or a --config that has them")
    registry, election = _load(registry_path)
    with _open(db_path) as store:
        publisher = ListPublisher(
            store, registry, registry_path.parent, election, lambda: datetime.now(UTC), out, s3,
            listing,
        )  # fmt: skip
        rendered = publisher.publish()
        # The list just published shows every decision so far: queued renders are done.
        outbox.perform_pending(
            store, {"render-list": lambda _action: None}, lambda: datetime.now(UTC)
        )
    for missing in rendered.missing_logos:
        console.print(f"[yellow]warning:[/] logo not found for {missing}")
    where = " and ".join(str(x) for x in (out, s3 and f"s3://{s3.bucket}/{s3.prefix}") if x)
    console.print(f"published {len(rendered.files)} files to {where}")
