"""dpkg's registered ownership and mode overrides (``dpkg-statoverride --list``)."""

from __future__ import annotations

from typing import NamedTuple

from pyinfra.api.facts import FactBase
from typing_extensions import override


class StatOverride(NamedTuple):
    user: str
    group: str
    mode: str


class DpkgStatOverrides(FactBase[dict[str, StatOverride]]):
    """
    Returns each path dpkg installs with an overridden owner, group and mode.

    .. code:: python

        {"/usr/bin/x86_64-linux-gnu-as": StatOverride(user="root", group="root", mode="750")}
    """

    default = dict

    @override
    def requires_command(self) -> str:
        return "dpkg-statoverride"

    @override
    def command(self) -> str:
        return "dpkg-statoverride --list"

    @override
    def process(self, output: list[str]) -> dict[str, StatOverride]:
        overrides = {}
        for line in output:
            user, group, mode, path = line.split(maxsplit=3)
            overrides[path] = StatOverride(user, group, mode.lstrip("0") or "0")
        return overrides
