"""Host-side cut activation: the program, its configuration and the systemd units that run it.

The IEC uploads into ``incoming/`` (``sftp.py``); ``prep-activate``
(``prep_iac/hostside/activate.py``, standard library and OpenSSH only)
verifies the signed manifest and every file, assembles ``releases/<cut>`` and
switches ``live``. systemd runs it:

- ``prep-activate.path`` watches ``incoming/`` (``PathChanged``: the rename
  of a complete upload into it) and starts ``prep-activate.service``;
- ``prep-activate-watchdog.timer`` runs every ``WATCHDOG_INTERVAL`` seconds:
  it activates any upload whose event was missed, then shows the notice when
  nothing vouches for the live cut any more: neither its activation (for
  ``max_age_seconds``) nor the IEC's newest freshness statement.

Both services are confined (``prep-activate-sandbox.j2``): only the
publication tree and the log directory are writable, no network, no devices,
one capability, a system-call filter, and a start timeout so a run that hangs
is killed and frees the lock. ``benchmarks/exposure.py`` measures their
``systemd-analyze security`` exposure.

Records go to ``/var/log/prep-iac/activate.log`` (and the journal), kept
``access_log_retention_days`` by logrotate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pyinfra.api.deploy import deploy
from pyinfra.operations import files, systemd

from prep_iac import wire
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings, SigningKey
from prep_iac.hostside import activate
from prep_iac.presets import load_election

PROGRAM = "/usr/local/lib/prep-iac/prep-activate"
# The wire formats the program imports, where it looks for them (beside it).
WIRE = "/usr/local/lib/prep-iac/prep_iac/wire.py"
CONFIG = "/etc/prep-iac/activate.json"
ALLOWED_SIGNERS = "/etc/prep-iac/allowed_signers"
LOG_DIR = "/var/log/prep-iac"
UNITS = "/etc/systemd/system"
# Seconds between watchdog runs: the notice appears at most this late, and an
# upload whose path event was lost activates at most this late.
WATCHDOG_INTERVAL = 15
# Seconds a run of the activation or the watchdog may take before systemd kills
# it: a 35 MB first push activates in a few seconds on a testbed host.
START_TIMEOUT = 120


@dataclass(frozen=True)
class Signer:
    """One ``allowed_signers`` line's parts: the key and its validity in OpenSSH's format."""

    key: str
    valid_after: str | None
    valid_before: str | None


def signer(signing_key: SigningKey) -> Signer:
    """A signing key as ``allowed_signers`` takes it: UTC ``YYYYMMDDHHMMSSZ`` instants."""

    def stamp(moment: datetime | None) -> str | None:
        return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ") if moment else None

    return Signer(
        key=" ".join(signing_key.key.split()[:2]),
        valid_after=stamp(signing_key.valid_after),
        valid_before=stamp(signing_key.valid_before),
    )


def max_age_seconds(settings: DifusorSettings) -> int:
    """How long a newly activated cut is vouched for by its own signed manifest, before
    freshness statements take over: as long as a statement, (strike limit + 1) × period."""
    if settings.publication_max_age_seconds is not None:
        return settings.publication_max_age_seconds
    election = load_election(settings.election)
    return (election.strike_limit + 1) * election.update_period_minutes * 60


@deploy("PREP publication")
def publication(settings: DifusorSettings) -> None:
    """
    Install the host-side activation and the systemd units that trigger it.

    + settings: the validated difusor settings

    ``iec_signing_keys`` become ``allowed_signers``: only cuts signed by one of
    them, within its validity, are ever activated (an empty list activates nothing).

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.publication import publication
        from prep_iac.deploy.settings import settings_from_host

        publication(settings=settings_from_host(host))
    """
    root = settings.publication_root
    for path in (str(Path(PROGRAM).parent), str(Path(WIRE).parent), str(Path(CONFIG).parent)):
        files.directory(name=f"{path} root-owned", path=path, user="root", group="root", mode="755")
    files.directory(name=f"{LOG_DIR} for activation records", path=LOG_DIR, mode="750")
    files.put(
        name="prep-activate program",
        src=activate.__file__,
        dest=PROGRAM,
        user="root",
        group="root",
        mode="755",
    )
    files.put(
        name="the wire formats prep-activate imports",
        src=wire.__file__,
        dest=WIRE,
        user="root",
        group="root",
        mode="644",
    )
    files.put(
        name=f"{len(settings.iec_signing_keys)} IEC signing key(s) in allowed_signers",
        src=rendered(
            "prep-activate-allowed_signers.j2",
            identity=wire.SIGNER_IDENTITY,
            namespaces=wire.NAMESPACES,
            signers=[signer(key) for key in settings.iec_signing_keys],
        ),
        dest=ALLOWED_SIGNERS,
        mode="644",
    )
    files.put(
        name="Activation settings",
        src=rendered(
            "prep-activate.json.j2",
            root=root,
            election=_election_id(settings),
            difusor=settings.difusor_id,
            allowed_signers=ALLOWED_SIGNERS,
            keep_releases=settings.keep_releases,
            max_age_seconds=max_age_seconds(settings),
            log=f"{LOG_DIR}/activate.log",
        ),
        dest=CONFIG,
        mode="644",
    )
    files.put(
        name=f"Activation records kept {settings.access_log_retention_days} days",
        src=rendered(
            "prep-activate-logrotate.j2", log_dir=LOG_DIR, days=settings.access_log_retention_days
        ),
        dest="/etc/logrotate.d/prep-activate",
        mode="644",
    )
    units = [
        files.put(
            name=f"systemd unit {unit}",
            src=rendered(
                f"{unit}.j2",
                incoming=f"{root}/incoming",
                program=PROGRAM,
                config=CONFIG,
                interval=WATCHDOG_INTERVAL,
                timeout=START_TIMEOUT,
                root=root,
                log_dir=LOG_DIR,
            ),
            dest=f"{UNITS}/{unit}",
            mode="644",
        )
        for unit in (
            "prep-activate.path",
            "prep-activate.service",
            "prep-activate-watchdog.service",
            "prep-activate-watchdog.timer",
        )
    ]

    def units_changed() -> bool:
        return any(op.did_change() for op in units)

    systemd.daemon_reload(name="systemd reads the activation units", _if=units_changed)
    for unit in ("prep-activate.path", "prep-activate-watchdog.timer"):
        systemd.service(name=f"{unit} active and enabled", service=unit, running=True, enabled=True)
        systemd.service(
            name=f"{unit} restarted for its new settings",
            service=unit,
            restarted=True,
            _if=units_changed,
        )


def _election_id(settings: DifusorSettings) -> str:
    """The id manifests must carry: the preset's or the election file's ``id``."""
    return load_election(settings.election).id
