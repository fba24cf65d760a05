"""The IEC's SFTP-only account and the publication tree it uploads into.

Layout (the contract with the push and activation programs, ``prep_iac/publish/push.py``
and ``prep_iac/hostside/activate.py``); ``/srv/prep`` is ``publication_root``
and the account's chroot, so the IEC sees it as ``/``::

    /srv/prep/            root:root 0755   chroot (sshd demands root-owned, not writable)
        incoming/         iec:iec   0750   the IEC uploads here: <cut-id>.part/ is
                                           renamed to <cut-id>/ when complete, plus
                                           signed suspend-*.json instructions; a
                                           tmpfs of upload_area_mib of its own
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
TTY or forwarding, no symlink or hard-link requests, and ``AllowUsers`` admits
it only from ``iec_sources``.

``incoming/`` is mounted from a unit of its own (``upload-area.mount.j2``): what
the account uploads is bounded by ``upload_area_mib`` and never fills the
filesystem that releases and logs live on.
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import files, server, systemd

from prep_iac.deploy.operations.files import initial_symlink
from prep_iac.deploy.platform import platform_for
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings

AUTHORIZED_KEYS_DIR = "/etc/ssh/authorized_keys"
# OpenSSH's "restrict": no forwarding, no PTY, no ~/.ssh/rc, whatever sshd_config says.
IEC_KEY_OPTIONS = "restrict "
# Files and directories the upload area holds at most: an upload is a directory
# of three files, a suspension two; thousands leave room for any legitimate use.
UPLOAD_AREA_INODES = 4096
UNITS = "/etc/systemd/system"


def mount_unit(path: str) -> str:
    """The systemd unit name that mounts ``path`` (``systemd-escape --path --suffix=mount``)."""
    escaped = []
    for index, char in enumerate(path.strip("/")):
        if char == "/":
            escaped.append("-")
        elif (char.isascii() and (char.isalnum() or char in ":_.")) and not (
            index == 0 and char == "."
        ):
            escaped.append(char)
        else:
            escaped.append("".join(f"\\x{byte:02x}" for byte in char.encode()))
    return "".join(escaped) + ".mount"


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
    _upload_area(settings)
    files.put(
        name="Suspension notice (clause III)",
        src=rendered("notice.html.j2", difusor_name=settings.difusor_name),
        dest=f"{root}/notice/index.html",
        mode="644",
    )
    initial_symlink(
        name="live shows the notice until a first cut", path=f"{root}/live", target="notice"
    )


def _upload_area(settings: DifusorSettings) -> None:
    """Mount ``incoming/`` as a tmpfs of ``upload_area_mib``; a new size is a remount."""
    where = f"{settings.publication_root}/incoming"
    unit = mount_unit(where)
    mount = files.put(
        name=f"{where}: a filesystem of {settings.upload_area_mib} MiB of its own",
        src=rendered(
            "upload-area.mount.j2",
            where=where,
            size_mib=settings.upload_area_mib,
            inodes=UPLOAD_AREA_INODES,
            user=settings.sftp_user,
            ssh_service=platform_for(host).service("ssh"),
        ),
        dest=f"{UNITS}/{unit}",
        mode="644",
    )
    systemd.daemon_reload(name="systemd reads the upload area's unit", _if=mount.did_change)
    systemd.service(name=f"{unit} mounted and enabled", service=unit, running=True, enabled=True)
    # A reload of a mount unit remounts it with the unit's options: a new size
    # applies without unmounting (uploads waiting stay).
    systemd.service(
        name=f"{unit} remounted with its new options",
        service=unit,
        reloaded=True,
        _if=mount.did_change,
    )
