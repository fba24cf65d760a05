"""End to end: a scripted power failure drives NUT's hooks on a deployed difusor.

``group_data/testbed.py`` gives test hosts NUT's ``dummy-ups`` driver on line and
a shutdown command that only logs. The test replaces the driver's sequence with
on line → on battery → on line → on battery → low battery, and the event log
must show the hooks firing in that order, down to the shutdown command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prep_iac.deploy.events import LOG as EVENT_LOG
from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import Deployed, difusor_on

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parents[2]
SEQUENCE = "/etc/nut/prep-test.seq"
POWER_FAILURE = [
    "ups.status: OL", "TIMER 5",
    "ups.status: OB", "battery.charge: 80", "TIMER 5",
    "ups.status: OL", "battery.charge: 85", "TIMER 5",
    "ups.status: OB", "battery.charge: 40", "TIMER 5",
    "ups.status: OB LB", "battery.charge: 5", "TIMER 600",
]  # fmt: skip
# upsmon announces LOWBATT and SHUTDOWN in the same poll; their hooks run
# concurrently, so those two lines may come in either order.
EXPECTED = ["ONBATT", "ONLINE", "ONBATT", {"LOWBATT", "SHUTDOWN"}, "SHUTDOWN_COMMAND"]


@pytest.fixture(scope="module")
def deployed(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    work = tmp_path_factory.mktemp("ups")
    with difusor_on(testbed, testbed.hosts[0], work, ROOT) as target:
        target.deploy()
        yield target


def ups_events(deployed: Deployed, after: int) -> list[dict[str, str]]:
    lines = deployed.root(f"tail -n +{after + 1} {EVENT_LOG}").stdout.splitlines()
    return [r for r in map(json.loads, lines) if r["source"] == "ups"]


def test_power_failure_sequence_fires_the_hooks_in_order(deployed: Deployed) -> None:
    before = int(deployed.root(f"wc -l < {EVENT_LOG}").stdout)
    sequence = "\\n".join(POWER_FAILURE)
    deployed.root(f"printf '{sequence}\\n' > {SEQUENCE} && systemctl restart nut-driver.target")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            events = ups_events(deployed, before)
            if [e["event"] for e in events][-1:] == ["SHUTDOWN_COMMAND"]:
                break
            time.sleep(1)
        # Restarting the driver may cost upsmon a poll: COMMBAD then COMMOK, fine.
        comm = [e["event"] for e in events if e["event"] in ("COMMBAD", "COMMOK")]
        assert comm in ([], ["COMMBAD", "COMMOK"])
        events = [e for e in events if e["event"] not in ("COMMBAD", "COMMOK")]
        names = [e["event"] for e in events]
        assert [*names[:3], set(names[3:5]), *names[5:]] == EXPECTED
        assert all(e["detail"] == "ups@localhost" for e in events[:3])
        assert events[-1]["detail"] == "logger -t prep-ups testbed: shutdown skipped"
        assert all(set(e) == {"time", "host", "source", "event", "detail"} for e in events)
        logged = deployed.root("journalctl -t prep-ups -n 5 --no-pager").stdout
        assert "testbed: shutdown skipped" in logged
    finally:
        # Back on line, upsd without the FSD flag upsmon set (only a restart clears it),
        # and upsmon (which exits after a shutdown) running again.
        deployed.root(
            f"printf 'ups.status: OL\\nbattery.charge: 100\\n' > {SEQUENCE}"
            " && rm -f /etc/killpower && systemctl restart nut-driver.target nut-server"
            " && systemctl restart nut-monitor"
        )


def test_redeploy_after_the_power_failure_changes_nothing(deployed: Deployed) -> None:
    assert deployed.deploy().changed == 0
