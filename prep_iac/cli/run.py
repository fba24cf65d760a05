"""``prep-iac run|reinstate``: the election-night loop, and putting a difusor back.

``run`` is the long-running orchestrator (``prep_iac.orchestrate.runner``):
every update period it pushes the newest complete cut of ``--cuts`` to every
active difusor and applies clause III. It stops on SIGTERM or SIGINT, letting
pushes in flight finish for ``--stop-grace`` seconds and recording which did.

``run --systemd-unit`` prints a systemd unit that runs the same command as a
service (``prep_iac.orchestrate.service``) instead of running it.

``reinstate`` pushes the newest cut to a disabled difusor and re-enables it
(and its link on the IEC's list) only if every node confirmed it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import click
from rich.console import Console

from prep_iac.cli.orchestrate import db_option, locked, registry_option
from prep_iac.cli.publish import source_option, ssh_key_option
from prep_iac.models.difusor import DifusorStatus, Registry
from prep_iac.models.election import Election
from prep_iac.models.loading import load_model
from prep_iac.orchestrate import outbox, strikes
from prep_iac.orchestrate.runner import (
    CutSource,
    PeriodPushes,
    Runner,
    default_handlers,
    prep_closed,
)
from prep_iac.orchestrate.runner import newest_prepared as newest_cut
from prep_iac.orchestrate.schedule import Drill, PeriodClock, utc_now
from prep_iac.orchestrate.service import ServiceUnit, render_unit
from prep_iac.orchestrate.settings import OrchestratorSettings, load_settings
from prep_iac.orchestrate.store import Store
from prep_iac.presets import load_election
from prep_iac.publish.freshness import sign_statements, validity
from prep_iac.publish.push import Credentials, push_difusor
from prep_iac.publish.signing import SigningError

console = Console()
DEFAULT_WORKDIR = Path("/var/lib/prep-iac/work")

cuts_option = click.option(
    "--cuts",
    "cuts_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    envvar="PREP_IAC_CUTS",
    help="SOURCE: where the PREP drops cuts (<cut>/ + <cut>.complete, or .zip/.tar.*).",
)
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    envvar="PREP_IAC_ORCHESTRATOR_CONFIG",
    help="Orchestrator settings (YAML): notify, iec_list, signing_key, instructions_dir.",
)
signing_key_option = click.option(
    "--signing-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    envvar="PREP_IAC_SIGNING_KEY",
    help="The IEC's cut-signing key (default: signing_key of --config).",
)
workdir_option = click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_WORKDIR,
    show_default=True,
    help="Signed manifests and unpacked archives.",
)


def orchestrator_options(command: Callable[..., None]) -> Callable[..., None]:
    """The inputs ``run`` and ``reinstate`` share: registry, cuts, state, settings and keys."""
    for option in reversed(
        (registry_option, cuts_option, db_option, config_option, ssh_key_option,
         signing_key_option, source_option, workdir_option)
    ):  # fmt: skip
        command = option(command)
    return command


def _setup(
    registry_path: Path, election_id: str | None, config_path: Path | None,
    signing_key: Path | None,
) -> tuple[Registry, Election, OrchestratorSettings, Path]:  # fmt: skip
    registry = load_model(Registry, registry_path)
    if election_id is not None and election_id != registry.election:
        raise click.UsageError(
            f"--election {election_id}, but {registry_path} is for election {registry.election}"
        )
    settings = load_settings(config_path) if config_path else OrchestratorSettings()
    key = signing_key or settings.signing_key
    if key is None:
        raise click.UsageError("no signing key: pass --signing-key or set signing_key in --config")
    return registry, load_election(registry.election), settings, key


def _summary(report: PeriodPushes, election: Election) -> str:
    start = report.period.start.astimezone(election.tz)
    failed = [r for r in report.results if not r.ok]
    text = f"{start:%Y-%m-%d %H:%M} cut {report.cut_id or '—'}: "
    text += f"{len(report.results) - len(failed)} pushed"
    if failed:
        errors = ", ".join(
            f"{r.difusor} ({next(n.error_class for n in r.nodes if not n.ok)})" for r in failed
        )
        text += f", [red]{len(failed)} failed[/]: {errors}"
    return text


@click.command()
@click.option(
    "--election", "election_id", help="Election preset id (checked against the registry)."
)
@orchestrator_options
@click.option(
    "--drill",
    "drill_seconds",
    type=click.FloatRange(min=0.5),
    metavar="SECONDS",
    help="Simulacro: run each update period in SECONDS, from the window's start.",
)
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--stop-grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds pushes in flight may finish after SIGTERM (with --systemd-unit: default the"
    " election's transfer budget, so a push in flight always finishes).",
)
@click.option("--connect-timeout", type=click.FloatRange(min=1), default=10.0, show_default=True)
@click.option(
    "--systemd-unit",
    "systemd_unit",
    is_flag=True,
    help="Print a systemd unit that runs this command as a service, and exit.",
)
@click.option(
    "--service-user",
    default="prep-iac",
    show_default=True,
    help="With --systemd-unit: the system user the service runs as.",
)
def run(
    election_id: str | None, registry_path: Path, cuts_dir: Path, db_path: Path,
    config_path: Path | None, ssh_key: Path, signing_key: Path | None,
    source_address: str | None, workdir: Path, drill_seconds: float | None, concurrency: int,
    stop_grace: float, connect_timeout: float, systemd_unit: bool, service_user: str,
) -> None:  # fmt: skip
    """Push the newest cut to every active difusor each update period; apply clause III."""
    registry, election, settings, key = _setup(registry_path, election_id, config_path, signing_key)
    if systemd_unit:
        if drill_seconds:
            raise click.UsageError("--systemd-unit is for the real night, not --drill")
        source = click.get_current_context().get_parameter_source("stop_grace")
        if source is click.core.ParameterSource.DEFAULT:
            stop_grace = float(election.transfer_budget_seconds)
        paths = {
            "--difusores": registry_path, "--cuts": cuts_dir, "--db": db_path,
            "--ssh-key": ssh_key, "--signing-key": key, "--workdir": workdir,
            **({"--config": config_path} if config_path else {}),
        }  # fmt: skip
        options = ["--concurrency", str(concurrency), "--stop-grace", f"{stop_grace:g}",
                   "--connect-timeout", f"{connect_timeout:g}",
                   *(["--source-address", source_address] if source_address else [])]  # fmt: skip
        click.echo(_unit(election, settings, paths, options, stop_grace, service_user), nl=False)
        return
    drill = Drill.compress(election, utc_now(), drill_seconds) if drill_seconds else None
    clock = PeriodClock(election, drill=drill)
    credentials = Credentials(
        ssh_key, connect_timeout=connect_timeout, source_address=source_address
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        console.print(f"{signal.Signals(signum).name}: stopping (grace {stop_grace:g} s)")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with locked(db_path, "run"), Store(db_path) as store:
        runner = Runner(
            store, registry, election, CutSource(cuts_dir, election), key, workdir, credentials,
            clock,
            handlers=default_handlers(
                settings, store, registry, registry_path.parent, election, credentials, clock.now
            ),
            concurrency=concurrency, grace_s=stop_grace,
            on_period_end=[lambda report: console.print(_summary(report, election))],
            canaries=settings.canaries, iec_fault=settings.iec_fault.rule,
        )  # fmt: skip
        mode = f"drill, a period every {drill_seconds:g} s" if drill else "real time"
        console.print(
            f"prep-iac run: {election.id}, {len(registry.difusores)} difusores, cuts from"
            f" {cuts_dir} ({mode})"
        )
        outcome = runner.run(stop)
    console.print(f"prep-iac run: {outcome}")
    if threading.active_count() > 1:
        # Pushes abandoned after the grace still hold worker threads, which the
        # interpreter would wait for at exit; the record is already committed.
        sys.stdout.flush()
        os._exit(0)


@click.command()
@click.argument("difusor")
@orchestrator_options
@click.option(
    "--operator",
    default=lambda: os.environ.get("SUDO_USER") or getpass.getuser(),
    help="Who decides (default: the login name).",
)
def reinstate(
    difusor: str, registry_path: Path, cuts_dir: Path, db_path: Path, config_path: Path | None,
    ssh_key: Path, signing_key: Path | None, source_address: str | None, workdir: Path,
    operator: str,
) -> None:  # fmt: skip
    """Push the newest cut to disabled DIFUSOR; re-enable it and its link if every node confirms."""
    registry, election, settings, key = _setup(registry_path, None, config_path, signing_key)
    try:
        target = registry.get(difusor)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    if not db_path.is_file():
        raise click.ClickException(f"no orchestrator database at {db_path} (pass --db)")
    # Locked while preparing too: run unpacks cuts into the same --workdir.
    with locked(db_path, f"reinstate {difusor}"):
        try:
            found = newest_cut(CutSource(cuts_dir, election), election, key, workdir)
        except SigningError as exc:
            raise click.ClickException(str(exc)) from None
        if found is None:
            raise click.ClickException(f"no complete cut in {cuts_dir}")
        cut, prepared = found
        credentials = Credentials(ssh_key, source_address=source_address)
        with Store(db_path) as store:
            store_state = store.state(difusor) if difusor in _known(store) else None
            if store_state is None or store_state.status is not DifusorStatus.DISABLED:
                state = store_state.status.value if store_state else target.status.value
                raise click.ClickException(f"{difusor} is {state}, not disabled")
            period = store.last_period()
            if period is None:
                raise click.ClickException("no period recorded yet: nothing to attach the push to")
            console.print(f"pushing cut {cut.cut_id} to {difusor} ({len(target.nodes)} node(s))")
            final = prep_closed(store)
            statements, unsigned = sign_statements(
                election.id, [difusor], cut.cut_id, cut.cut_time, datetime.now(UTC),
                None if final else validity(election), key,
            )  # fmt: skip
            if unsigned:
                why = unsigned[difusor]
                raise click.ClickException(f"cannot sign {difusor}'s statement: {why}")
            result = push_difusor(
                prepared, target, credentials, election.transfer_budget.total_seconds(),
                statement=statements[difusor],
            )  # fmt: skip
            now = datetime.now(UTC)
            try:
                strikes.reinstate(store, registry, period.start, result, cut.ref, now, operator)
            except strikes.StrikeError as exc:
                raise click.ClickException(str(exc)) from None
            clock = _now
            handlers = default_handlers(
                settings, store, registry, registry_path.parent, election, None, clock
            )
            outbox.perform_pending(store, handlers, clock)
    for node in result.nodes:
        mark = "[green]confirmed[/]" if node.ok else f"[red]{node.error_class}[/]: {node.error}"
        console.print(f"  {node.node}: {mark} ({node.bytes_sent} bytes, {node.duration_s:.1f} s)")
    if not result.ok:
        raise click.ClickException(
            f"{difusor} stays disabled: not every node confirmed {cut.cut_id}"
        )
    console.print(f"[bold green]reinstated[/] {difusor} at cut {cut.cut_id}")


def _unit(
    election: Election, settings: OrchestratorSettings, paths: dict[str, Path],
    options: list[str], stop_grace: float, user: str,
) -> str:  # fmt: skip
    """The systemd unit running ``prep-iac run`` with these options (absolute paths)."""
    absolute = {name: path.absolute() for name, path in paths.items()}
    command = [_executable(), "run", "--election", election.id]
    for name, path in absolute.items():
        command += [name, str(path)]
    listing = settings.iec_list.directory
    writable = {
        absolute["--db"].parent, absolute["--workdir"], settings.instructions_dir.absolute(),
        *([listing.absolute()] if listing else []),
    }  # fmt: skip
    hidden = [str(p) for p in sorted(writable) if p.is_relative_to("/tmp")]  # noqa: S108 (a check)
    if hidden:  # PrivateTmp=yes gives the service its own, empty /tmp
        click.echo(f"warning: the service will not see {', '.join(hidden)} (PrivateTmp=yes);"
                   " use paths under /var/lib", err=True)  # fmt: skip
    return render_unit(
        ServiceUnit(
            election=election.id, command=[*command, *options], user=user,
            writable=sorted(writable), transfer_budget_s=election.transfer_budget_seconds,
            stop_grace_s=stop_grace,
        )
    )  # fmt: skip


def _executable() -> str:
    """The absolute path of ``prep-iac`` (beside this Python, as in a venv, or on PATH)."""
    beside = Path(sys.executable).parent / "prep-iac"
    found = str(beside) if beside.is_file() else shutil.which("prep-iac")
    if found is None:
        raise click.ClickException("cannot find the prep-iac executable for ExecStart")
    return str(Path(found).absolute())


def _known(store: Store) -> set[str]:
    return {s.difusor for s in store.states()}


def _now() -> datetime:
    return datetime.now(UTC)
