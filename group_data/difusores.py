"""Defaults for difusor publication servers: the IEC's account and traffic limits.

Per-difusor values (names, addresses, keys, framing origins) belong in the
difusor's inventory; see ``inventories/example.py``.
"""

# The IEC's SFTP-only account and its chroot. The layout inside the chroot is
# the contract with the push program (prep_iac/deploy/sftp.py).
sftp_user = "iec"
publication_root = "/srv/prep"

# nginx, per source address. A visitor loading the PREP page fires 10-30
# requests at once and then polls about one page per minute; a campus or
# mobile-carrier NAT puts many visitors behind one address. The burst admits
# four simultaneous page loads from one address, the rate a page load every
# 1.5 s sustained; a client scraping or flooding above that gets 429.
http_rate_per_second = 20
http_burst = 120
http_connections_per_source = 64

# nftables, per source address, below nginx: SYN floods and connection
# exhaustion never reach nginx. Browsers open about 6 connections per origin,
# so 60 new connections/s and 256 concurrent leave room for a large NAT.
new_connections_per_second = 60
max_connections_per_source = 256

# SSH from allowed sources (the IEC pushes once per 10-minute period).
ssh_new_connections_per_minute = 30

# Cut publication (prep_iac/deploy/publication.py). Only cuts signed by one of
# the IEC's signing keys are activated; these are not its SSH keys, so a stolen
# SSH key alone publishes nothing. Set them in the inventory; empty activates nothing.
# Each entry is a public-key line, or, to rotate without a gap, a dict with the
# instants (with their UTC offset) between which its signatures verify:
#   {"key": "ssh-ed25519 AAAA... firma-2026", "valid_before": "2026-12-20T00:00:00Z"},
#   {"key": "ssh-ed25519 AAAA... firma-2027", "valid_after": "2026-12-10T00:00:00Z"},
iec_signing_keys: list[str | dict[str, str]] = []
# The election whose cuts this host accepts (a preset name or a YAML file).
election = "coahuila-2018"
# Releases kept on the host for a quick look back; the live one is never pruned.
keep_releases = 5
# incoming/ is a filesystem of its own (a tmpfs, prep_iac/deploy/sftp.py) of this
# many MiB, so a stolen SFTP key that fills it never fills the disk of releases
# and logs. A cut is 30-35 MB; a first push sends all of it (about 40 MB as an
# uncompressed bundle with its tar headers). 256 MiB holds six of those: an upload
# in progress, complete ones waiting while the activator is down, and cuts
# larger than the calls foresaw. It takes memory only while uploads wait
# (3 % of clause II.c's 8 GB at the limit).
upload_area_mib = 256
# How long a newly activated cut is vouched for by its own signed manifest; the
# IEC's freshness statements (one every period) vouch after that. The host shows
# the Spanish notice by itself once nothing vouches for its live cut. None means
# (strike limit + 1) × update period (4 × 10 min): it runs out as the IEC would
# disable the difusor, not before. Drills with compressed time set e.g. 80.
publication_max_age_seconds: int | None = None
