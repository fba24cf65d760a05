"""Entry point of ``prep-iac``: the top-level group and its error handling."""

from __future__ import annotations

import importlib
import sys

import click
from rich.console import Console

from prep_iac import __version__
from prep_iac.models.loading import ConfigError

err_console = Console(stderr=True)

# Each command's module is imported only when that command runs, so the night's
# commands (run, push, status...) never load the drill, the testbed or the drill's
# SMTP server.
COMMANDS = {
    "elections": "prep_iac.cli.elections:elections",
    "config": "prep_iac.cli.config:config",
    "synth": "prep_iac.cli.synth:synth",
    "testbed": "prep_iac.cli.testbed:testbed",
    "status": "prep_iac.cli.orchestrate:status",
    "events": "prep_iac.cli.orchestrate:events",
    "disable": "prep_iac.cli.orchestrate:disable",
    "close-prep": "prep_iac.cli.orchestrate:close_prep",
    "list": "prep_iac.cli.orchestrate:iec_list",
    "keys": "prep_iac.cli.publish:keys",
    "sign": "prep_iac.cli.publish:sign",
    "push": "prep_iac.cli.publish:push",
    "host-status": "prep_iac.cli.publish:host_status",
    "run": "prep_iac.cli.run:run",
    "reinstate": "prep_iac.cli.run:reinstate",
    "audit": "prep_iac.cli.audit:audit",
    "pentest": "prep_iac.cli.audit:pentest",
    "continuity": "prep_iac.cli.audit:continuity",
    "drill": "prep_iac.cli.drill:drill",
    "memoria": "prep_iac.cli.memoria:memoria",
    "informe": "prep_iac.cli.memoria:informe",
    "synth-traffic": "prep_iac.cli.memoria:synth_traffic",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported by name, on first use (``COMMANDS``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prep-iac")
def cli() -> None:
    """Provision PREP difusor hosts and publish preliminary-results cuts to them."""


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
