"""Two or more testbed hosts as the nodes of one difusor behind a floating address
(``prep_iac.deploy.ha``), and failovers measured as a visitor sees them.

The hosts must be on the testbed's LAN (``Testbed.up(..., lan=True)``): the
floating address is one of the LAN's, VRRP runs between the hosts' ``lan0``
and visitors come from the machine's end of the bridge.

**Example:**

.. code:: python

    data = ha_data(bed, ["difusor-1", "difusor-2"], advert_s=0.2)
    ...  # deploy each host with data[name] (and the others' as its peers)
    figures = failover(bed, ["difusor-1", "difusor-2"], "power", host="prep.example")
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from prep_iac.audit.failover import Gaps, Visitor
from prep_iac.audit.target import Http
from prep_iac.deploy.events import LOG as EVENT_LOG
from prep_iac.testbed.testbed import Testbed

FaultKind = Literal["power", "nginx", "link"]
FAULTS: tuple[FaultKind, ...] = ("power", "nginx", "link")


def ha_data(
    bed: Testbed, names: list[str], advert_s: float = 1.0, number: int = 0
) -> dict[str, dict[str, Any]]:
    """Each node's host data for one floating address: the address, its peers on the
    LAN and, for VRRPv2 (whole-second adverts), a password made now."""
    password = secrets.token_hex(4) if advert_s >= 1 else None
    data = {}
    for name in names:
        node: dict[str, Any] = {
            "ha_address": bed.floating_address(number),
            "ha_peers": [bed.lan_address(n) for n in names if n != name],
            "ha_advert_seconds": advert_s,
        }
        if password:
            node["ha_password"] = password
        data[name] = node
    return data


def holders(bed: Testbed, names: list[str], address: str) -> list[str]:
    """The running hosts among ``names`` that hold ``address`` (read from inside, no SSH)."""
    held = []
    for name in names:
        if not bed.is_running(name):
            continue
        done = bed.exec(name, "ip", "-o", "-4", "addr", "show", check=False)
        if f" {address}/" in done.stdout:
            held.append(name)
    return held


def one_holder(bed: Testbed, names: list[str], address: str, timeout_s: float) -> float | None:
    """Seconds until exactly one host holds ``address`` (None if not within ``timeout_s``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if len(holders(bed, names, address)) == 1:
            return round(time.monotonic() - started, 2)
        time.sleep(0.1)
    return None


@dataclass
class Failover:
    """One failover: the fault on the node holding the address, then its mend."""

    kind: FaultKind
    master: str
    during: Gaps  # from the fault until the mend
    after: Gaps  # from the mend on
    holders_during: list[str]
    single_holder_after_s: float | None  # until exactly one node held it after the mend
    holders_after: list[str] = field(default_factory=list)
    # Each node's HA events (the event log's "ha" lines) from the fault on.
    events: dict[str, list[str]] = field(default_factory=dict)

    @property
    def went_back(self) -> bool:
        return bool(self.during.went_back or self.after.went_back)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "went_back": self.went_back}


def ha_events(bed: Testbed, names: list[str], since: str) -> dict[str, list[str]]:
    """``event: detail`` of each running node's "ha" events at or after ``since`` (UTC,
    as the event log writes it), read from inside."""
    found = {}
    for name in names:
        if not bed.is_running(name):
            continue
        done = bed.exec(name, "cat", EVENT_LOG, check=False)
        lines = []
        for line in done.stdout.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("source") == "ha" and str(record.get("time", "")) >= since:
                lines.append(f"{record.get('event')}: {record.get('detail')}")
        found[name] = lines
    return found


def _break(bed: Testbed, name: str, kind: FaultKind) -> None:
    if kind == "power":
        bed.power_off(name)
    elif kind == "nginx":
        bed.exec(name, "systemctl", "kill", "-s", "KILL", "nginx")
    else:
        bed.lan_down(name)


def _mend(bed: Testbed, name: str, kind: FaultKind) -> None:
    if kind == "power":
        bed.power_on(name)
    elif kind == "link":
        bed.lan_up(name)
    # nginx: systemd restarts it by itself (the deploy's Restart=always).


def failover(
    bed: Testbed, names: list[str], kind: FaultKind, host: str, observe_s: float = 5.0,
    after_s: float = 3.0, settle_s: float = 5.0, number: int = 0,
) -> Failover:  # fmt: skip
    """Break the node holding the floating address in one way, with a visitor polling it
    every 50 ms; mend it after ``observe_s``; watch ``after_s`` more (at most ``settle_s``
    for a single holder). Bounded: the visitor stops by itself."""
    address = bed.floating_address(number)
    if one_holder(bed, names, address, settle_s) is None:
        raise RuntimeError(f"{address}: not held by exactly one of {names} before the fault")
    [master] = holders(bed, names, address)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    limit = observe_s + after_s + settle_s + 60
    with Visitor(Http(address=address, host=host), limit_s=limit) as visitor:
        time.sleep(0.5)
        broke = time.monotonic()
        _break(bed, master, kind)
        time.sleep(observe_s)
        during_holders = holders(bed, names, address)
        mended = time.monotonic()
        _mend(bed, master, kind)
        single = one_holder(bed, names, address, settle_s)
        time.sleep(max(0.0, after_s - (time.monotonic() - mended)))
        ended = time.monotonic()
    return Failover(
        kind=kind, master=master, during=visitor.gaps(broke, mended),
        after=visitor.gaps(mended, ended), holders_during=during_holders,
        single_holder_after_s=single, holders_after=holders(bed, names, address),
        events=ha_events(bed, names, since),
    )  # fmt: skip
