"""Example: a production difusor with two publication nodes (clause II.a).

Addresses are documentation ranges and the keys are placeholders (an all-zero
Ed25519 key that no one holds): copy this file, put in the difusor's real
values and run ``pyinfra -y inventories/<copy>.py deploys/difusor.py``.

The two nodes share one network: visitors reach the floating address
203.0.113.20 (``prep.difusor.example`` resolves to it), which keepalived keeps
on the node fit to serve; the IEC pushes to each node's own address. VRRP's
password comes from the environment (``PREP_IAC_HA_PASSWORD``, 4-8 characters,
the same for both nodes); never write it in this file.
"""

import os

PLACEHOLDER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

difusores = (
    [
        ("prep1.difusor.example", {"ssh_hostname": "203.0.113.10", "ha_peers": ["203.0.113.11"]}),
        ("prep2.difusor.example", {"ssh_hostname": "203.0.113.11", "ha_peers": ["203.0.113.10"]}),
    ],
    {
        "difusor_id": "uejemplo",  # your id in the IEC's registry, given by the IEC
        "difusor_name": "Universidad Ejemplo",
        "server_names": ["prep.difusor.example"],
        # The difusor's portal frames the PREP (clause I.6).
        "frame_ancestors": ["'self'", "https://www.difusor.example"],
        "iec_sources": ["198.51.100.0/28"],
        "iec_keys": [f"{PLACEHOLDER_KEY} iec-prep-2018"],
        "admin_sources": ["203.0.113.0/26"],
        "admin_keys": [f"{PLACEHOLDER_KEY} admin@difusor.example"],
        "tls_certificate": "/etc/ssl/prep/fullchain.pem",
        "tls_key": "/etc/ssl/prep/privkey.pem",
        "ups_mode": "netclient",
        "ups_server": "ups.difusor.example",
        "notify_emails": ["noc@difusor.example"],
        "ha_address": "203.0.113.20",
        "ha_password": os.environ.get("PREP_IAC_HA_PASSWORD", "cambiame"),
    },
)
