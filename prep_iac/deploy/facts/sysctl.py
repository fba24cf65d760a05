"""Kernel parameters with whether this host may change them (a container may not)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from pyinfra.api.facts import FactBase
from typing_extensions import override


class KernelParameter(NamedTuple):
    value: str
    writable: bool


class KernelParameters(FactBase[dict[str, KernelParameter]]):
    """
    Returns the current value of each named sysctl and whether it is writable;
    keys this kernel does not have are left out.

    .. code:: python

        {
            "net.ipv4.tcp_syncookies": KernelParameter(value="1", writable=True),
            "kernel.kptr_restrict": KernelParameter(value="1", writable=False),
        }
    """

    default = dict

    @override
    def command(self, keys: Iterable[str]) -> str:
        paths = " ".join(f"/proc/sys/{key.replace('.', '/')}" for key in keys)
        # access(2) reports a read-only /proc/sys mount as not writable.
        return (
            f"for p in {paths}; do [ -e $p ] || continue; "
            "if [ -w $p ]; then w=rw; else w=ro; fi; "
            'printf "%s\\t%s\\t%s\\n" "$p" "$w" "$(cat $p)"; done'
        )

    @override
    def process(self, output: list[str]) -> dict[str, KernelParameter]:
        parameters = {}
        for line in output:
            path, mode, value = line.split("\t", 2)
            key = path.removeprefix("/proc/sys/").replace("/", ".")
            parameters[key] = KernelParameter(" ".join(value.split()), mode == "rw")
        return parameters
