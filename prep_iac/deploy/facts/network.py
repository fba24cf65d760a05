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


class Ipv4Interfaces(FactBase[list[tuple[str, str]]]):
    """
    Returns every IPv4 address configured on the host with its interface, as
    ``(interface, address/prefix)``, floating addresses included.

    .. code:: python

        [("eth0", "198.51.100.7/24"), ("lan0", "192.0.2.11/25")]
    """

    @override
    def command(self) -> str:
        return "ip -o -4 addr show"

    @override
    def process(self, output: list[str]) -> list[tuple[str, str]]:
        found = []
        for line in output:
            fields = line.split()
            if "inet" in fields and len(fields) > fields.index("inet") + 1:
                found.append((fields[1].split("@")[0], fields[fields.index("inet") + 1]))
        return found
