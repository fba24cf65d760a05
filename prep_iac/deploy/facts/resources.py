"""What clause II.c measures: CPU cores, memory and the disk holding the publication."""

from __future__ import annotations

import shlex
from typing import NamedTuple

from pyinfra.api.facts import FactBase
from typing_extensions import override


class Resources(NamedTuple):
    cpu_cores: int
    memory_bytes: int
    disk_bytes: int


class HostResources(FactBase[Resources]):
    """
    Returns online CPU cores, total memory and the size of the filesystem
    holding ``path`` (its nearest existing ancestor), in bytes.

    .. code:: python

        Resources(cpu_cores=2, memory_bytes=8312655872, disk_bytes=107374182400)
    """

    @override
    def command(self, path: str) -> str:
        # df needs an existing path; before the first deploy /srv/prep is not there.
        return (
            f'p={shlex.quote(path)}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; '
            "nproc; grep '^MemTotal:' /proc/meminfo; df -P -B1 \"$p\" | tail -n 1"
        )

    @override
    def process(self, output: list[str]) -> Resources:
        cores, memory, disk = output[-3:]
        return Resources(
            cpu_cores=int(cores),
            memory_bytes=int(memory.split()[1]) * 1024,
            disk_bytes=int(disk.split()[1]),
        )
