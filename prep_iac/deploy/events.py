"""The event hook: ``/usr/local/sbin/prep-event SOURCE EVENT [DETAIL]`` on every difusor host.

Every detector the deploy installs (fail2ban bans, the UPS monitor, RAID and
SMART monitors) calls this one script. It appends a JSON line with ``time``,
``host``, ``source``, ``event`` and ``detail`` to ``/var/log/prep-iac/events.log``
(the incident report of the memoria técnica, clause VI, is read from it), then
mails ``notify_emails`` through the host's MTA when one is installed and posts
the line to ``notify_webhook`` when one is set.

Daemons that do not run as root (NUT's ``upsmon``) write through the
``prep-events`` group, which owns the log.
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.operations import files, server

from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings

HOOK = "/usr/local/sbin/prep-event"
LOG_DIR = "/var/log/prep-iac"
LOG = f"{LOG_DIR}/events.log"
CONFIG = "/etc/prep-iac/event-targets.json"
GROUP = "prep-events"


@deploy("Event hook (prep-event)")
def event_hook(settings: DifusorSettings) -> None:
    """
    Install the event hook, its notification targets and its log (rotated with the access logs).

    + settings: the validated difusor settings

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.events import event_hook
        from prep_iac.deploy.settings import settings_from_host

        event_hook(settings=settings_from_host(host))
    """
    server.group(name=f"Group {GROUP} may append to the event log", group=GROUP, system=True)
    files.directory(name="Event log directory", path=LOG_DIR, user="root", group=GROUP, mode="750")
    files.file(name="Event log", path=LOG, user="root", group=GROUP, mode="660")
    files.directory(name="prep-iac configuration directory", path="/etc/prep-iac", mode="755")
    files.put(
        name="Event notification targets",
        src=rendered(
            "prep-event.json.j2",
            emails=list(settings.notify_emails),
            webhook=str(settings.notify_webhook) if settings.notify_webhook else None,
        ),
        dest=CONFIG,
        group=GROUP,
        mode="640",
    )
    files.put(
        name="Event hook script",
        src=rendered("prep-event.py.j2", log=LOG, config=CONFIG),
        dest=HOOK,
        mode="755",
    )
    files.put(
        name=f"Event log kept {settings.access_log_retention_days} days",
        src=rendered(
            "logrotate-prep-events.j2",
            log=LOG,
            days=settings.access_log_retention_days,
            group=GROUP,
        ),
        dest="/etc/logrotate.d/prep-events",
    )
