"""The interface a host talks to the world on, and its global addresses (for the IDS)."""

from __future__ import annotations

from typing import NamedTuple

from pyinfra.api.facts import FactBase
from typing_extensions import override


class Interface(NamedTuple):
    name: str
    addresses: list[str]


class PrimaryInterface(FactBase[Interface | None]):
    """
    Returns the default route's interface (else the first with a global address)
    and that interface's global addresses, or ``None`` when the host has none.

    .. code:: python

        Interface(name="eth0", addresses=["198.51.100.7", "2001:db8::7"])
    """

    @override
    def command(self) -> str:
        return "ip -o route show default; ip -o addr show scope global"

    @override
    def process(self, output: list[str]) -> Interface | None:
        routes = [line.split() for line in output if line.startswith("default ")]
        addresses = [line.split() for line in output if not line.startswith("default ")]
        names = [r[r.index("dev") + 1] for r in routes if "dev" in r]
        names += [a[1] for a in addresses if len(a) > 3]
        if not names:
            return None
        name = names[0]
        found = [a[3].split("/")[0] for a in addresses if len(a) > 3 and a[1] == name]
        return Interface(name=name, addresses=found)
