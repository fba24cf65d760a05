"""Entry point of ``prep-iac``: the top-level group and its error handling."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from prep_iac import __version__
from prep_iac.cli.config import config
from prep_iac.cli.drill import drill
from prep_iac.cli.elections import elections
from prep_iac.cli.memoria import informe, memoria, synth_traffic
from prep_iac.cli.orchestrate import disable, events, iec_list, status
from prep_iac.cli.publish import host_status, keys, push, sign
from prep_iac.cli.run import reinstate, run
from prep_iac.cli.synth import synth
from prep_iac.cli.testbed import testbed
from prep_iac.models.loading import ConfigError

err_console = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prep-iac")
def cli() -> None:
    """Provision PREP difusor hosts and publish preliminary-results cuts to them."""


cli.add_command(elections)
cli.add_command(config)
cli.add_command(synth)
cli.add_command(testbed)
cli.add_command(status)
cli.add_command(events)
cli.add_command(disable)
cli.add_command(iec_list)
cli.add_command(keys)
cli.add_command(sign)
cli.add_command(push)
cli.add_command(host_status)
cli.add_command(run)
cli.add_command(reinstate)
cli.add_command(drill)
cli.add_command(memoria)
cli.add_command(informe)
cli.add_command(synth_traffic)


def main() -> None:
    """Run the CLI; configuration problems print as a list, not a traceback."""
    try:
        cli.main(standalone_mode=False)
    except ConfigError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
