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
