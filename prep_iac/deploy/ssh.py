"""SSH hardening: keys only, modern algorithms, no forwarding, validated before reload.

The whole ``sshd_config`` is ours (no ``Include``), checked with ``sshd -t``
before it replaces the running one; a reload keeps open sessions, so a bad
change cannot cut the deployer off mid-deploy, and a rejected one never lands.
The admin's keys are written before the config that points sshd at them.
The IEC's account runs ``internal-sftp`` refusing symlink and hard-link requests.
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import files, systemd

from prep_iac.deploy.operations.files import validated_template
from prep_iac.deploy.platform import platform_for
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import MIN_RSA_BITS, DifusorSettings
from prep_iac.deploy.sftp import AUTHORIZED_KEYS_DIR

SSH_PORT = 22
# SFTP requests the IEC's account is refused (``sftp-server -Q requests`` names,
# the same in OpenSSH 9.2 and 10): links are how an upload would point the
# root activator at a FIFO, a device or a root-only file.
SFTP_DENIED_REQUESTS = ("symlink", "hardlink")


@deploy("SSH hardening")
def ssh_hardening(settings: DifusorSettings) -> None:
    """
    Write the admin's keys and a hardened ``sshd_config``; reload sshd if it changed.

    + settings: the validated difusor settings

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.ssh import ssh_hardening
        from prep_iac.deploy.settings import settings_from_host

        ssh_hardening(settings=settings_from_host(host))
    """
    platform = platform_for(host)
    files.directory(name="Authorized keys, root-owned", path=AUTHORIZED_KEYS_DIR, mode="755")
    files.put(
        name=f"Exactly the admin's {len(settings.admin_keys)} key(s)",
        src=rendered("authorized_keys.j2", keys=settings.admin_keys, options=""),
        dest=f"{AUTHORIZED_KEYS_DIR}/{settings.admin_user}",
        user="root",
        group="root",
        mode="644",
    )
    config = validated_template(
        name="Hardened sshd_config, checked with sshd -t",
        src="sshd_config.j2",
        dest="/etc/ssh/sshd_config",
        validate="sshd -t -f {path}",
        mode="600",
        ssh_port=SSH_PORT,
        min_rsa_bits=MIN_RSA_BITS,
        admin_user=settings.admin_user,
        sftp_user=settings.sftp_user,
        publication_root=settings.publication_root,
        sftp_denied=SFTP_DENIED_REQUESTS,
        allow_users=[
            settings.admin_user,
            *(f"{settings.sftp_user}@{source}" for source in settings.iec_sources),
        ],
        penalty_exempt=[str(s) for s in settings.ssh_sources] if platform.sshd_penalties else None,
    )
    systemd.service(
        name="sshd running and enabled", service=platform.service("ssh"), running=True, enabled=True
    )
    systemd.service(
        name="Reload sshd when its config changed",
        service=platform.service("ssh"),
        reloaded=True,
        _if=config.did_change,
    )
