"""``prep-iac testbed``: bring test hosts up and down, reach them, and inject faults."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from rich.console import Console
from rich.table import Table

from prep_iac.testbed import Testbed, TestbedError, TestbedSettings, image, preflight
from prep_iac.testbed.settings import RELEASES, release_suite
from prep_iac.testbed.state import recorded_names
from prep_iac.testbed.testbed import DEFAULT_NAME

console = Console()
P = ParamSpec("P")
R = TypeVar("R")

name_option = click.option(
    "--name",
    "-n",
    default=DEFAULT_NAME,
    show_default=True,
    envvar="PREP_IAC_TESTBED",
    help="Testbed name (env PREP_IAC_TESTBED); two testbeds with different names coexist.",
)


def reported(func: Callable[P, R]) -> Callable[P, R]:
    """Turn testbed errors (including 'not root' and missing tools) into a clean message."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except TestbedError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


@click.group()
def testbed() -> None:
    """Real difusor test hosts on this machine (root): netns + systemd-nspawn + apt proxy."""


@testbed.command()
@name_option
@click.option("--hosts", "-H", "count", default=2, show_default=True, help="Hosts difusor-1..N.")
@click.option("--rebuild-image", is_flag=True, help="Rebuild the cached base image first.")
@click.option("--lan", is_flag=True, help="Also join the hosts to one L2 segment (for VRRP).")
@click.option(
    "--release",
    default=None,
    metavar="RELEASE[,RELEASE...]",
    help="Debian release of the hosts: bookworm (12, the default) or trixie (13);"
    " a comma-separated list gives one per host, in order.",
)
@reported
def up(name: str, count: int, rebuild_image: bool, lan: bool, release: str | None) -> None:
    """Create, boot and wait for hosts difusor-1..N."""
    started = time.monotonic()
    releases: str | list[str] | None = release
    if release is not None and "," in release:
        releases = [r.strip() for r in release.split(",")]
    bed = Testbed.up(name, hosts=count, rebuild_image=rebuild_image, lan=lan, release=releases)
    console.print(f"testbed [bold]{name}[/] up in {time.monotonic() - started:.1f} s")
    _print(bed)
    console.print(f"ssh: ssh -F {bed.ssh_config} difusor-1   or   prep-iac testbed ssh difusor-1")


@testbed.command()
@name_option
@click.option("--all", "all_", is_flag=True, help="Every testbed on this machine.")
@reported
def down(name: str, all_: bool) -> None:
    """Stop the hosts and remove namespaces, links, mounts, processes and state."""
    settings = TestbedSettings()
    names = recorded_names(settings.state_root) if all_ else [name]
    for each in names:
        started = time.monotonic()
        Testbed.teardown(each, settings)
        console.print(f"testbed [bold]{each}[/] down in {time.monotonic() - started:.1f} s")


@testbed.command("list")
@reported
def list_() -> None:
    """Hosts of every testbed: address, state and active faults."""
    beds = Testbed.all()
    if not beds:
        console.print("no testbed")
    for bed in beds:
        _print(bed)


def _print(bed: Testbed) -> None:
    table = Table("host", "release", "address", "LAN", "veth", "state", "faults")
    table.title = f"testbed {bed.name} (slot {bed.state.slot}, {bed.state.phase})"
    for h in bed.hosts:
        state = "running" if bed.is_running(h.name) else f"stopped ({h.phase})"
        faults = ", ".join(f"{k}: {v}" for k, v in sorted(h.faults.items())) or "-"
        lan = str(h.lan_address) if h.lan_address else "-"
        release = f"Debian {RELEASES.get(h.suite, '?')} ({h.suite})"
        table.add_row(h.name, release, str(h.address), lan, h.veth, state, faults)
    console.print(table)


@testbed.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@name_option
@click.argument("host")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@reported
def ssh(name: str, host: str, command: tuple[str, ...]) -> None:
    """Open a root shell on HOST (or run COMMAND there) with the testbed's key."""
    cmd = Testbed.load(name).ssh_command(host, " ".join(command) if command else None)
    os.execvp(cmd[0], cmd)  # noqa: S606 (the user gets ssh itself: tty, exit code)


@testbed.command()
@name_option
@click.argument("host")
@click.option("--rate", type=float, help="Mbit/s (default: the calls' 10).")
@click.option("--off", is_flag=True, help="Remove the shaping.")
@reported
def shape(name: str, host: str, rate: float | None, off: bool) -> None:
    """Shape HOST's link (both directions) with a token bucket."""
    bed = Testbed.load(name)
    if off:
        bed.unshape(host)
    else:
        bed.shape(host, rate)
    _print(bed)


@testbed.command()
@name_option
@click.argument("host")
@click.argument("state", type=click.Choice(["up", "down"]))
@click.option("--lan", is_flag=True, help="HOST's LAN link instead of its own link.")
@reported
def link(name: str, host: str, state: str, lan: bool) -> None:
    """Take HOST's link down, or bring it back up."""
    bed = Testbed.load(name)
    match (state, lan):
        case ("down", False):
            bed.link_down(host)
        case ("up", False):
            bed.link_up(host)
        case ("down", True):
            bed.lan_down(host)
        case _:
            bed.lan_up(host)
    _print(bed)


@testbed.command()
@name_option
@click.argument("host")
@click.argument("state", type=click.Choice(["on", "off"]))
@reported
def power(name: str, host: str, state: str) -> None:
    """Pull HOST's plug (every process killed at once), or boot it again."""
    bed = Testbed.load(name)
    if state == "off":
        bed.power_off(host)
    else:
        bed.power_on(host)
    _print(bed)


@testbed.command()
@name_option
@click.argument("host")
@click.argument("port", type=click.IntRange(1, 65535))
@click.option("--proto", type=click.Choice(["tcp", "udp"]), default="tcp", show_default=True)
@click.option("--off", is_flag=True, help="Unblock the port.")
@reported
def block(name: str, host: str, port: int, proto: str, off: bool) -> None:
    """Drop incoming packets to PORT inside HOST (nft in its namespace)."""
    bed = Testbed.load(name)
    if off:
        bed.unblock_port(host, port, proto)
    else:
        bed.block_port(host, port, proto)
    _print(bed)


@testbed.command()
@name_option
@click.argument("host")
@click.argument("unit")
@click.argument("action", type=click.Choice(["stop", "start"]))
@reported
def service(name: str, host: str, unit: str, action: str) -> None:
    """Stop or start a systemd UNIT inside HOST (without SSH)."""
    bed = Testbed.load(name)
    if action == "stop":
        bed.stop_service(host, unit)
    else:
        bed.start_service(host, unit)
    _print(bed)


@testbed.command("fill-disk")
@name_option
@click.argument("host")
@click.option("--leave", type=int, default=0, show_default=True, help="Bytes to leave free.")
@click.option("--off", is_flag=True, help="Free the space again.")
@reported
def fill_disk(name: str, host: str, leave: int, off: bool) -> None:
    """Fill HOST's disk (its / is an overlay on a size-limited ext4)."""
    bed = Testbed.load(name)
    if off:
        bed.clear_disk(host)
    else:
        taken = bed.fill_disk(host, leave)
        console.print(f"took {taken / 2**20:.1f} MiB")
    _print(bed)


@testbed.command("skew-clock")
@name_option
@click.argument("host")
@click.argument("seconds", type=int, required=False)
@click.option("--unit", "units", multiple=True, help="Also this systemd unit (restarted).")
@click.option("--off", is_flag=True, help="Back to the real time.")
@reported
def skew_clock(
    name: str, host: str, seconds: int | None, units: tuple[str, ...], off: bool
) -> None:
    """Make HOST's SSH sessions (and --unit units) see the clock SECONDS off (libfaketime)."""
    bed = Testbed.load(name)
    if off:
        bed.clear_clock(host)
    elif seconds is None:
        raise click.UsageError("give SECONDS (e.g. 3600 or -- -90) or --off")
    else:
        bed.skew_clock(host, seconds, units)
    _print(bed)


@testbed.command()
@name_option
@click.option("--election", default="coahuila-2018", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path))
@reported
def registry(name: str, election: str, output: Path | None) -> None:
    """Emit the testbed as a difusor registry (YAML) with pinned host keys."""
    text = Testbed.load(name).registry_yaml(election)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        console.print(f"registry written to {output}")


@testbed.group("image")
def image_group() -> None:
    """The cached base image (debootstrap) every host starts from."""


@image_group.command("build")
@click.option("--rebuild", is_flag=True, help="Build again even if cached.")
@click.option("--release", default=None, help="bookworm (12, the default) or trixie (13).")
@reported
def image_build(rebuild: bool, release: str | None) -> None:
    """Build the base image, or report the cached one."""
    preflight.require()
    settings = TestbedSettings()
    try:
        suite = release_suite(release) if release else settings.suite
    except ValueError as error:
        raise TestbedError(f"--release: {error}") from None
    path = image.ensure(settings, rebuild=rebuild, suite=suite)
    info = image.manifest(settings, suite)
    assert info is not None
    console.print(
        f"image {path} ({info.suite}, built {info.built_at:%Y-%m-%d %H:%M} UTC "
        f"in {info.build_seconds:.0f} s; packages: {', '.join(info.packages)})"
    )
