"""File integrity and rootkit checks: an AIDE baseline of the deployed host, chkrootkit daily.

- AIDE (Debian's ``aide-common``: configuration, ``aideinit`` and the
  ``dailyaidecheck`` timer) with SHA-512 checksums only: the default, every
  hash AIDE knows, costs several times the CPU for no added assurance. Its
  baseline is built in the background (``prep-aide-init.service``, lowest CPU
  and I/O priority) once, when there is none: half a minute of CPU on a small
  host is not added to every fresh deploy, and five hosts deployed at once on
  two cores are not slowed down by it. This runs last in the deploy, so the
  baseline is the host as deployed. The publication tree (``/srv``) is not in
  AIDE's rules: it changes every 10 minutes by design, and the activation
  program verifies each cut's signature.
- chkrootkit's own daily timer (it never updates over the network); its report
  lands in ``/var/log/chkrootkit``. Suricata's capture socket is expected, so
  chkrootkit's "packet sniffer" line for it is ignored, and nothing else.
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd

from prep_iac.deploy.packages import refresh_lists_if_missing
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings

INTEGRITY_PACKAGES = ("aide", "aide-common", "chkrootkit")
AIDE_CONFIG = "/etc/aide/aide.conf"
AIDE_DATABASE = "/var/lib/aide/aide.db"
AIDE_INIT = "prep-aide-init.service"


@deploy("File integrity and rootkit checks")
def integrity(settings: DifusorSettings) -> None:
    """
    Install AIDE and chkrootkit; build AIDE's baseline in the background when there is none.

    + settings: the validated difusor settings (unused: nothing here varies per difusor)

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.integrity import integrity
        from prep_iac.deploy.settings import settings_from_host

        integrity(settings=settings_from_host(host))
    """
    refresh_lists_if_missing(INTEGRITY_PACKAGES, "Refresh package lists to install AIDE")
    apt.packages(name="AIDE and chkrootkit", packages=list(INTEGRITY_PACKAGES), no_recommends=True)
    files.line(
        name="AIDE checksums: SHA-512",
        path=AIDE_CONFIG,
        line=r"^Checksums[[:space:]]*=",
        replace="Checksums = sha512",
    )
    files.put(
        name="chkrootkit: Suricata's capture socket is expected",
        src=rendered("chkrootkit-ignore.j2"),
        dest="/etc/chkrootkit/chkrootkit.ignore",
    )
    systemd.service(name="chkrootkit daily", service="chkrootkit.timer", running=True, enabled=True)
    unit = files.put(
        name="AIDE baseline unit",
        src=rendered("prep-aide-init.service.j2", database=AIDE_DATABASE),
        dest=f"/etc/systemd/system/{AIDE_INIT}",
    )
    systemd.daemon_reload(name="systemd reads the AIDE baseline unit", _if=unit.did_change)
    # "present", or the unit's state: a baseline being built is not started twice.
    state = host.get_fact(
        Command,
        command=f"test -e {AIDE_DATABASE} && echo present || systemctl is-active {AIDE_INIT}"
        " || true",
    )
    if state not in ("present", "activating", "active"):
        server.shell(
            name="Build AIDE's baseline in the background",
            commands=[f"systemctl start --no-block {AIDE_INIT}"],
        )
    else:
        host.noop(f"AIDE baseline {state}")
