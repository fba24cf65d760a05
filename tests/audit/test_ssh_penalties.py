"""ACCESO-SSH on OpenSSH 9.8 and later: the IEC's sources must be exempt from the
penalties sshd gives sources that fail to log in (or a failed push shuts the IEC
out of the next period)."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from prep_iac.audit.checks import unexempt_sources

PENALTIES = "crash:90 authfail:5 noauth:1 grace-exceeded:10 max:600 min:15"
IEC = [ip_network("198.51.100.7/32"), ip_network("2001:db8:5::/64")]


@pytest.mark.parametrize(
    ("config", "shut_out"),
    [
        # Debian 12's sshd (9.2) has no penalties at all.
        ({}, []),
        ({"persourcepenalties": "no", "persourcepenaltyexemptlist": "none"}, []),
        ({"persourcepenalties": PENALTIES, "persourcepenaltyexemptlist": "none"},
         ["198.51.100.7/32", "2001:db8:5::/64"]),
        ({"persourcepenalties": PENALTIES,
          "persourcepenaltyexemptlist": "203.0.113.5/32,198.51.100.0/24,2001:db8::/32"}, []),
        # A narrower exemption than the source, or the other family, does not cover it.
        ({"persourcepenalties": PENALTIES,
          "persourcepenaltyexemptlist": "198.51.100.7/32,2001:db8:5::1/128"},
         ["2001:db8:5::/64"]),
        ({"persourcepenalties": PENALTIES, "persourcepenaltyexemptlist": "::/0"},
         ["198.51.100.7/32"]),
    ],
)  # fmt: skip
def test_the_iec_sources_left_to_the_penalties(config: dict[str, str], shut_out: list[str]) -> None:
    assert unexempt_sources(config, IEC) == shut_out
