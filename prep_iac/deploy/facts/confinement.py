"""Whether this host runs in a container and which capabilities its init may use.

Process accounting needs ``CAP_SYS_PACCT``; the kernel's audit subsystem answers
only the initial PID namespace, so ``auditd`` cannot run in any container.
"""

from __future__ import annotations

from typing import NamedTuple

from pyinfra.api.facts import FactBase
from typing_extensions import override

CAP_SYS_PACCT = 20
CAP_AUDIT_CONTROL = 30


class Confinement(NamedTuple):
    container: str
    capabilities: int

    @property
    def in_container(self) -> bool:
        return self.container != "none"

    @property
    def can_account_processes(self) -> bool:
        return bool(self.capabilities >> CAP_SYS_PACCT & 1)

    @property
    def can_audit(self) -> bool:
        return not self.in_container and bool(self.capabilities >> CAP_AUDIT_CONTROL & 1)


class HostConfinement(FactBase[Confinement]):
    """
    Returns the container technology (``"none"`` on a machine or VM) and the
    capability bounding set of PID 1.

    .. code:: python

        Confinement(container="systemd-nspawn", capabilities=0xFDECAFFF)
    """

    @override
    def command(self) -> str:
        return "systemd-detect-virt --container || true; grep '^CapBnd:' /proc/1/status"

    @override
    def process(self, output: list[str]) -> Confinement:
        container, capabilities = output[-2:]
        return Confinement(container.strip(), int(capabilities.split()[1], 16))
