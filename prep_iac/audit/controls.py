"""The audit's catalogue of controls and what checking one found."""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Access = Literal["shell", "sftp", "http", "network"]


class Impact(StrEnum):
    HIGH = "alta"
    MEDIUM = "media"
    LOW = "baja"


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 (a status, not a password)
    FAIL = "fail"
    NOT_APPLICABLE = "not-applicable"
    NOT_CHECKED = "not-checked"
    WAIVED = "waived"


STATUS_ES = {
    Status.PASS: "cumple",
    Status.FAIL: "no cumple",
    Status.NOT_APPLICABLE: "no aplica",
    Status.NOT_CHECKED: "no verificado",
    Status.WAIVED: "dispensado",
}


class Control(BaseModel):
    """One requirement of the calls, as the audit checks it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Z][A-Z0-9-]+$")
    title: str = Field(min_length=1)
    clause: str = Field(min_length=1, description="Where in the call, e.g. 'II.d.i'.")
    quote: str = Field(min_length=1, description="The clause's own words.")
    impact: Impact
    needs: Access = Field(description="The access its check needs.")
    remedy: str = Field(min_length=1, description="How to fix a failure.")


class Observation(BaseModel):
    """What a check saw: its verdict and the evidence for it."""

    model_config = ConfigDict(frozen=True)

    status: Status
    evidence: list[str] = Field(default_factory=list)


class Finding(BaseModel):
    """One control checked on one host."""

    model_config = ConfigDict(frozen=True)

    host: str
    control: Control
    status: Status
    evidence: list[str]
    waiver: str | None = Field(default=None, description="The waiver's reason and expiry.")
    seconds: float = 0.0

    @property
    def blocking(self) -> bool:
        """A failed control of high impact: the audit exits non-zero."""
        return self.status is Status.FAIL and self.control.impact is Impact.HIGH


@cache
def catalogue() -> tuple[Control, ...]:
    """The controls, in the order the report lists them."""
    text = files("prep_iac.audit").joinpath("controls.yaml").read_text(encoding="utf-8")
    controls = TypeAdapter(list[Control]).validate_python(yaml.safe_load(text))
    return tuple(controls)
