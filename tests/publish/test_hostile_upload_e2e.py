"""The deployed difusor host against a hostile upload area: what a stolen IEC SSH key
(without the signing key) can try, on one testbed host the module deploys once.

The host is ``hosts[0]``, which the other suites deploy too: here it is
re-deployed with four signing keys (the current and the next of a rotation, an
expired and a not-yet-valid one), and at the end its publication tree is reset
to what a fresh deploy leaves, so the suites after this one start clean.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paramiko
import pytest

from prep_iac.cuts import generate_night
from prep_iac.deploy.testing import Deployed, difusor_on
from prep_iac.models.difusor import Difusor
from prep_iac.presets import load_election
from prep_iac.publish.prepare import PreparedCut, prepare_cut
from prep_iac.publish.push import Credentials, NodeResult, connect, push_node, read_json
from prep_iac.publish.signing import generate_signing_key
from prep_iac.testbed import Testbed

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parents[2]
ELECTION = load_election("coahuila-2018")
BUDGET = 60.0
CUTS = 6
EXPOSURE_TARGET = 2.0
# group_data/testbed.py's upload_area_mib.
UPLOAD_AREA_MIB = 64
RESET = (
    "rm -rf /srv/prep/releases/* /srv/prep/releases/.[!.]* /srv/prep/status/*"
    " /srv/prep/incoming/* && ln -sfn notice /srv/prep/.live.reset"
    " && mv -T /srv/prep/.live.reset /srv/prep/live"
)


@dataclass
class Target:
    """The module's host, its signing keys by role and the cuts it has been sent."""

    deployed: Deployed
    difusor: Difusor
    credentials: Credentials
    keys: dict[str, Path]
    work: Path
    sources: list[Path]
    pushed: list[PreparedCut] = field(default_factory=list)
    prepared: dict[tuple[int, str], PreparedCut] = field(default_factory=dict)

    def cut(self, index: int, key: str = "current") -> PreparedCut:
        """Cut ``index`` of the night, signed with the key of role ``key``."""
        if (index, key) not in self.prepared:
            self.prepared[index, key] = prepare_cut(
                self.sources[index], ELECTION, self.keys[key], self.work / "prepared" / key
            )
        return self.prepared[index, key]

    @property
    def next_index(self) -> int:
        return len(self.pushed)

    def push(self, cut: PreparedCut, budget: float = BUDGET) -> NodeResult:
        result = push_node(cut, self.difusor, self.difusor.nodes[0], self.credentials, budget)
        if result.ok:
            self.pushed.append(cut)
        return result

    def live(self) -> str:
        """The live cut's id; when nothing was pushed yet (a test run alone), the first cut's."""
        if not self.pushed:
            result = self.push(self.cut(0))
            assert result.ok, result
        return self.pushed[-1].manifest.cut_id

    def served_cut(self) -> str:
        return self.deployed.served_cut()

    def host(self, command: str) -> str:
        return self.deployed.root(command).stdout

    def status(self) -> dict[str, object]:
        with connect(self.difusor.nodes[0], self.difusor.sftp_user, self.credentials) as conn:
            return read_json(conn.sftp(), "/status/status.json") or {}


def signing_keys(work: Path) -> tuple[dict[str, Path], list[dict[str, str]]]:
    """Four signing keys and their group-data entries: a rotation (``current`` until
    tomorrow, ``next`` since an hour ago), one ``expired`` an hour ago, one valid
    only from tomorrow (``future``)."""
    now = datetime.now(UTC).replace(microsecond=0)
    windows = {
        "current": {"valid_before": now + timedelta(days=1)},
        "next": {"valid_after": now - timedelta(hours=1)},
        "expired": {
            "valid_after": now - timedelta(days=2),
            "valid_before": now - timedelta(hours=1),
        },
        "future": {"valid_after": now + timedelta(days=1)},
    }
    keys = {role: generate_signing_key(work / f"signing_{role}") for role in windows}
    entries = [
        {
            "key": keys[role].with_suffix(".pub").read_text().strip(),
            **{bound: moment.isoformat() for bound, moment in window.items()},
        }
        for role, window in windows.items()
    ]
    return keys, entries


@pytest.fixture(scope="module")
def target(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    work = tmp_path_factory.mktemp("hostile")
    infos = generate_night(ELECTION, work / "cuts", cuts=CUTS, seed=23)
    keys, entries = signing_keys(work)
    host = testbed.hosts[0]
    with difusor_on(testbed, host, work, ROOT) as deployed:
        deployed.write_inventory(iec_signing_keys=entries)
        deployed.deploy()
        deployed.root(RESET)
        difusor = next(d for d in testbed.registry().difusores if d.id == host.name)
        credentials = Credentials(deployed.iec_key, source_address=deployed.iec_source)
        try:
            yield Target(deployed, difusor, credentials, keys, work, [i.path for i in infos])
        finally:
            deployed.root(RESET)


def assert_rejected(target: Target, result: NodeResult, reason: str, live: str) -> None:
    """The push failed on the host's verdict ``reason``, logged as such, and ``live`` is
    still the cut the host records and serves."""
    assert (result.outcome, result.error_class) == ("failed", f"rejected:{reason}"), result
    logged = target.host("tail -n 1 /var/log/prep-iac/activate.log")
    assert f'"reason": "{reason}"' in logged, logged
    assert target.status()["cut_id"] == live
    assert target.served_cut() == live


def test_cuts_signed_by_the_current_then_the_next_key_both_activate(target: Target) -> None:
    first = target.push(target.cut(target.next_index, "current"))
    assert first.ok, first
    second = target.push(target.cut(target.next_index, "next"))
    assert second.ok, second
    assert target.served_cut() == target.live() == target.pushed[-1].manifest.cut_id


@pytest.mark.parametrize("key", ["expired", "future"])
def test_a_cut_signed_by_a_key_outside_its_validity_is_rejected(target: Target, key: str) -> None:
    live = target.live()
    result = target.push(target.cut(target.next_index, key))
    assert_rejected(target, result, "bad-signature", live)


@pytest.mark.parametrize("unit", ["prep-activate.service", "prep-activate-watchdog.service"])
def test_activation_units_are_confined_below_the_exposure_target(target: Target, unit: str) -> None:
    report = target.host(f"systemd-analyze security {unit}")
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: ([0-9.]+)", report)
    assert match is not None, report
    assert float(match.group(1)) <= EXPOSURE_TARGET, report
    timeout = target.host(f"systemctl show -P TimeoutStartUSec {unit}").strip()
    assert timeout == "2min", "a hung run must be killed, freeing the lock"


def test_the_iec_account_cannot_make_symlinks_or_hard_links(target: Target) -> None:
    with target.deployed.sftp_client() as client, client.open_sftp() as sftp:
        with sftp.open("/incoming/mine", "w") as handle:
            handle.write(b"x")
        try:
            with pytest.raises(OSError):
                sftp.symlink("/status/status.json", "/incoming/link")
            request = getattr(sftp, "_request")  # noqa: B009 (paramiko has no hardlink call)
            with pytest.raises(OSError):
                request(
                    paramiko.sftp.CMD_EXTENDED,
                    "hardlink@openssh.com",
                    "/incoming/mine",
                    "/incoming/hard",
                )
            assert sorted(sftp.listdir("/incoming")) == ["mine"]
        finally:
            sftp.remove("/incoming/mine")


def test_filling_the_upload_area_leaves_releases_logs_and_the_live_cut(target: Target) -> None:
    live = target.live()
    free = "df -B1 --output=avail /srv/prep/releases /var/log/prep-iac | tail -n 2"
    before = [int(n) for n in target.host(free).split()]
    chunk = b"\0" * (1 << 20)
    with target.deployed.sftp_client() as client, client.open_sftp() as sftp:
        try:
            with pytest.raises(OSError), sftp.open("/incoming/filler", "w") as handle:
                for _ in range(UPLOAD_AREA_MIB + 1):
                    handle.write(chunk)
            used = int(target.host("df -B1 --output=used /srv/prep/incoming | tail -n 1"))
            assert used > (UPLOAD_AREA_MIB - 1) << 20
            after = [int(n) for n in target.host(free).split()]
            assert all(b - a < 8 << 20 for b, a in zip(before, after, strict=True)), (before, after)
            result = target.push(target.cut(target.next_index), budget=15.0)
            assert (result.outcome, result.error_class) == ("failed", "disk-full"), result
            assert "bytes free in incoming/" in result.error
            assert target.served_cut() == live
        finally:
            sftp.remove("/incoming/filler")
    assert target.push(target.cut(target.next_index)).ok


@pytest.mark.parametrize(
    ("program", "dests", "message"),
    [
        ("modsecurity", ["/etc/nginx/prep-modsecurity.conf"], "Failed to locate the unicode map"),
        ("crs", ["/etc/nginx/prep-modsecurity.conf"], "no-such/*.conf: Not able to open"),
        (
            "fail2ban",
            ["/etc/fail2ban/jail.local", "/etc/fail2ban/action.d/prep-nftables.conf"],
            "Unable to read action 'no-such-action'",
        ),
    ],
)
def test_a_config_its_program_rejects_never_replaces_the_running_one(
    target: Target, program: str, dests: list[str], message: str
) -> None:
    deployed = target.deployed
    live = target.live()
    on_disk = target.host(f"sha256sum {' '.join(dests)}")
    # A reload or restart would give nginx new workers and fail2ban a new server.
    processes = "pgrep -d, nginx; pgrep -d, -f fail2ban-server"
    running = target.host(processes)
    run = deployed.deploy(
        check=False, deploy_file="tests/fixtures/deploys/broken_config.py", data={"broken": program}
    )
    assert run.returncode != 0
    assert message in run.output, run.output[-3000:]
    assert target.host(f"sha256sum {' '.join(dests)}") == on_disk
    assert target.host(processes) == running
    assert target.host("fail2ban-client ping").strip() == "Server replied: pong"
    status, headers, _ = deployed.http("/corte.json")
    assert (status, headers.get("x-prep-corte")) == (200, live)
