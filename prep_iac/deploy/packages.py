"""Package installs that keep a no-change re-run a no-change run."""

from __future__ import annotations

from collections.abc import Iterable

from pyinfra.context import host
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt


def refresh_lists_if_missing(packages: Iterable[str], name: str) -> None:
    """Refresh apt's lists only when one of ``packages`` is not installed yet.

    unattended-upgrades refreshes them daily; an unconditional update would make
    every re-run of the deploy report a change.

    + packages: the Debian package names about to be installed
    + name: the operation's name in pyinfra's output
    """
    installed = host.get_fact(DebPackages)
    if any(package not in installed for package in packages):
        # A mirror or proxy that fails a fetch once must not fail the whole deploy.
        apt.update(name=name, _retries=2, _retry_delay=10)
