"""The floating address's settings, its checks against the host and the inventory,
the monitor's verdict (the program the deploy installs, run here) and a visitor's
figures; the failover itself is measured on testbed hosts by the drill and by
benchmarks/failover.py."""

from __future__ import annotations

import runpy
import subprocess
import sys
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pyinfra.api.exceptions import DeployError
from pyinfra.api.state import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from prep_iac.audit.failover import Sample, gaps
from prep_iac.deploy.ha import CONFIG_TEST, check_inventory, ha_link
from prep_iac.deploy.rendering import render
from prep_iac.deploy.settings import DifusorSettings, settings_from_host

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example() -> DifusorSettings:
    """The example inventory's first node (two nodes, a floating address)."""
    with ctx_state.use(State()):
        hosts = make_inventory(str(ROOT / "inventories/example.py"), cwd=str(ROOT))
    return settings_from_host(next(iter(hosts)))


def with_(settings: DifusorSettings, **changes: Any) -> DifusorSettings:
    return DifusorSettings.model_validate({**settings.model_dump(), **changes})


def test_the_example_inventory_has_a_floating_address_with_authenticated_vrrp(
    example: DifusorSettings,
) -> None:
    assert example.ha_address == IPv4Address("203.0.113.20")
    assert example.vrrp_version == 2 and example.ha_password


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"ha_peers": []}, "ha_peers", "the other nodes"),
        ({"ha_peers": ["203.0.113.20"]}, "ha_peers.0", "a node's own address"),
        ({"ha_peers": ["2001:db8::2"]}, "ha_peers.0", "IPv4"),
        ({"ha_password": None}, "ha_password", "VRRPv2's password"),
        ({"ha_advert_seconds": 1.5}, "ha_advert_seconds", "whole seconds"),
        ({"ha_advert_seconds": 0.2}, "ha_password", "no authentication"),
        ({"ha_password": "x" * 9}, "ha_password", "String should match"),
        ({"ha_priority": 255}, "ha_priority", "less than or equal to 254"),
    ],
)
def test_incoherent_ha_settings_are_named(
    example: DifusorSettings, changes: dict[str, Any], field: str, expected: str
) -> None:
    with pytest.raises((ValidationError, ValueError)) as info:
        with_(example, **changes)
    assert field.split(".")[0] in str(info.value)
    assert expected in str(info.value)


def test_sub_second_adverts_are_vrrp_version_3_without_a_password(
    example: DifusorSettings,
) -> None:
    fast = with_(example, ha_advert_seconds=0.2, ha_password=None)
    assert fast.vrrp_version == 3


ADDRESSES = [("lo", "127.0.0.1/8"), ("eth0", "198.51.100.7/24"), ("lan0", "203.0.113.10/24")]


def test_the_link_is_the_interface_whose_network_holds_the_floating_address(
    example: DifusorSettings,
) -> None:
    interface, own = ha_link("prep1", example, ADDRESSES)
    assert interface == "lan0" and str(own) == "203.0.113.10/24"
    # The floating address itself, held now, is not the node's own.
    interface, own = ha_link("prep1", example, [*ADDRESSES, ("lan0", "203.0.113.20/24")])
    assert str(own.ip) == "203.0.113.10"


def test_a_floating_address_outside_the_nodes_networks_is_refused_naming_them(
    example: DifusorSettings,
) -> None:
    with pytest.raises(DeployError, match=r"prep1: ha_address 203\.0\.113\.20 is outside") as info:
        ha_link("prep1", example, ADDRESSES[:2])
    assert "eth0 198.51.100.7/24" in str(info.value)


def test_a_peer_off_the_link_is_refused(example: DifusorSettings) -> None:
    far = with_(example, ha_peers=["198.51.100.9"])
    with pytest.raises(DeployError, match=r"ha_peers 198\.51\.100\.9 is not another node on lan0"):
        ha_link("prep1", far, ADDRESSES)


@dataclass
class Other:
    name: str
    data: dict[str, Any]


def test_every_peer_must_be_a_node_of_the_inventory_that_names_this_one(
    example: DifusorSettings,
) -> None:
    own = IPv4Address("203.0.113.10")
    peer = Other("prep2", {"ha_address": "203.0.113.20", "ha_peers": ["203.0.113.10"]})
    check_inventory("prep1", example, own, [peer])
    stranger = Other("prep2", {"ha_address": "203.0.113.20", "ha_peers": ["203.0.113.99"]})
    other_vip = Other("prep2", {"ha_address": "203.0.113.30", "ha_peers": ["203.0.113.10"]})
    for others in ([], [stranger], [other_vip]):
        with pytest.raises(DeployError, match=r"ha_peers 203\.0\.113\.11 is no node of the inv"):
            check_inventory("prep1", example, own, others)


def monitor_module(tmp_path: Path, priority: int = 100) -> dict[str, Any]:
    """The monitor as the deploy renders it, loaded (not run)."""
    program = tmp_path / "prep-ha-monitor"
    text = render(
        "prep-ha-monitor.py.j2", program=str(program), port=8081, peers=["203.0.113.11"],
        root=str(tmp_path), reserve_mib=256, priority=priority, interval=0.2,
        peer_interval=1.0, fault=str(tmp_path / "fault"), penalty=str(tmp_path / "penalty"),
        heartbeat=str(tmp_path / "heartbeat"), state=str(tmp_path / "state.json"), stale=5,
        event_hook="/bin/true",
    )  # fmt: skip
    program.write_text(text)
    return runpy.run_path(str(program), run_name="prep_ha_monitor")


@pytest.mark.parametrize(
    ("own", "peer", "disk_low", "expected"),
    [
        ("20180701_2000", "20180701_2000", False, (0, 0)),  # equals keep the address where it is
        ("20180701_2000", None, False, (0, 0)),  # a silent peer changes nothing
        ("20180701_2000", "20180701_2010", False, (0, 99)),  # the peer has a newer cut
        ("20180701_2010", "20180701_2000", False, (0, 0)),
        ("20180701_2010", "20180701_2010b", False, (0, 99)),  # a re-issue is newer
        ("", "20180701_2000", False, (0, 99)),  # the notice here, results there
        ("20180701_2000", "", False, (0, 0)),
        ("", "", False, (0, 0)),  # both suspended: someone must show the notice
        ("20180701_2000", "20180701_2000", True, (0, 99)),  # full disk, the same cut there
        ("20180701_2010", "20180701_2000", True, (0, 0)),  # full disk, but the newest cut
        (None, "20180701_2000", False, (1, 0)),  # nginx does not answer: fault
        (None, None, False, (1, 0)),
    ],
)
def test_the_monitor_yields_to_a_better_peer_and_faults_when_nginx_is_silent(
    tmp_path: Path, own: str | None, peer: str | None, disk_low: bool, expected: tuple[int, int]
) -> None:
    verdict = monitor_module(tmp_path)["verdict"]
    fault, penalty, reason = verdict(own, {"203.0.113.11": peer}, disk_low)
    assert (fault, penalty) == expected
    assert reason


def test_the_monitor_keeps_keepalived_files_and_its_heartbeat(tmp_path: Path) -> None:
    module = monitor_module(tmp_path)
    (tmp_path / "fault").write_text("1\n")  # what keepalived's init_file writes at its start
    module["keep"](str(tmp_path / "fault"), 0)
    assert (tmp_path / "fault").read_text() == "0\n"
    program = str(tmp_path / "prep-ha-monitor")
    alive = subprocess.run([sys.executable, program, "--alive"], check=False)
    assert alive.returncode == 1  # no heartbeat yet: keepalived's check fails
    (tmp_path / "heartbeat").touch()
    alive = subprocess.run([sys.executable, program, "--alive"], check=False)
    assert alive.returncode == 0


def test_the_config_test_fails_on_any_message_and_passes_143_when_silent(
    tmp_path: Path,
) -> None:
    """keepalived 2.2.7 ends its config test with SIGTERM; a fake keepalived plays it."""
    fake = tmp_path / "keepalived"
    command = CONFIG_TEST.format(path="/etc/keepalived/candidate")
    for script, ok in [
        ("kill -TERM $$", True),
        ("exit 0", True),
        ("echo 'Line 4: Unknown keyword' >&2; kill -TERM $$", False),
        ("exit 5", False),
        ("kill -SEGV $$", False),
    ]:
        fake.write_text(f"#!/bin/sh\n{script}\n")
        fake.chmod(0o755)
        done = subprocess.run(
            ["sh", "-c", command], env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, check=False,
            capture_output=True,
        )  # fmt: skip
        assert (done.returncode == 0) is ok, (script, done)


def test_gaps_are_measured_between_served_requests_and_the_cut_never_goes_back() -> None:
    a, b = "20180701_2000", "20180701_2010"
    samples = [Sample(0.0, a), Sample(0.05, a), Sample(0.1, None), Sample(0.15, None),
               Sample(0.6, b), Sample(0.65, a), Sample(0.7, b)]  # fmt: skip
    seen = gaps(samples, since=0.0, until=1.0)
    assert seen.requests == 7 and seen.failed == 2
    assert seen.longest_s == pytest.approx(0.55)
    assert seen.went_back == [(b, a)]
    assert seen.cuts == [a, b]
    # Still failing at the window's end: the gap runs to it.
    assert gaps([Sample(0.0, a), Sample(0.5, None)], 0.0, 2.0).longest_s == pytest.approx(2.0)
    # The notice ("") is served, but is no cut: it never counts as going back.
    assert gaps([Sample(0.0, b), Sample(0.1, "")], 0.0, 0.2).went_back == []
