"""Host hardening found by auditing a deployed difusor with lynis (``benchmarks/audit.py``).

What lynis suggested and fits a publication server: PAM temporary directories,
a password-quality module and strict ``login.defs`` (no account has a password
login, but a local account added later gets sane defaults), no core dumps,
removable-storage and rare-protocol kernel modules blocked, package
verification tools (``debsums``, ``apt-show-versions``, ``apt-listchanges``) and
``needrestart`` in list-only mode (a restart during the election is an admin's call),
``sysstat`` (activity figures for the memoria técnica),
a legal banner, cron's files for root only.

Not taken, and why: ``apt-listbugs`` (asks questions during apt runs and needs
bugs.debian.org), separate ``/home``/``/var`` partitions (the installer's job),
per-unit systemd sandboxing (audited per service, not blanket), the DNS domain
and remote log host (the site's), a file integrity database (AIDE: minutes of
I/O at each run, and the publication changes every 10 minutes by design),
the assembler ``needrestart`` pulls in (binutils) left world-executable
(its path differs per architecture and upgrades reset it; lynis HRDN-7222),
``auditd`` and process accounting (``acct``): neither runs in the test
containers (no audit or pacct capability); a site may add them.
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, systemd

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
    refresh_lists_if_missing(AUDIT_PACKAGES, "Refresh package lists to install the audit tools")
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
