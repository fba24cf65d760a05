"""Testbed hosts (``inventories/testbed.py``): small nspawn containers on one machine.

They have a 2 GiB disk and the machine's memory, far below clause II.c; the
deploy goes on with a warning in its output instead of refusing them.
"""

force_below_minimums = True

# A simulated UPS (NUT's dummy-ups) on line; tests script it through battery
# and low battery. The shutdown is logged, never run.
ups_mode = "standalone"
ups_driver = "dummy-ups"
ups_port = "prep-test.seq"
ups_password = "testbed-upsmon-pw"  # noqa: S105 (test hosts only)
ups_dummy_sequence = ["ups.status: OL", "battery.charge: 100"]
ups_shutdown_command = "logger -t prep-ups testbed: shutdown skipped"

# The attack suite fills the upload area over SFTP; 64 MiB still holds a first
# push of a synthetic cut (a gzipped bundle of about 10 MB) several times over.
upload_area_mib = 64
