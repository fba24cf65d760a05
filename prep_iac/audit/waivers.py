"""Accepted exceptions to the audit's controls: each with a reason and an expiry date.

A waiver file (YAML) lists them::

    waivers:
      - control: HW-FUENTE-REDUNDANTE
        reason: La segunda fuente llega el 20 de junio (orden de compra 1234).
        expires: 2018-06-25
        hosts: [prep1.difusor.example]   # optional: every host when absent

A waived control that fails is reported as waived, with its reason, and does not
fail the audit; after ``expires`` the waiver no longer applies and the report
says it expired. A waiver never turns a control that could not be checked into
anything else.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prep_iac.audit.controls import catalogue
from prep_iac.models.loading import load_model


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    control: str = Field(description="A control id of the catalogue.")
    reason: str = Field(min_length=10, description="Why the failure is accepted, and until when.")
    expires: date
    hosts: list[str] = Field(default_factory=list, description="Hosts it covers; empty: all.")

    @field_validator("control")
    @classmethod
    def _known(cls, value: str) -> str:
        known = [c.id for c in catalogue()]
        if value not in known:
            raise ValueError(f"a control id, one of {', '.join(known)}")
        return value

    def covers(self, control: str, host: str) -> bool:
        return self.control == control and (not self.hosts or host in self.hosts)


class Waivers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    waivers: list[Waiver] = Field(default_factory=list)

    def find(self, control: str, host: str) -> Waiver | None:
        return next((w for w in self.waivers if w.covers(control, host)), None)


def load_waivers(path: Path | None) -> Waivers:
    """The waivers of ``path`` (none without a file); errors name the file, line and field."""
    return load_model(Waivers, path) if path else Waivers()
