"""UPS monitoring (clause II.e) with NUT: power events to the event hook, clean shutdown.

``ups_mode`` in group data chooses:

- ``none``: nothing is installed (the deploy says so: clause II.e then rests
  on the site's own UPS and generator procedures);
- ``standalone``: the UPS is plugged into this host; its driver
  (``ups_driver``/``ups_port``), ``upsd`` on loopback and ``upsmon`` as primary;
- ``netclient``: ``upsmon`` as secondary of the NUT server ``ups_server``.

``upsmon`` hands ONLINE, ONBATT, LOWBATT, FSD, COMMOK, COMMBAD, SHUTDOWN,
REPLBATT and NOCOMM to ``upssched``, which runs ``prep-ups-event``: an event line
(``source`` "ups") and the notifications. On LOWBATT while on battery (and on
FSD) upsmon runs ``prep-ups-shutdown``: an event line, then
``ups_shutdown_command`` (``/sbin/shutdown -h +0``; test hosts log instead).
Test hosts use the ``dummy-ups`` driver with ``ups_dummy_sequence`` as its
``.seq`` file.
"""

from __future__ import annotations

import shlex
from io import BytesIO

from pyinfra import logger
from pyinfra.api.deploy import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.api.operation import OperationMeta
from pyinfra.context import host
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from prep_iac.deploy.events import GROUP, HOOK
from prep_iac.deploy.packages import refresh_lists_if_missing
from prep_iac.deploy.platform import platform_for
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings

EVENTS = ("ONLINE", "ONBATT", "LOWBATT", "FSD", "COMMOK", "COMMBAD", "SHUTDOWN", "REPLBATT",
          "NOCOMM")  # fmt: skip
EVENT_SCRIPT = "/usr/local/sbin/prep-ups-event"
SHUTDOWN_SCRIPT = "/usr/local/sbin/prep-ups-shutdown"
UPSSCHED = "/sbin/upssched"


@deploy("UPS monitoring (NUT)")
def ups(settings: DifusorSettings) -> None:
    """
    Configure NUT from ``ups_mode``; power events go to the event hook.

    + settings: the validated difusor settings

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.ups import ups
        from prep_iac.deploy.settings import settings_from_host

        ups(settings=settings_from_host(host))
    """
    if settings.ups_mode == "none":
        logger.warning(
            f"WARNING {host.name}: ups_mode is 'none': no UPS is monitored (clause II.e)"
        )
        return
    if not settings.ups_password:
        raise DeployError(
            f"{host.name}: ups_password is not set: upsmon logs in to {settings.ups_server}"
            " with the user and password its NUT administrator gives (ups_user, ups_password)"
        )
    platform = platform_for(host)
    nut_dir = platform.paths.nut_dir
    standalone = settings.ups_mode == "standalone"
    roles = ["nut_client", *(["nut_server"] if standalone else [])]
    packages = [platform.package(role) for role in roles]
    refresh_lists_if_missing(packages, "Refresh package lists to install NUT")
    apt.packages(name="Install NUT", packages=packages, no_recommends=True)
    server.user(name="upsmon may write the event log", user="nut", groups=[GROUP], append=True)

    monitored = f"{settings.ups_name}@{'localhost' if standalone else settings.ups_server}"
    monitor = [
        _secret(
            name=f"NUT mode {settings.ups_mode}",
            src=rendered("nut.conf.j2", mode=settings.ups_mode),
            dest=f"{nut_dir}/nut.conf",
        ),
        files.put(
            name="upssched runs the event hook",
            src=rendered("prep-ups-event.sh.j2", hook=HOOK),
            dest=EVENT_SCRIPT,
            mode="755",
        ),
        files.put(
            name="Shutdown command logs the event first",
            src=rendered(
                "prep-ups-shutdown.sh.j2",
                hook=HOOK,
                command=settings.ups_shutdown_command,
                quoted=shlex.quote(settings.ups_shutdown_command),
            ),
            dest=SHUTDOWN_SCRIPT,
            mode="755",
        ),
        _secret(
            name="upssched: every power event to the hook",
            src=rendered("nut-upssched.conf.j2", script=EVENT_SCRIPT, events=EVENTS),
            dest=f"{nut_dir}/upssched.conf",
        ),
        _secret(
            name=f"upsmon watches {monitored}",
            src=rendered(
                "nut-upsmon.conf.j2",
                ups=monitored,
                user=settings.ups_user,
                password=settings.ups_password,
                role="primary" if standalone else "secondary",
                shutdown=SHUTDOWN_SCRIPT,
                upssched=UPSSCHED,
                events=EVENTS,
            ),
            dest=f"{nut_dir}/upsmon.conf",
        ),
    ]
    if standalone:
        driver = _standalone(settings, nut_dir)
        systemd.service(
            name="NUT driver and upsd running",
            service=platform.service("nut_server"),
            running=True,
            enabled=True,
        )
        server.shell(
            name="Restart the NUT driver and upsd when their config changed",
            commands=["systemctl restart nut-driver-enumerator.service",
                      "systemctl restart nut-driver.target nut-server.service"],
            _if=any_changed(*driver),
            # Seen once in CI (five fresh hosts at once): the enumerator's first restart failed.
            _retries=2,
            _retry_delay=10,
        )  # fmt: skip
    systemd.service(
        name="upsmon running and enabled",
        service=platform.service("nut_monitor"),
        running=True,
        enabled=True,
    )
    systemd.service(
        name="Restart upsmon when its config changed",
        service=platform.service("nut_monitor"),
        restarted=True,
        _if=any_changed(*monitor),
    )


def _secret(name: str, src: BytesIO, dest: str) -> OperationMeta:
    """A NUT file holding upsmon's password: readable by NUT's daemons only."""
    return files.put(name=name, src=src, dest=dest, user="root", group="nut", mode="640")


def _standalone(settings: DifusorSettings, nut_dir: str) -> list[OperationMeta]:
    assert settings.ups_driver is not None
    changes = [
        _secret(
            name=f"UPS {settings.ups_name}: driver {settings.ups_driver} on {settings.ups_port}",
            src=rendered(
                "nut-ups.conf.j2",
                name=settings.ups_name,
                driver=settings.ups_driver,
                port=settings.ups_port,
                host=host.name,
            ),
            dest=f"{nut_dir}/ups.conf",
        ),
        _secret(
            name="upsd on loopback only",
            src=rendered("nut-upsd.conf.j2"),
            dest=f"{nut_dir}/upsd.conf",
        ),
        _secret(
            name="upsd account of upsmon",
            src=rendered(
                "nut-upsd.users.j2", user=settings.ups_user, password=settings.ups_password
            ),
            dest=f"{nut_dir}/upsd.users",
        ),
    ]
    if settings.ups_driver == "dummy-ups" and settings.ups_dummy_sequence:
        changes.append(
            _secret(
                name=f"dummy-ups sequence {settings.ups_port}",
                src=rendered("nut-dummy.seq.j2", lines=settings.ups_dummy_sequence),
                dest=f"{nut_dir}/{settings.ups_port}",
            )
        )
    return changes
