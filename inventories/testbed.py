"""pyinfra inventory of the running testbed: its hosts, addresses and keys.

Targets the testbed named by ``PREP_IAC_TESTBED`` (default ``prep``, as the
CLI): ``PREP_IAC_TESTBED=ci pyinfra -y inventories/testbed.py deploys/difusor.py``.
Host keys are pinned (the testbed's known_hosts, strict checking); the admin key
is the one the testbed generated at run time. On each host the IEC and the
admins reach it from the machine's end of its link (its gateway). The UPS and
the rest of the test-host settings come from ``group_data/testbed.py`` (this
file's name is the group): NUT's dummy UPS drives the real power-event path.
"""

import os

from prep_iac.testbed import Testbed

_bed = Testbed.load(os.environ.get("PREP_IAC_TESTBED", "prep"))
_admin_key = _bed.ssh_files.public_key.read_text().strip()

difusores = (
    [
        (
            host.name,
            {
                "ssh_hostname": str(host.address),
                "ssh_user": "root",
                "ssh_key": str(_bed.key),
                "ssh_known_hosts_file": str(_bed.known_hosts),
                "ssh_strict_host_key_checking": "yes",
                "difusor_id": host.name,  # as in `prep-iac testbed registry`
                "difusor_name": f"Difusor de pruebas {host.index}",
                "server_names": [f"{host.name}.testbed.example"],
                "iec_sources": [f"{host.gateway}/32"],
                "admin_sources": [f"{host.gateway}/32"],
            },
        )
        for host in _bed.hosts
    ],
    {
        "testbed": _bed.name,
        "frame_ancestors": ["'self'"],
        "iec_keys": [_admin_key],
        "admin_keys": [_admin_key],
        "admin_user": "root",
        "notify_emails": ["noc@testbed.example.org"],
    },
)
