"""Addresses and names of testbed hosts, without root: what every testbed will use."""

from __future__ import annotations

import ipaddress

import pytest

from prep_iac.testbed import TestbedError, TestbedSettings
from prep_iac.testbed.network import (
    MAX_HOSTS,
    MAX_SLOT,
    TESTBED_RANGE,
    host_link,
    require_testbed_address,
    slot_network,
)
from prep_iac.testbed.state import validate_name


def test_every_host_address_of_every_slot_is_in_the_benchmark_range() -> None:
    seen: set[ipaddress.IPv4Network] = set()
    for slot in range(1, MAX_SLOT + 1):
        for index in range(1, MAX_HOSTS + 1):
            link = host_link(slot, index)
            assert link.network.subnet_of(TESTBED_RANGE)
            assert link.network.subnet_of(slot_network(slot))
            assert {link.gateway, link.address} <= set(link.network.hosts())
            assert link.network not in seen
            seen.add(link.network)


def test_the_proxy_address_is_in_the_range_and_in_no_slot() -> None:
    proxy = TestbedSettings().proxy_address
    assert proxy in TESTBED_RANGE
    assert not any(proxy in slot_network(s) for s in range(1, MAX_SLOT + 1))


@pytest.mark.parametrize("target", ["192.0.2.2", "127.0.0.1", "8.8.8.8", "198.20.0.1", "::1"])
def test_addresses_outside_the_range_are_refused_as_targets(target: str) -> None:
    with pytest.raises(TestbedError, match=r"198\.18\.0\.0/15"):
        require_testbed_address(target)


def test_host_numbers_beyond_a_slot_are_refused() -> None:
    with pytest.raises(TestbedError, match=r"1\.\.63"):
        host_link(1, MAX_HOSTS + 1)


@pytest.mark.parametrize("name", ["", "Prep", "1bed", "a" * 21, "a.b", "a/b"])
def test_names_that_cannot_be_part_of_paths_and_namespaces_are_refused(name: str) -> None:
    with pytest.raises(TestbedError, match="testbed name"):
        validate_name(name)


def test_interface_names_fit_the_kernel_limit_at_the_largest_slot_and_host() -> None:
    assert len(f"pi{MAX_SLOT}h{MAX_HOSTS}") <= 15


def test_lan_addresses_never_meet_the_iec_sources_or_each_other() -> None:
    """The LAN shares 198.19.s.0/24 with the machine's IEC sources (.4i+2): the hosts
    (.4i+1), the bridge (.1) and the floating addresses (.4k+3) never take one."""
    from prep_iac.testbed.difusor import iec_source_for
    from prep_iac.testbed.network import MAX_FLOATING, floating_address, lan_link, lan_network
    from prep_iac.testbed.state import HostState

    for slot in range(1, MAX_SLOT):
        iec = set()
        for index in range(1, MAX_HOSTS + 1):
            link = host_link(slot, index)
            state = HostState(name="h", index=index, address=link.address, gateway=link.gateway,
                              prefix=30, netns="n", veth="v", machine="m")  # fmt: skip
            iec.add(ipaddress.IPv4Address(iec_source_for(state)))
        lan = [lan_link(slot, i).address for i in range(1, MAX_HOSTS + 1)]
        floating = [floating_address(slot, k) for k in range(MAX_FLOATING)]
        bridge = lan_link(slot, 1).gateway
        used = [bridge, *lan, *floating]
        assert len(set(used)) == len(used)
        assert not set(used) & iec
        usable = set(lan_network(slot).hosts())
        assert set(used) <= usable and lan_network(slot).subnet_of(TESTBED_RANGE)


def test_the_last_slot_has_no_lan_it_would_be_the_proxys() -> None:
    from prep_iac.testbed.network import lan_network

    with pytest.raises(TestbedError, match="apt proxy"):
        lan_network(MAX_SLOT)
