"""The IEC's SFTP-only account and the publication tree it uploads into.

Layout (the contract with the push and activation programs, ``prep_iac/publish/push.py``
and ``prep_iac/hostside/activate.py``); ``/srv/prep`` is ``publication_root``
and the account's chroot, so the IEC sees it as ``/``::

    /srv/prep/            root:root 0755   chroot (sshd demands root-owned, not writable)
        incoming/         iec:iec   0750   the IEC uploads here: <cut-id>.part/ is
                                           renamed to <cut-id>/ when complete, plus
                                           signed suspend-*.json instructions
        releases/         root:root 0755   releases/<cut-id>/ assembled and verified
                                           by the host-side activation, read-only to all
        live              symlink          -> releases/<cut-id> or -> notice; switched
                                           only by rename(2) of a fresh symlink, so a
                                           visitor gets the old cut or the new one
        notice/           root:root 0755   index.html: the Spanish suspension notice
        status/           root:iec  0750   status.json and manifest.json, written by the
                                           host (atomically), read back by the IEC

nginx serves ``live`` (``prep_iac/deploy/web.py``). The deploy creates ``live``
pointing at ``notice`` on a fresh host and never repoints it afterwards: that is
the activation's job. ``sshd_config``'s ``Match User`` block (``ssh.py``) confines
the account: ``internal-sftp`` in the chroot, starting in ``/incoming``, no shell,
TTY or forwarding, and ``AllowUsers`` admits it only from ``iec_sources``.
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import files, server

from prep_iac.deploy.operations.files import initial_symlink
from prep_iac.deploy.platform import platform_for
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings

AUTHORIZED_KEYS_DIR = "/etc/ssh/authorized_keys"
# OpenSSH's "restrict": no forwarding, no PTY, no ~/.ssh/rc, whatever sshd_config says.
IEC_KEY_OPTIONS = "restrict "


@deploy("IEC SFTP account")
def sftp_account(settings: DifusorSettings) -> None:
    """
    Create the IEC's SFTP-only account, its keys and the publication tree.

    + settings: the validated difusor settings

    The keys file holds exactly ``iec_keys``: rotating the IEC's key is
    re-running the deploy with the new key, which removes the old one.

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.sftp import sftp_account
        from prep_iac.deploy.settings import settings_from_host

        sftp_account(settings=settings_from_host(host))
    """
    platform = platform_for(host)
    user, root = settings.sftp_user, settings.publication_root
    server.group(name=f"Group {user}", group=user, system=True)
    server.user(
        name=f"SFTP-only user {user}, no shell",
        user=user,
        group=user,
        home=root,
        shell=platform.paths.nologin,
        system=True,
        create_home=False,
        # The home is the chroot, which must stay root-owned (sshd refuses it otherwise).
        ensure_home=False,
    )

    files.directory(name="Authorized keys, root-owned", path=AUTHORIZED_KEYS_DIR, mode="755")
    files.put(
        name=f"Exactly the IEC's {len(settings.iec_keys)} key(s)",
        src=rendered("authorized_keys.j2", keys=settings.iec_keys, options=IEC_KEY_OPTIONS),
        dest=f"{AUTHORIZED_KEYS_DIR}/{user}",
        user="root",
        group="root",
        mode="644",
    )

    for path, owner, group, mode in (
        (root, "root", "root", "755"),
        (f"{root}/incoming", user, user, "750"),
        (f"{root}/releases", "root", "root", "755"),
        (f"{root}/notice", "root", "root", "755"),
        (f"{root}/status", "root", user, "750"),
    ):
        files.directory(
            name=f"{path} {owner}:{group} {mode}", path=path, user=owner, group=group, mode=mode
        )
    files.put(
        name="Suspension notice (clause III)",
        src=rendered("notice.html.j2", difusor_name=settings.difusor_name),
        dest=f"{root}/notice/index.html",
        mode="644",
    )
    initial_symlink(
        name="live shows the notice until a first cut", path=f"{root}/live", target="notice"
    )
