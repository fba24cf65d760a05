"""``prep-iac run`` as a systemd service: the unit, rendered from the run's own options.

``prep-iac run --systemd-unit`` prints it instead of running: ``ExecStart``
repeats the options given (absolute paths), ``ReadWritePaths`` lists the only
places the orchestrator writes (the database's directory, ``--workdir``, the
signed instructions and the IEC's list directory from the settings), and
``TimeoutStopSec`` exceeds both the election's transfer budget and
``--stop-grace``, so a SIGTERM lets the in-flight period end as the runner
promises before systemd would SIGKILL it. The template is
``templates/systemd/prep-iac-run.service.j2``.

**Example:** ``render_unit(ServiceUnit(election="coahuila-2018", exec_start=..., ...))``
"""

from __future__ import annotations

import shlex
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict, Field

TEMPLATES = Environment(
    loader=PackageLoader("prep_iac.orchestrate", "templates/systemd"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # a unit file, not HTML  # noqa: S701
)
STOP_MARGIN_S = 60  # after the grace: close the record, stop the store, exit


class ServiceUnit(BaseModel):
    """What the unit needs; ``command`` is the full ``prep-iac run`` command line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    election: str
    command: list[str] = Field(min_length=2)
    writable: list[Path] = Field(min_length=1, description="ReadWritePaths, absolute.")
    transfer_budget_s: int = Field(gt=0)
    stop_grace_s: float = Field(ge=0)
    user: str = "prep-iac"
    name: str = "prep-iac-run"

    @property
    def exec_start(self) -> str:
        # systemd splits ExecStart like a shell for quoting; "%" and "$" are its own.
        return " ".join(
            shlex.quote(arg).replace("%", "%%").replace("$", "$$") for arg in self.command
        )

    @property
    def timeout_stop_s(self) -> int:
        return int(max(self.transfer_budget_s, self.stop_grace_s)) + STOP_MARGIN_S


def render_unit(unit: ServiceUnit) -> str:
    """The unit file's text."""
    return TEMPLATES.get_template("prep-iac-run.service.j2").render(unit=unit)
