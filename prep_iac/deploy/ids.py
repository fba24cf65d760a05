"""Intrusion detection and containment for web attacks (clause II.d.ii).

Three layers, each writing a log the memoria técnica reads:

- **ModSecurity v3 with the OWASP CRS** in nginx, paranoia level 1, blocking
  (403) SQL injection, path traversal and the like; JSON audit log in
  ``/var/log/nginx/modsec_audit.log``. Responses are not inspected: published
  HTML/JSON/CSV/zip never trip a rule.
- **fail2ban** jails (sshd from the journal, nginx's 429s, CRS blocks, scanners
  and exploit probes) ban into the firewall's ``blocklist4``/``blocklist6`` sets
  with a timeout (``ids_ban_seconds``); fail2ban owns no table. Bans are event
  lines (``prep_iac/deploy/events.py``); the IEC and admins are never banned.
- **Suricata 7** (bookworm-backports on Debian 12, main on Debian 13) on the
  host's interface with af-packet, EVE JSON in ``/var/log/suricata/eve.json``, capped memory, the
  distribution's protocol-event rules and prep-iac's web rules (no rule feed:
  a difusor may add ``suricata-update`` sources on its own).

Each config is checked by its program (``nginx -t`` for ModSecurity and the
CRS, ``suricata -T``, ``fail2ban-client -t``) on candidate copies, at their
final paths in a private mount namespace, before it replaces the running one
(``prep_iac/deploy/operations/files.py``): a rejected file never reaches the service.
"""

from __future__ import annotations

from dataclasses import replace

from pyinfra import logger
from pyinfra.api.deploy import deploy
from pyinfra.context import host
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from prep_iac.deploy.events import HOOK
from prep_iac.deploy.facts.network import PrimaryInterface
from prep_iac.deploy.firewall import TABLE
from prep_iac.deploy.operations.files import Candidate, validated_files, validated_template
from prep_iac.deploy.packages import refresh_lists_if_missing
from prep_iac.deploy.platform import Paths, platform_for
from prep_iac.deploy.rendering import rendered
from prep_iac.deploy.settings import DifusorSettings
from prep_iac.deploy.ssh import SSH_PORT
from prep_iac.deploy.web import ACCESS_LOG

IDS_PACKAGES = ("modsecurity", "crs", "fail2ban", "fail2ban_journal", "ethtool")
MODSECURITY_AUDIT_LOG = "/var/log/nginx/modsec_audit.log"
# fail2ban's jails (fail2ban-jail.local.j2): what each bans for.
JAIL_FLOOD = "nginx-limit-req"  # the rate limiter's 429s
JAIL_MODSECURITY = "prep-modsecurity"  # 3 requests the CRS refused
JAIL_BADBOTS = "prep-badbots"  # one scanner user agent or exploit probe
FAIL2BAN_ACTION = "prep-nftables"
FAIL2BAN_FILTERS = "/etc/fail2ban/filter.d"
MODSECURITY_RULES = "/etc/nginx/prep-modsecurity.conf"
MODSECURITY_CHECK = "ModSecurity with the OWASP CRS in nginx, checked with nginx -t"
MODSECURITY_VALIDATE = "nginx -t -q"
FAIL2BAN_CHECK = (
    "fail2ban: jails, filters and the blocklist action, checked with fail2ban-client -t"
)
FAIL2BAN_VALIDATE = "fail2ban-client -t >/dev/null"
SURICATA_RULES = ("prep-local.rules", "decoder-events.rules", "stream-events.rules",
                  "http-events.rules", "app-layer-events.rules")  # fmt: skip
SURICATA_MEMORY_MAX = "512M"


@deploy("Intrusion detection (ModSecurity + CRS, fail2ban, Suricata)")
def ids(settings: DifusorSettings) -> None:
    """
    Install and configure the web application firewall, the ban jails and the network IDS.

    + settings: the validated difusor settings

    Runs after ``web`` (nginx and its logs exist) and before ``firewall``.

    **Example:**

    .. code:: python

        from pyinfra.context import host
        from prep_iac.deploy.ids import ids
        from prep_iac.deploy.settings import settings_from_host

        ids(settings=settings_from_host(host))
    """
    platform = platform_for(host)
    packages = [platform.package(role) for role in IDS_PACKAGES]
    suricata = platform.package("suricata")
    refresh_lists_if_missing([*packages, suricata], "Refresh package lists to install the IDS")
    apt.packages(name="Install ModSecurity, the CRS and fail2ban", packages=packages,
                 no_recommends=True)  # fmt: skip
    apt.packages(
        name=f"Install Suricata ({platform.backports or 'main'})",
        packages=[suricata],
        no_recommends=True,
        extra_install_args=f"-t {platform.backports}" if platform.backports else None,
    )

    _modsecurity()
    _fail2ban(settings)
    _suricata(settings)


def modsecurity_candidates(paths: Paths, **changes: str) -> list[Candidate]:
    """ModSecurity's files for nginx: blocking, JSON audit log, the CRS rules included
    from their package; ``changes`` replace template values (tests break one)."""
    return _changed(
        [
            Candidate(
                "modsecurity.conf.j2",
                MODSECURITY_RULES,
                {
                    "unicode_mapping": paths.modsecurity_unicode_mapping,
                    "audit_log": MODSECURITY_AUDIT_LOG,
                    "crs_rules": paths.crs_rules,
                },
            ),
            Candidate(
                "nginx-modsecurity-module.conf.j2", f"{paths.nginx_modules_dir}/modsecurity.conf"
            ),
            Candidate(
                "nginx-modsecurity.conf.j2",
                f"{paths.nginx_http_dir}/modsecurity.conf",
                {"rules_file": MODSECURITY_RULES},
            ),
        ],
        changes,
    )


def fail2ban_candidates(settings: DifusorSettings, paths: Paths, **changes: str) -> list[Candidate]:
    """fail2ban's jails, filters and the action banning into the firewall's blocklist;
    ``changes`` replace template values (tests break one)."""
    return _changed(
        [
            Candidate(
                "fail2ban-action.conf.j2",
                f"/etc/fail2ban/action.d/{FAIL2BAN_ACTION}.conf",
                {"table": TABLE, "hook": HOOK},
            ),
            Candidate("fail2ban-modsecurity.conf.j2", f"{FAIL2BAN_FILTERS}/prep-modsecurity.conf"),
            Candidate("fail2ban-badbots.conf.j2", f"{FAIL2BAN_FILTERS}/prep-badbots.conf"),
            Candidate(
                "fail2ban-jail.local.j2",
                "/etc/fail2ban/jail.local",
                {
                    "action": FAIL2BAN_ACTION,
                    "ban_seconds": settings.ids_ban_seconds,
                    "trusted": [str(network) for network in settings.ssh_sources],
                    "error_log": paths.nginx_error_log,
                    "access_log": ACCESS_LOG,
                    "flood_ban_after": settings.ids_flood_ban_after,
                },
            ),
        ],
        changes,
    )


def _changed(candidates: list[Candidate], changes: dict[str, str]) -> list[Candidate]:
    return [
        replace(c, data={**c.data, **{k: v for k, v in changes.items() if k in c.data}})
        for c in candidates
    ]


def _modsecurity() -> None:
    platform = platform_for(host)
    for path in (platform.paths.nginx_modules_dir, platform.paths.nginx_http_dir):
        files.directory(name=f"nginx includes {path}", path=path, mode="755")
    config = validated_files(
        name=MODSECURITY_CHECK,
        candidates=modsecurity_candidates(platform.paths),
        validate=MODSECURITY_VALIDATE,
    )
    systemd.service(
        name="Reload nginx with ModSecurity when its configuration changed",
        service=platform.service("nginx"),
        reloaded=True,
        _if=config.did_change,
    )


def _fail2ban(settings: DifusorSettings) -> None:
    platform = platform_for(host)
    config = validated_files(
        name=FAIL2BAN_CHECK,
        candidates=fail2ban_candidates(settings, platform.paths),
        validate=FAIL2BAN_VALIDATE,
    )
    systemd.service(
        name="fail2ban running and enabled",
        service=platform.service("fail2ban"),
        running=True,
        enabled=True,
    )
    systemd.service(
        name="Restart fail2ban when its configuration changed",
        service=platform.service("fail2ban"),
        restarted=True,
        _if=config.did_change,
    )


def _suricata(settings: DifusorSettings) -> None:
    platform = platform_for(host)
    interface = host.get_fact(PrimaryInterface)
    name = settings.ids_interface or (interface.name if interface else None)
    if name is None:
        logger.warning(f"WARNING {host.name}: no network interface found; Suricata not configured")
        return
    home = interface.addresses if interface and interface.name == name else []
    config = "/etc/suricata/prep.yaml"
    rules = files.put(
        name="Suricata: prep-iac's web rules",
        src=rendered("suricata-prep.rules.j2", ssh_port=SSH_PORT),
        dest="/etc/suricata/rules/prep-local.rules",
    )
    yaml = validated_template(
        name=f"Suricata on {name}, EVE JSON (checked with suricata -T)",
        src="suricata.yaml.j2",
        dest=config,
        validate="suricata -T -c {path} >/dev/null",
        interface=name,
        home_net=home or ["0.0.0.0/0", "::/0"],
        ssh_port=SSH_PORT,
        log_dir="/var/log/suricata",
        rules_dir="/etc/suricata/rules",
        rule_files=SURICATA_RULES,
    )
    unit = files.put(
        name="Suricata's unit runs prep-iac's config with capped memory",
        src=rendered(
            "suricata-service.conf.j2",
            config=config,
            interface=name,
            memory_max=SURICATA_MEMORY_MAX,
        ),
        dest="/etc/systemd/system/suricata.service.d/prep.conf",
    )
    systemd.daemon_reload(name="systemd reads Suricata's drop-in", _if=unit.did_change)
    # Once, in a CI drill deploying five fresh hosts at once, the first start failed
    # ("control process exited with error code"); the package had just started
    # Suricata itself with Debian's default config. A second try starts it.
    systemd.service(
        name="Suricata running and enabled",
        service=platform.service("suricata"),
        running=True,
        enabled=True,
        _retries=2,
        _retry_delay=10,
    )
    systemd.service(
        name="Restart Suricata when its configuration changed",
        service=platform.service("suricata"),
        restarted=True,
        _if=any_changed(rules, yaml, unit),
        _retries=2,
        _retry_delay=10,
    )
