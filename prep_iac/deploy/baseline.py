"""OS baseline: minimal packages, security upgrades, time, kernel hardening, the journal.

Packages are installed before any of their configuration is written, and apt
runs non-interactively keeping existing config files (``--force-confdef
--force-confold``, pyinfra's default), so a conffile written here never stops
an install at a dpkg prompt.
"""

from __future__ import annotations

from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, files, systemd

from prep_iac.deploy.operations import sysctl
from prep_iac.deploy.packages import refresh_lists_if_missing
from prep_iac.deploy.platform import platform_for
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings

# The packages every difusor host needs; everything else stays off the host.
BASE_PACKAGES = ("ssh", "nginx", "nftables", "chrony", "unattended", "logrotate", "python", "ca")

# Network services that have no place on a publication server.
UNWANTED_PACKAGES = (
    "telnetd",
    "inetutils-telnetd",
    "rsh-server",
    "rsh-redone-server",
    "nis",
    "tftpd",
    "tftpd-hpa",
    "xinetd",
    "vsftpd",
    "proftpd-basic",
    "avahi-daemon",
    "cups",
    "rpcbind",
    "talkd",
)

# Kernel hardening of the dev-sec os-hardening kind, plus SYN-flood headroom.
KERNEL_PARAMETERS: dict[str, int] = {
    "net.ipv4.tcp_syncookies": 1,
    "net.ipv4.tcp_max_syn_backlog": 4096,
    "net.ipv4.tcp_synack_retries": 2,
    "net.ipv4.tcp_rfc1337": 1,
    "net.core.somaxconn": 4096,
    "net.ipv4.conf.all.rp_filter": 1,
    "net.ipv4.conf.default.rp_filter": 1,
    "net.ipv4.conf.all.accept_redirects": 0,
    "net.ipv4.conf.default.accept_redirects": 0,
    "net.ipv4.conf.all.secure_redirects": 0,
    "net.ipv4.conf.default.secure_redirects": 0,
    "net.ipv4.conf.all.send_redirects": 0,
    "net.ipv4.conf.default.send_redirects": 0,
    "net.ipv6.conf.all.accept_redirects": 0,
    "net.ipv6.conf.default.accept_redirects": 0,
    "net.ipv4.conf.all.accept_source_route": 0,
    "net.ipv4.conf.default.accept_source_route": 0,
    "net.ipv6.conf.all.accept_source_route": 0,
    "net.ipv6.conf.default.accept_source_route": 0,
    "net.ipv4.conf.all.log_martians": 1,
    "net.ipv4.conf.default.log_martians": 1,
    "net.ipv4.icmp_echo_ignore_broadcasts": 1,
    "net.ipv4.icmp_ignore_bogus_error_responses": 1,
    "net.ipv4.ip_forward": 0,
    "net.ipv6.conf.all.forwarding": 0,
    "kernel.kptr_restrict": 2,
    "kernel.dmesg_restrict": 1,
    "kernel.randomize_va_space": 2,
    "kernel.yama.ptrace_scope": 1,
    "kernel.sysrq": 0,
    "kernel.core_uses_pid": 1,
    "kernel.unprivileged_bpf_disabled": 1,
    "kernel.perf_event_paranoid": 3,
    "kernel.ctrl-alt-del": 0,
    "dev.tty.ldisc_autoload": 0,
    "net.core.bpf_jit_harden": 2,
    "fs.protected_hardlinks": 1,
    "fs.protected_symlinks": 1,
    "fs.protected_fifos": 2,
    "fs.protected_regular": 2,
    "fs.suid_dumpable": 0,
}

SYSCTL_FILE = "/etc/sysctl.d/90-prep-hardening.conf"
JOURNALD_FILE = "/etc/systemd/journald.conf.d/90-prep.conf"


@deploy("OS baseline")
def baseline(settings: DifusorSettings) -> None:
    """
        Install the difusor's packages, then configure upgrades, time, kernel and journal.

        + settings: the validated difusor settings

        **Example:**

        .. code:: python

            from pyinfra.context import host
    from pyinfra.facts.deb import DebPackages
            from prep_iac.deploy.baseline import baseline
            from prep_iac.deploy.settings import settings_from_host

            baseline(settings=settings_from_host(host))
    """
    platform = platform_for(host)
    paths = platform.paths
    packages = [platform.package(role) for role in BASE_PACKAGES]
    refresh_lists_if_missing(packages, "Refresh package lists to install missing packages")
    apt.packages(name="Install the difusor's packages", packages=packages, no_recommends=True)
    apt.packages(
        name="Remove network services a publication server must not run",
        packages=list(UNWANTED_PACKAGES),
        present=False,
    )

    files.put(
        name="Daily unattended upgrades",
        src=rendered("auto-upgrades.j2"),
        dest=f"{paths.unattended_conf_dir}/20auto-upgrades",
    )
    files.put(
        name="Unattended upgrades: security only, no automatic reboot",
        src=rendered(
            "unattended-upgrades.j2",
            automatic_reboot=settings.automatic_reboot,
            notify_emails=settings.notify_emails,
        ),
        dest=f"{paths.unattended_conf_dir}/52prep-unattended-upgrades",
    )
    systemd.service(
        name="Unattended upgrades enabled",
        service=platform.service("unattended"),
        running=True,
        enabled=True,
    )

    chrony = files.put(
        name="chrony time sources",
        src=rendered("chrony-sources.j2", pools=settings.ntp_pools),
        dest=f"{paths.chrony_sources_dir}/prep.sources",
    )
    # chronyd only runs where it may set the clock (ConditionCapability=CAP_SYS_TIME):
    # on a real host, not in a container, so "running" is not asserted here.
    systemd.service(
        name="chrony enabled", service=platform.service("chrony"), running=None, enabled=True
    )
    systemd.service(
        name="Restart chrony when its sources change",
        service=platform.service("chrony"),
        running=None,
        restarted=True,
        _if=chrony.did_change,
    )

    files.put(
        name="Kernel hardening, applied at boot",
        src=rendered("sysctl-hardening.conf.j2", parameters=KERNEL_PARAMETERS),
        dest=SYSCTL_FILE,
    )
    sysctl.parameters(name="Kernel hardening, applied now", values=KERNEL_PARAMETERS)

    files.directory(
        name="Persistent journal directory",
        path="/var/log/journal",
        user="root",
        group="systemd-journal",
        mode="2755",
    )
    journald = files.put(
        name=f"Journal kept at least {settings.journald_retention_days} days",
        src=rendered(
            "journald.conf.j2",
            retention_days=settings.journald_retention_days,
            max_use=settings.journald_max_use,
        ),
        dest=JOURNALD_FILE,
    )
    systemd.service(
        name="Restart journald when its settings change",
        service=platform.service("journald"),
        restarted=True,
        _if=journald.did_change,
    )
