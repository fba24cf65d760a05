"""Host hardening found by auditing a deployed difusor with lynis (``benchmarks/audit.py``).

What lynis suggested and fits a publication server: PAM temporary directories,
a password-quality module and strict ``login.defs`` (no account has a password
login, but a local account added later gets sane defaults), no core dumps
(limits, login shells, systemd-coredump), idle login shells closed after 15
minutes, removable-storage and rare-protocol kernel modules blocked,
``/dev/shm`` without executables, package verification tools (``debsums``,
``apt-show-versions``, ``apt-listchanges``) and ``needrestart`` in list-only
mode (a restart during the election is an admin's call), the assembler it
pulls in (binutils) executable by root only (a dpkg stat override, so upgrades
keep it), ``sysstat`` (activity figures for the memoria técnica), a legal
banner, cron's files for root only. Process accounting (``acct``) and
``auditd`` are installed where they can run, which the ``HostConfinement``
fact tells: accounting needs ``CAP_SYS_PACCT`` and the kernel's audit answers
only outside containers, so neither is on the testbed's nspawn hosts.
File integrity and the rootkit scanner are in ``integrity.py``.

Not taken, and why: ``apt-listbugs`` (asks questions during apt runs and needs
bugs.debian.org), separate ``/home``/``/var`` partitions (the installer's job),
per-unit systemd sandboxing (audited per service, not blanket), the DNS domain
and remote log host (the site's), USBGuard (a server's console keyboard must
keep working when an admin needs it; USB storage is blocked above),
``hidepid`` on ``/proc`` (D-Bus and logind look up their peers' processes;
systemd's ``ProtectProc=`` per unit is the way), ``noexec`` on ``/tmp``
(debconf runs maintainer scripts from it),
a port other than 22 for SSH (the IEC pushes to 22; obscurity is no control).
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.deb import DebArch
from pyinfra.facts.files import File
from pyinfra.facts.server import Mounts
from pyinfra.operations import apt, files, server, systemd

from prep_iac.deploy.facts.confinement import Confinement, HostConfinement
from prep_iac.deploy.operations.dpkg import statoverride
from prep_iac.deploy.packages import refresh_lists_if_missing
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings

AUDIT_PACKAGES = ("libpam-tmpdir", "libpam-passwdqc", "debsums", "apt-show-versions",
                  "apt-listchanges", "needrestart", "sysstat")  # fmt: skip
BLOCKED_MODULES = ("usb-storage", "firewire-core", "firewire-ohci", "firewire-sbp2", "dccp",
                   "sctp", "rds", "tipc")  # fmt: skip
# Root-only cron directories and crontab (lynis FILE-7524); the directories are
# made when missing, as packages installed in the same run may add them.
CRON_DIRS = ("/etc/cron.d", "/etc/cron.daily", "/etc/cron.hourly", "/etc/cron.weekly",
             "/etc/cron.monthly")  # fmt: skip
CRONTAB = "/etc/crontab"
# Where binutils puts the real assembler (/usr/bin/as links to it), per architecture.
ASSEMBLER = {
    "amd64": "/usr/bin/x86_64-linux-gnu-as",
    "arm64": "/usr/bin/aarch64-linux-gnu-as",
}
IDLE_SHELL_SECONDS = 900
SHM = "/dev/shm"  # noqa: S108 (the mount point, not a temporary file)
SHM_OPTIONS = "nosuid,nodev,noexec"
AUDIT_RULES = "/etc/audit/rules.d/prep.rules"
LOGIN_DEFS = {
    "UMASK": "027",
    "PASS_MAX_DAYS": "365",
    "PASS_MIN_DAYS": "1",
    "SHA_CRYPT_MIN_ROUNDS": "65536",
    "SHA_CRYPT_MAX_ROUNDS": "65536",
}


@deploy("Host hardening (lynis findings)")
def hardening(settings: DifusorSettings) -> None:
    """
    Apply the lynis suggestions that fit a publication server.

    + settings: the validated difusor settings (the banner names the difusor)

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.hardening import hardening
        from prep_iac.deploy.settings import settings_from_host

        hardening(settings=settings_from_host(host))
    """
    confinement = host.get_fact(HostConfinement)
    # Accounting needs CAP_SYS_PACCT; the kernel audits only outside containers.
    accounting = ["acct"] if confinement.can_account_processes else []
    audit = ["auditd"] if confinement.can_audit else []
    refresh_lists_if_missing(
        [*AUDIT_PACKAGES, *accounting, *audit], "Refresh package lists to install the audit tools"
    )
    apt.packages(
        name="PAM tmpdir and password quality, package verification, needrestart",
        packages=list(AUDIT_PACKAGES),
        no_recommends=True,
    )
    files.put(
        name="needrestart lists, never restarts",
        src=rendered("needrestart-prep.conf.j2"),
        dest="/etc/needrestart/conf.d/prep.conf",
    )
    files.put(
        name="No core dumps",
        src=rendered("limits-prep.conf.j2"),
        dest="/etc/security/limits.d/prep.conf",
    )
    files.put(
        name="systemd-coredump stores none either",
        src=rendered("coredump-prep.conf.j2"),
        dest="/etc/systemd/coredump.conf.d/prep.conf",
    )
    files.put(
        name=f"Idle login shells end after {IDLE_SHELL_SECONDS} s, and dump no core",
        src=rendered("profile-prep.sh.j2", idle_seconds=IDLE_SHELL_SECONDS),
        dest="/etc/profile.d/prep-hardening.sh",
    )
    assembler = ASSEMBLER.get(host.get_fact(DebArch) or "")
    if assembler:
        statoverride(
            name="The assembler (binutils) executable by root only",
            path=assembler, user="root", group="root", mode="750",
        )  # fmt: skip
    _no_exec_shm()
    files.put(
        name="Removable storage and rare protocols cannot load",
        src=rendered("modprobe-prep.conf.j2", modules=BLOCKED_MODULES),
        dest="/etc/modprobe.d/prep-blocklist.conf",
    )
    for path in ("/etc/issue", "/etc/issue.net"):
        files.put(
            name=f"Legal banner in {path}",
            src=rendered("issue.j2", difusor=settings.difusor_name),
            dest=path,
        )
    sysstat = files.line(
        name="sysstat collects activity every 10 minutes",
        path="/etc/default/sysstat",
        line="^ENABLED=",
        replace='ENABLED="true"',
    )
    systemd.service(name="sysstat enabled", service="sysstat", running=True, enabled=True)
    systemd.service(
        name="Restart sysstat when enabled", service="sysstat", restarted=True,
        _if=sysstat.did_change,
    )  # fmt: skip
    for path in CRON_DIRS:
        files.directory(name=f"{path} root only", path=path, mode="700")
    if host.get_fact(File, path=CRONTAB):
        files.file(name=f"{CRONTAB} root only", path=CRONTAB, mode="600")
    for key, value in LOGIN_DEFS.items():
        files.line(
            name=f"login.defs {key} {value}",
            path="/etc/login.defs",
            line=rf"^{key}[[:space:]]",
            replace=f"{key}\t{value}",
        )
    _accounting(confinement, accounting)
    _audit(confinement, audit)


def _no_exec_shm() -> None:
    """Shared memory without executables, in fstab for the next boot and remounted now."""
    files.line(
        name=f"{SHM} mounted {SHM_OPTIONS} at boot",
        path="/etc/fstab",
        line=rf"^[^#[:space:]]+[[:space:]]+{SHM}[[:space:]]",
        replace=f"tmpfs {SHM} tmpfs defaults,{SHM_OPTIONS} 0 0",
    )
    mounted = host.get_fact(Mounts).get(SHM)
    if mounted and "noexec" not in mounted.get("options", []):
        server.shell(
            name=f"{SHM} remounted {SHM_OPTIONS}",
            commands=[f"mount -o remount,{SHM_OPTIONS} {SHM}"],
        )


def _accounting(confinement: Confinement, packages: list[str]) -> None:
    if not packages:
        host.noop(f"no process accounting: no CAP_SYS_PACCT here ({confinement.container})")
        return
    apt.packages(name="Process accounting", packages=packages, no_recommends=True)
    systemd.service(name="acct enabled", service="acct", running=True, enabled=True)


def _audit(confinement: Confinement, packages: list[str]) -> None:
    if not packages:
        host.noop(f"no auditd: the kernel audits only outside containers ({confinement.container})")
        return
    apt.packages(name="auditd", packages=packages, no_recommends=True)
    rules = files.put(
        name="Audit rules for configuration, identity, time and modules",
        src=rendered("audit-prep.rules.j2"),
        dest=AUDIT_RULES,
        mode="640",
    )
    systemd.service(name="auditd enabled", service="auditd", running=True, enabled=True)
    server.shell(name="Load the audit rules", commands=["augenrules --load"], _if=rules.did_change)
