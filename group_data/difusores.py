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
iec_signing_keys: list[str] = []
# The election whose cuts this host accepts (a preset name or a YAML file).
election = "coahuila-2018"
# Releases kept on the host for a quick look back; the live one is never pruned.
keep_releases = 5
# How long a newly activated cut is vouched for by its own signed manifest; the
# IEC's freshness statements (one every period) vouch after that. The host shows
# the Spanish notice by itself once nothing vouches for its live cut. None means
# (strike limit + 1) × update period (4 × 10 min): it runs out as the IEC would
# disable the difusor, not before. Drills with compressed time set e.g. 80.
publication_max_age_seconds: int | None = None
