"""The minimums a difusor host must meet, each tied to the clause that states it.

Audits and the memoria técnica cite ``requirement.clause`` rather than
repeating the calls' text, so a figure in a report can always be traced back to
the sentence of the call that demands it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo


def _req(default: Any, clause: str, text_es: str, unit: str = "", **kw: Any) -> Any:
    return Field(
        default,
        json_schema_extra={"clause": clause, "text_es": text_es, "unit": unit},
        **kw,
    )


class Requirement(BaseModel):
    """One minimum, resolved: its value and where the call states it."""

    model_config = ConfigDict(frozen=True)

    name: str
    minimum: int | float | bool | str
    unit: str
    clause: str
    text_es: str


class HostRequirements(BaseModel):
    """Clause II of the calls: what every difusor publication server needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    disk_gb: int = _req(100, "II.c", "Disco Duro 100 GB", "GB", ge=1)
    memory_gb: int = _req(8, "II.c", "8GB memoria Ram", "GB", ge=1)
    cpu_cores: int = _req(2, "II.c", "2 cores", "cores", ge=1)
    operating_system: str = _req(
        "Linux",
        "II.c",
        "Servidor con sistema operativo LINUX (Red Hat, Centos, Debian, Ubuntu, etc.)",
    )
    redundant_disk: bool = _req(True, "II.c", "disco duro redundante")
    redundant_power_supply: bool = _req(True, "II.c", "fuente de poder ... redundante")
    redundant_nic: bool = _req(True, "II.c", "tarjeta de red ... redundante")
    link_mbps: float = _req(10.0, "II.b.1", "Un enlace Web 10 Mbps síncrono mínimo", "Mbit/s", gt=0)
    transfer_minutes: float = _req(
        3.0, "II.b.2", "tiempo de transferencia no mayor a 3 minutos", "min", gt=0
    )
    firewall: bool = _req(True, "II.d.i", "Firewall: detectar y filtrar ataques; contener DoS")
    web_ids: bool = _req(True, "II.d.ii", "Detector de Intrusos: ataques de ambiente Web")
    ups_and_generator: bool = _req(True, "II.e", "energía ininterrumpida y plantas de emergencia")
    high_availability: bool = _req(
        False, "II.a", "alta disponibilidad preferentemente (preferred, not required)"
    )

    def items(self) -> list[Requirement]:
        """Every requirement with its value, unit and clause, in declaration order."""
        return [self.requirement(name) for name in type(self).model_fields]

    def requirement(self, name: str) -> Requirement:
        info: FieldInfo = type(self).model_fields[name]
        extra = info.json_schema_extra
        assert isinstance(extra, dict)
        return Requirement(
            name=name,
            minimum=getattr(self, name),
            unit=str(extra["unit"]),
            clause=str(extra["clause"]),
            text_es=str(extra["text_es"]),
        )
