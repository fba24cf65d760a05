"""``prep-iac keys signing generate|sign|push|host-status``: publish cuts by hand or from scripts.

The same operations as the library (``prep_iac.publish``) and the Fabric tasks
(``prep_iac.publish.tasks``): sign a cut with the IEC's signing key, push it to
the registry's active difusores, read what a difusor host says it serves.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from prep_iac.cli.orchestrate import locked, operator_name, registry_option
from prep_iac.models.difusor import Difusor, DifusorStatus, Registry
from prep_iac.models.loading import load_model
from prep_iac.orchestrate.store import Store
from prep_iac.presets import load_election
from prep_iac.publish.freshness import SignedStatement, sign_statements, validity
from prep_iac.publish.manifest import CutError
from prep_iac.publish.prepare import PreparedCut, prepare_cut
from prep_iac.publish.push import (
    Credentials,
    DifusorResult,
    PushFailure,
    push_many,
    read_status,
)
from prep_iac.publish.signing import SigningError, allowed_signers_line, generate_signing_key

console = Console(stderr=True)

cut_option = click.option(
    "--cut",
    "source",
    type=click.Path(path_type=Path, exists=True),
    required=True,
    help="The cut: a directory, .zip or .tar.*.",
)
signing_key_option = click.option(
    "--signing-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="The IEC's signing private key (not its SSH key).",
)
ssh_key_option = click.option(
    "--ssh-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    envvar="PREP_IAC_SSH_KEY",
    help="The IEC's SSH private key (the difusores' SFTP accounts trust it).",
)
source_option = click.option(
    "--source-address",
    envvar="PREP_IAC_SOURCE_ADDRESS",
    help="Connect from this local address (the one the difusores admit the IEC from).",
)


@click.group()
def keys() -> None:
    """The IEC's keys."""


@keys.group()
def signing() -> None:
    """The cut-signing key (separate from the SSH key that logs in)."""


@signing.command("generate")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def signing_generate(path: Path) -> None:
    """Create an Ed25519 signing key at PATH (and PATH.pub); print its allowed_signers line."""
    if path.exists():
        raise click.ClickException(f"{path} exists; refusing to overwrite a signing key")
    generate_signing_key(path)
    click.echo(f"private key: {path} (keep it offline from the difusores)")
    click.echo(f"public key:  {path}.pub -> iec_signing_keys in the difusores' inventories")
    click.echo(allowed_signers_line(path.with_name(path.name + ".pub")), nl=False)


@click.command()
@cut_option
@click.option("--election", required=True, help="Election preset or YAML file.")
@signing_key_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Where manifests/<cut>/manifest.json(.sig) (and unpacked archives) go.",
)
def sign(source: Path, election: str, signing_key: Path, out: Path) -> None:
    """Hash every file of a cut into a manifest and sign it with the IEC's signing key."""
    prepared = prepare_cut(source, load_election(election), signing_key, out)
    manifest = out / "manifests" / prepared.manifest.cut_id / "manifest.json"
    click.echo(
        f"cut {prepared.manifest.cut_id}: {len(prepared.manifest.files)} files, "
        f"{prepared.manifest.total_bytes} bytes; signed manifest {manifest}"
    )


@click.command()
@cut_option
@registry_option
@ssh_key_option
@signing_key_option
@click.option("--election", default=None, help="Election (default: the registry's).")
@click.option("--concurrency", default=8, show_default=True, help="Nodes pushed at once.")
@click.option("--budget", type=float, default=None, help="Seconds (default: the election's).")
@source_option
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The orchestrator's database: hold its lock, push only to the difusores it has"
    " active, and record the push as an event.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --db: also push to difusores the orchestrator disabled (lifts their notice).",
)
@click.option("--operator", default=operator_name, help="Who pushes, for the record (with --db).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def push(
    source: Path,
    registry_path: Path,
    ssh_key: Path,
    signing_key: Path,
    election: str | None,
    concurrency: int,
    budget: float | None,
    source_address: str | None,
    db_path: Path | None,
    force: bool,
    operator: str,
    as_json: bool,
) -> None:
    """Sign a cut and push it to every active difusor; exit 1 if any did not confirm it.

    With --db, "active" is what the orchestrator's state says, not the registry
    file, and the push refuses at once while another command (``run``) holds
    that state.
    """
    registry = load_model(Registry, registry_path)
    chosen = load_election(election or registry.election)
    credentials = Credentials(ssh_key, source_address=source_address)

    def send(targets: list[Difusor]) -> tuple[PreparedCut, list[DifusorResult]]:
        with tempfile.TemporaryDirectory(prefix="prep-push-") as work:
            try:
                cut = prepare_cut(source, chosen, signing_key, Path(work))
            except (CutError, SigningError) as exc:
                raise click.ClickException(str(exc)) from None
            # The IEC vouches for the cut it pushes, as the orchestrator does each period.
            statements, unsigned = sign_statements(
                chosen.id, [d.id for d in targets], cut.manifest.cut_id, cut.manifest.cut_time,
                datetime.now(UTC), validity(chosen), signing_key,
            )  # fmt: skip
            if unsigned:
                raise click.ClickException(f"cannot sign freshness statements: {unsigned}")
            results = _push_with_progress(
                cut, targets, credentials, budget or chosen.transfer_budget_seconds,
                concurrency, quiet=as_json, statements=statements,
            )  # fmt: skip
        return cut, results

    if db_path is None:
        if force:
            raise click.UsageError("--force applies to the orchestrator's state: pass --db")
        cut, results = send([d for d in registry.difusores if d.status == DifusorStatus.ACTIVE])
    else:
        if not db_path.is_file():  # a mistyped path must not push past the store's decisions
            raise click.ClickException(f"no orchestrator database at {db_path}")
        with locked(db_path, "push"), Store(db_path) as store:
            cut, results = _recorded_push(store, registry, force, operator, send)
    if as_json:
        json.dump(
            {
                "cut_id": cut.manifest.cut_id,
                "ok": all(r.ok for r in results),
                "difusores": [
                    {
                        "difusor": r.difusor,
                        "ok": r.ok,
                        "nodes": [dataclasses.asdict(n) for n in r.nodes],
                    }
                    for r in results
                ],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        _summary(results)
    if not all(r.ok for r in results):
        sys.exit(1)


def _recorded_push(
    store: Store,
    registry: Registry,
    force: bool,
    operator: str,
    send: Callable[[list[Difusor]], tuple[PreparedCut, list[DifusorResult]]],
) -> tuple[PreparedCut, list[DifusorResult]]:
    """A manual push to the difusores the store has active (and disabled ones if ``force``)."""
    now = datetime.now(UTC)
    with store.transaction():
        store.sync_registry(registry, now)
    status = {s.difusor: s.status for s in store.states()}
    wanted = {DifusorStatus.ACTIVE, *([DifusorStatus.DISABLED] if force else [])}
    targets = [d for d in registry.difusores if status[d.id] in wanted]
    skipped = sorted(d.id for d in registry.difusores if status[d.id] is DifusorStatus.DISABLED
                     and not force)  # fmt: skip
    if skipped:
        console.print(f"not pushed, disabled by the orchestrator: {', '.join(skipped)}"
                      " (--force to push anyway)")  # fmt: skip
    cut, results = send(targets)
    with store.transaction():
        store.add_event(
            datetime.now(UTC), "manual-push", cut_id=cut.manifest.cut_id, operator=operator,
            confirmed=sorted(r.difusor for r in results if r.ok),
            failed=sorted(r.difusor for r in results if not r.ok),
            forced=sorted(d.id for d in targets if status[d.id] is DifusorStatus.DISABLED),
            skipped=skipped,
        )  # fmt: skip
    return cut, results


def _push_with_progress(
    cut: PreparedCut,
    targets: list[Difusor],
    credentials: Credentials,
    budget: float,
    concurrency: int,
    quiet: bool,
    statements: dict[str, SignedStatement],
) -> list[DifusorResult]:
    """push_many with one progress line per difusor (waiting -> confirmed/failed)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as progress:
        tasks = {
            d.id: progress.add_task(f"{d.id}: pushing {cut.manifest.cut_id}", total=1)
            for d in targets
        }
        lock = threading.Lock()

        def done(result: DifusorResult) -> None:
            sent = sum(n.bytes_sent for n in result.nodes)
            word = "[green]confirmed" if result.ok else "[red]failed"
            with lock:
                progress.update(
                    tasks[result.difusor],
                    completed=1,
                    description=f"{result.difusor}: {word}[/] ({sent} bytes)",
                )

        return push_many(
            cut, targets, credentials, budget, concurrency, on_result=done, statements=statements
        )


def _summary(results: list[DifusorResult]) -> None:
    table = Table(title="Push summary")
    for column in ("difusor", "node", "outcome", "bytes", "files", "attempts", "seconds", "error"):
        table.add_column(column)
    for result in results:
        for node in result.nodes:
            table.add_row(
                result.difusor,
                node.node,
                "[green]confirmed" if node.ok else "[red]failed",
                str(node.bytes_sent),
                str(node.files_sent),
                str(node.attempts),
                f"{node.duration_s:.1f}",
                node.error_class,
            )
    Console().print(table)


@click.command("host-status")
@registry_option
@click.option("--difusor", "difusor_id", required=True, help="Difusor id in the registry.")
@ssh_key_option
@source_option
def host_status(
    registry_path: Path, difusor_id: str, ssh_key: Path, source_address: str | None
) -> None:
    """Print each node's status.json (what it serves, its last outcome) as JSON."""
    registry = load_model(Registry, registry_path)
    try:
        difusor = registry.get(difusor_id)
    except KeyError as exc:
        raise click.ClickException(str(exc)) from None
    credentials = Credentials(ssh_key, source_address=source_address)
    failed = False
    out = {}
    for node in difusor.nodes:
        try:
            out[f"{node.host}:{node.port}"] = read_status(difusor, node, credentials)
        except PushFailure as exc:
            failed = True
            out[f"{node.host}:{node.port}"] = {"error_class": exc.error_class, "error": str(exc)}
    click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    if failed:
        sys.exit(1)
