"""Defaults for every host: logging retention, time, upgrades, power, alerts.

Values are validated by ``prep_iac.deploy.settings.DifusorSettings`` before a
deploy touches a host; an inventory or a more specific group overrides them.
"""

# The deployer's login; pyinfra connects as this user with one of admin_keys.
admin_user = "root"

# Memoria técnica (clause VI) asks for access logs of election day and the next;
# keep at least 30 days of journal and of nginx's JSON access log.
journald_retention_days = 90
journald_max_use = "4G"
access_log_retention_days = 90

# chrony pools; cut ids and log times depend on a correct clock.
ntp_pools = ["2.debian.pool.ntp.org"]

# Security upgrades install unattended, but a reboot during the publication
# window would drop the site: an admin reboots by hand.
automatic_reboot = False

# Clause II.e: how this host learns of power loss ("none", "standalone" UPS on
# this host, or "netclient" of a NUT server given as ups_server).
ups_mode = "none"

# Who hears about failed upgrades and, later, IDS alerts.
notify_emails: list[str] = []

# Other nodes of the same difusor (clause II.a, high availability): the IEC
# pushes to each. With ha_address (the floating address visitors reach, on the
# link the nodes share; ha_peers are then the others' addresses on that link),
# keepalived keeps it on one fit node (prep_iac/deploy/ha.py). Also: ha_priority
# (100), ha_router_id (51), ha_advert_seconds (1; below 1 is VRRPv3, without
# authentication), ha_password (VRRPv2's, 4-8 characters, the same on every node).
ha_peers: list[str] = []

# Clause II.c minimums are enforced; only test hosts may set this.
force_below_minimums = False

# Clause II.e with ups_mode "standalone": the NUT driver and port of the UPS
# (e.g. "usbhid-ups" and "auto"), upsmon's password (ups_password, set it in the
# inventory) and what runs on LOWBATT/FSD.
ups_name = "ups"
ups_user = "upsmon"
ups_shutdown_command = "/sbin/shutdown -h +0"

# Every event line (IDS bans, power, storage) is also POSTed here when set.
notify_webhook = None

# Intrusion detection (prep_iac/deploy/ids.py): fail2ban bans last this long
# in the firewall's blocklist; a source answered 429 this many times in a
# minute is banned (a flood, not a NAT of visitors: those stay under the burst).
ids_ban_seconds = 3600
ids_flood_ban_after = 20
