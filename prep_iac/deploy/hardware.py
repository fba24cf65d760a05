"""Clause II.c minimums: refuse a host below them unless the data says it is a test host."""

from __future__ import annotations

from pyinfra import logger
from pyinfra.api.deploy import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.context import host

from prep_iac.deploy.facts.resources import HostResources, Resources
from prep_iac.deploy.settings import DifusorSettings
from prep_iac.models import HostRequirements

GB = 1000**3
# A host sold as "8 GB" reports a little less in MemTotal (kernel, firmware).
MEMORY_TOLERANCE = 0.95


def shortfalls(resources: Resources, requirements: HostRequirements) -> list[str]:
    """One sentence per minimum the host does not meet, citing the call's clause."""
    measured = {
        "disk_gb": resources.disk_bytes / GB,
        "memory_gb": resources.memory_bytes / GB / MEMORY_TOLERANCE,
        "cpu_cores": float(resources.cpu_cores),
    }
    found = []
    for name, value in measured.items():
        need = requirements.requirement(name)
        assert isinstance(need.minimum, int)
        if value < need.minimum:
            found.append(
                f"{name.replace('_', ' ')}: {value:.1f} {need.unit}, clause {need.clause}"
                f' asks for {need.minimum} {need.unit} ("{need.text_es}")'
            )
    return found


@deploy("Hardware minimums (clause II.c)")
def hardware_check(settings: DifusorSettings) -> None:
    """
    Stop the deploy on a host below clause II.c, or warn when ``force_below_minimums``.

    + settings: the validated difusor settings

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.hardware import hardware_check
        from prep_iac.deploy.settings import settings_from_host

        hardware_check(settings=settings_from_host(host))
    """
    resources = host.get_fact(HostResources, path=settings.publication_root)
    problems = shortfalls(resources, HostRequirements())
    if not problems:
        return
    listing = "; ".join(problems)
    if not settings.force_below_minimums:
        raise DeployError(
            f"{host.name} is below the difusor minimums: {listing}."
            " Set force_below_minimums = True only for test hosts."
        )
    logger.warning(f"WARNING {host.name} is below the minimums (forced for a test host): {listing}")
