"""dpkg stat overrides: an owner and mode dpkg keeps for a path across package upgrades."""

from __future__ import annotations

import shlex
from collections.abc import Generator

from pyinfra.api.operation import operation
from pyinfra.context import host

from prep_iac.deploy.facts.dpkg import DpkgStatOverrides, StatOverride


@operation()
def statoverride(path: str, user: str, group: str, mode: str) -> Generator[str, None, None]:
    """
    Register (and apply, when the file exists) an owner, group and mode for ``path``.

    + path: the file as a package installs it
    + user: its owner
    + group: its group
    + mode: its permissions, octal without a leading zero

    dpkg applies the override each time it installs the file, so an upgrade
    never restores the package's mode, and a path registered before its package
    is installed gets it on install.

    **Example:**

    .. code:: python

        statoverride(path="/usr/bin/x86_64-linux-gnu-as", user="root", group="root", mode="750")
    """
    wanted = StatOverride(user, group, mode)
    current = host.get_fact(DpkgStatOverrides).get(path)
    if current == wanted:
        host.noop(f"{path} is registered as {user}:{group} {mode}")
        return
    quoted = shlex.quote(path)
    if current is not None:
        yield f"dpkg-statoverride --remove {quoted}"
    # --update applies it now if the file is there; dpkg applies it on install otherwise.
    yield f"dpkg-statoverride --update --add {user} {group} {mode} {quoted}"
