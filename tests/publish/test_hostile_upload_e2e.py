"""The deployed difusor host against a hostile upload area: what a stolen IEC SSH key
(without the signing key) can try, on one testbed host the module deploys once.

The host is ``hosts[0]``, which the other suites deploy too: here it is
re-deployed with four signing keys (the current and the next of a rotation, an
expired and a not-yet-valid one), and at the end its publication tree is reset
to what a fresh deploy leaves, so the suites after this one start clean.

The attack suite (``test_attack_*``, one test per attack, listed in the
README's table) uploads what an attacker would over the IEC's own SFTP
account. Each asserts the reason the host logged, that no release was added
and that the previous cut is still the one recorded and served. Attacks that
sftp-server refuses to carry out (symlinks, hard links, FIFOs) are staged by
root inside the host, to show the activator refuses them too.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paramiko
import pytest

from prep_iac.cuts import generate_night
from prep_iac.deploy.publication import START_TIMEOUT
from prep_iac.models.difusor import Difusor
from prep_iac.orchestrate.suspension import build_suspension, upload_suspension
from prep_iac.presets import load_election
from prep_iac.publish.freshness import sign_statement
from prep_iac.publish.prepare import PreparedCut, prepare_cut
from prep_iac.publish.push import (
    KICK_SECONDS,
    Credentials,
    NodeResult,
    connect,
    push_node,
    read_json,
    upload_signed,
)
from prep_iac.publish.signing import generate_signing_key, sign_bytes
from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import Deployed, difusor_on
from prep_iac.wire import (
    BUNDLE_NAME,
    CUT_NAMESPACE,
    MANIFEST_NAME,
    PART_SUFFIX,
    PATCH_NAME,
    SIGNATURE_SUFFIX,
    Statement,
    apply_patch,
    canonical_json,
    statement_name,
)

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
    assert timeout == f"{START_TIMEOUT // 60}min", "a hung run must be killed, freeing the lock"


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


# -- the attack suite ------------------------------------------------------------------

INCOMING = "/srv/prep/incoming"
VERDICT_SECONDS = 30.0


@dataclass
class Crafted:
    """An upload as an attacker with the SSH key makes it: a cut id and its files."""

    cut_id: str
    files: dict[str, bytes]


def crafted(
    target: Target,
    cut: PreparedCut,
    bundle: bytes | None = None,
    patch: dict[str, object] | None = None,
    signature: bytes | None = None,
) -> Crafted:
    """What the push would send for ``cut`` against the host's live manifest, with
    any of its three files replaced."""
    remote = target.host("cat /srv/prep/status/manifest.json 2>/dev/null").encode() or None
    payload = cut.upload_for(remote)
    files = {
        BUNDLE_NAME: payload.bundle if bundle is None else bundle,
        PATCH_NAME: payload.patch if patch is None else gzip.compress(canonical_json(patch)),
        MANIFEST_NAME + SIGNATURE_SUFFIX: cut.signature if signature is None else signature,
    }
    return Crafted(cut.manifest.cut_id, files)


def the_patch(target: Target, cut: PreparedCut) -> dict[str, object]:
    remote = target.host("cat /srv/prep/status/manifest.json 2>/dev/null").encode() or None
    return dict(json.loads(gzip.decompress(cut.upload_for(remote).patch)))


def host_status(target: Target) -> dict[str, object]:
    return dict(json.loads(target.host("cat /srv/prep/status/status.json")))


def verdict(target: Target, after: int, kick: str) -> dict[str, object]:
    """The host's status once it recorded an outcome after sequence ``after``, in
    status.json and then (a moment later) in the activation log.

    Like the push, it touches the upload ``kick`` every couple of seconds while it
    waits: a path event arriving while an activation runs is not queued.
    """
    deadline = time.monotonic() + VERDICT_SECONDS
    kicked = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() - kicked >= KICK_SECONDS:
            kicked = time.monotonic()
            target.host(f"chmod g+r {kick} 2>/dev/null || true")
        status = host_status(target)
        last = status.get("last_result")
        if int(str(status.get("sequence", 0))) > after and isinstance(last, dict):
            logged = json.loads(target.host("tail -n 1 /var/log/prep-iac/activate.log"))
            if all(logged.get(k) == v for k, v in last.items() if k not in ("at", "sequence")):
                return status
        time.sleep(0.2)
    raise AssertionError(f"no verdict within {VERDICT_SECONDS:.0f} s: {host_status(target)}")


def send(
    target: Target, upload: Crafted, staged_as_root: Callable[[str], None] | None = None
) -> dict[str, object]:
    """Upload ``upload`` over SFTP into ``<cut>.part/`` (``staged_as_root`` may then
    change it inside the host), rename it complete and wait for the host's verdict."""
    before = int(str(host_status(target).get("sequence", 0)))
    part = f"/incoming/{upload.cut_id}{PART_SUFFIX}"
    with target.deployed.sftp_client() as client, client.open_sftp() as sftp:
        sftp.mkdir(part)
        for name, data in upload.files.items():
            sftp.putfo(io.BytesIO(data), f"{part}/{name}", confirm=False)
        if staged_as_root is not None:
            staged_as_root(f"{INCOMING}/{upload.cut_id}{PART_SUFFIX}")
        sftp.rename(part, f"/incoming/{upload.cut_id}")
    return verdict(target, before, f"{INCOMING}/{upload.cut_id}")


@dataclass(frozen=True)
class Before:
    """What a refused attack must leave as it was: the live cut and the releases."""

    live: str
    releases: str


def before_attack(target: Target) -> Before:
    return Before(target.live(), target.host("ls /srv/prep/releases"))


def assert_refused(
    target: Target, before: Before, status: dict[str, object], reason: str, says: str = ""
) -> None:
    """Refused with ``reason`` (status and log), nothing activated, the cut still served."""
    last = status["last_result"]
    assert isinstance(last, dict)
    assert (last["outcome"], last["reason"]) == ("rejected", reason), last
    assert says in str(last["detail"]), last
    logged = json.loads(target.host("tail -n 1 /var/log/prep-iac/activate.log"))
    assert (logged["outcome"], logged["reason"]) == ("rejected", reason)
    assert status["cut_id"] == before.live
    assert target.host("ls /srv/prep/releases") == before.releases
    assert target.served_cut() == before.live
    assert target.host(f"ls -A {INCOMING}") == ""


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def member(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x"
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = "/etc/shadow" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
    info.devmajor, info.devminor = (1, 3) if kind == tarfile.CHRTYPE else (0, 0)
    return info, data


def test_attack_rollback_to_an_older_cut_is_refused(target: Target) -> None:
    target.live()
    if target.next_index < 2:  # run alone: a cut older than the live one must exist
        assert target.push(target.cut(target.next_index)).ok
    before = before_attack(target)
    older = target.cut(0)
    assert older.manifest.cut_id < before.live
    assert_refused(target, before, send(target, crafted(target, older)), "replay")


def test_attack_replay_of_the_live_cut_activates_nothing(target: Target) -> None:
    before = before_attack(target)
    activated = host_status(target)["activated_at"]
    status = send(target, crafted(target, target.pushed[-1]))
    last = status["last_result"]
    assert isinstance(last, dict) and last["outcome"] == "already-active"
    assert status["activated_at"] == activated
    assert target.host("ls /srv/prep/releases") == before.releases
    assert target.served_cut() == before.live


def test_attack_freeze_with_a_replayed_statement_is_refused(target: Target) -> None:
    before = before_attack(target)
    live = target.pushed[-1]
    now = datetime.now(UTC)
    statement = Statement(
        ELECTION.id, target.difusor.id, live.manifest.cut_id, live.manifest.cut_time,
        now, now + timedelta(hours=1),
    )  # fmt: skip
    signed = sign_statement(statement, target.keys["current"])
    statuses = []
    for _ in range(2):  # the second upload is the attacker's replay of the first
        after = int(str(host_status(target).get("sequence", 0)))
        with target.deployed.sftp_client() as client, client.open_sftp() as sftp:
            upload_signed(sftp, "/incoming", statement_name(now), signed.document, signed.signature)
        statuses.append(verdict(target, after, f"{INCOMING}/{statement_name(now)}"))
    first = statuses[0]["last_result"]
    assert isinstance(first, dict) and first["outcome"] == "fresh"
    assert_refused(target, before, statuses[1], "replay", "is not newer than the one held")


def test_attack_mix_and_match_of_one_cuts_manifest_and_anothers_files_is_refused(
    target: Target,
) -> None:
    before = before_attack(target)
    signed, other = target.cut(target.next_index), target.cut(target.next_index + 1)
    upload = crafted(target, signed, bundle=crafted(target, other).files[BUNDLE_NAME])
    status = send(target, upload)
    # The other cut's download zip is named by its cut: the first member the manifest lacks.
    assert_refused(target, before, status, "extra-member", "is not a file of the manifest")


def test_attack_endless_data_bundle_larger_than_the_manifest_allows_is_refused(
    target: Target,
) -> None:
    before = before_attack(target)
    cut = target.cut(target.next_index)
    allowed = sum(f.size for f in cut.manifest.files)
    endless = crafted(target, cut).files[BUNDLE_NAME] + b"\0" * (2 * allowed)
    status = send(target, crafted(target, cut, bundle=endless))
    assert_refused(target, before, status, "oversize", f"{BUNDLE_NAME} has")


def test_attack_endless_data_gzip_bomb_is_refused(target: Target) -> None:
    before = before_attack(target)
    cut = target.cut(target.next_index)
    # A GNU long-name record of 512 MiB: a few hundred kB gzipped, read by tarfile in full.
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = tarfile.GNUTYPE_LONGNAME, 512 << 20
    bomb = io.BytesIO()
    with gzip.GzipFile(fileobj=bomb, mode="wb", compresslevel=9) as packed:
        packed.write(header.tobuf(format=tarfile.GNU_FORMAT))
        for _ in range(512):
            packed.write(b"\0" * (1 << 20))
    status = send(target, crafted(target, cut, bundle=bomb.getvalue()))
    assert_refused(target, before, status, "oversize", "unpacks to more than the manifest allows")


@pytest.mark.parametrize(
    ("attack", "entry", "reason"),
    [
        ("absolute-path", member("/etc/cron.d/prep"), "unsafe-path"),
        ("dot-dot", member("../../etc/cron.d/prep"), "unsafe-path"),
        ("symlink-member", member("index.html", tarfile.SYMTYPE), "bad-member"),
        ("hard-link-member", member("index.html", tarfile.LNKTYPE), "bad-member"),
        ("device-member", member("index.html", tarfile.CHRTYPE), "bad-member"),
    ],
)
def test_attack_arbitrary_file_from_a_bundle_member_is_refused(
    target: Target, attack: str, entry: tuple[tarfile.TarInfo, bytes], reason: str
) -> None:
    before = before_attack(target)
    upload = crafted(target, target.cut(target.next_index), bundle=tar_of(entry))
    assert_refused(target, before, send(target, upload), reason)


@pytest.mark.parametrize(
    ("attack", "stage", "says"),
    [
        ("symlinked-patch", f"rm {{part}}/{PATCH_NAME} && ln -s /etc/shadow {{part}}/{PATCH_NAME}",
         "cannot be opened as a file"),
        ("fifo-bundle", f"rm {{part}}/{BUNDLE_NAME} && mkfifo {{part}}/{BUNDLE_NAME}"
         f" && chown iec:iec {{part}}/{BUNDLE_NAME}", "is not a regular file"),
        ("fifo-signature", f"rm {{part}}/{MANIFEST_NAME}.sig && mkfifo {{part}}/{MANIFEST_NAME}.sig"
         f" && chown iec:iec {{part}}/{MANIFEST_NAME}.sig", "is not a regular file"),
        ("hard-link", f"touch {INCOMING}/other && chown iec:iec {INCOMING}/other"
         f" && rm {{part}}/{BUNDLE_NAME} && ln {INCOMING}/other {{part}}/{BUNDLE_NAME}",
         "has 2 names"),
        ("root-owned-file", f"chown root:root {{part}}/{BUNDLE_NAME}", "belongs to uid 0"),
    ],
)  # fmt: skip
def test_attack_an_upload_that_is_not_the_accounts_plain_file_is_refused_without_blocking(
    target: Target, attack: str, stage: str, says: str
) -> None:
    """sftp-server refuses links and cannot make FIFOs; root stages them to show the
    activator refuses them too, and never blocks (a FIFO read blocking would hold its
    lock: the verdict would never come)."""
    before = before_attack(target)

    def staged_as_root(part: str) -> None:
        target.host(stage.format(part=part))

    status = send(target, crafted(target, target.cut(target.next_index)), staged_as_root)
    target.host(f"rm -f {INCOMING}/other")
    assert_refused(target, before, status, "bad-upload", says)


def test_attack_wrong_election_is_refused(target: Target) -> None:
    before = before_attack(target)
    cut = target.cut(target.next_index)
    patch = the_patch(target, cut)
    header = patch["header"]
    assert isinstance(header, dict)
    header["election"] = "coahuila-2017"
    base = target.host("cat /srv/prep/status/manifest.json").encode()
    manifest = apply_patch(json.loads(base) if patch["base"] else None, patch)
    signature = sign_bytes(target.keys["current"], canonical_json(manifest), CUT_NAMESPACE)
    status = send(target, crafted(target, cut, patch=patch, signature=signature))
    assert_refused(target, before, status, "bad-manifest", "election 'coahuila-2017'")


def test_attack_suspension_for_another_difusor_is_refused(target: Target) -> None:
    before = before_attack(target)
    after = int(str(host_status(target).get("sequence", 0)))
    instruction = build_suspension(
        ELECTION.id, "otro-difusor", "prueba", datetime.now(UTC), target.keys["current"],
        target.work / "instructions",
    )  # fmt: skip
    with target.deployed.sftp_client() as client, client.open_sftp() as sftp:
        upload_suspension(sftp, target.difusor, instruction)
    status = verdict(target, after, f"{INCOMING}/{instruction.name}")
    assert_refused(target, before, status, "wrong-difusor", "'otro-difusor'")


def test_attack_unsigned_upload_is_refused(target: Target) -> None:
    before = before_attack(target)
    upload = crafted(target, target.cut(target.next_index))
    del upload.files[MANIFEST_NAME + SIGNATURE_SUFFIX]
    assert_refused(target, before, send(target, upload), "unsigned")


def test_attack_manifest_signed_with_a_foreign_key_is_refused(target: Target) -> None:
    """The thief's own key: the stolen SSH key itself can make SSH signatures."""
    before = before_attack(target)
    cut = target.cut(target.next_index)
    forged = sign_bytes(target.deployed.iec_key, cut.manifest_bytes, CUT_NAMESPACE)
    status = send(target, crafted(target, cut, signature=forged))
    assert_refused(target, before, status, "bad-signature")


def test_attack_disk_full_under_the_releases_is_a_recorded_rejection(
    target: Target, testbed: Testbed
) -> None:
    """The push would refuse to start (it checks free space); an upload that does not
    ask first makes the host run out of room while it assembles."""
    before = before_attack(target)
    name = target.deployed.host.name
    cut = target.cut(target.next_index)
    # A full upload: every file is written into the new release.
    full = Crafted(
        cut.manifest.cut_id,
        {
            BUNDLE_NAME: cut.upload_for(None).bundle,
            PATCH_NAME: cut.upload_for(None).patch,
            MANIFEST_NAME + SIGNATURE_SUFFIX: cut.signature,
        },
    )
    testbed.fill_disk(name, leave_bytes=1 << 20)
    try:
        status = send(target, full)
    finally:
        testbed.clear_disk(name)
    assert_refused(target, before, status, "disk-full", "No space left on device")


def test_attack_interrupted_upload_is_left_alone_and_cleared_by_the_next_push(
    target: Target,
) -> None:
    before = before_attack(target)
    upload = crafted(target, target.cut(target.next_index))
    part = f"/incoming/{upload.cut_id}{PART_SUFFIX}"
    with target.deployed.sftp_client() as client, client.open_sftp() as sftp:
        sftp.mkdir(part)
        sftp.putfo(io.BytesIO(upload.files[BUNDLE_NAME][:4096]), f"{part}/{BUNDLE_NAME}")
    target.host("systemctl start prep-activate.service")  # a run finishes before this returns
    assert host_status(target)["cut_id"] == before.live
    assert target.served_cut() == before.live
    assert target.host("ls /srv/prep/releases") == before.releases
    assert target.push(target.cut(target.next_index)).ok
    assert target.host(f"ls -A {INCOMING}") == ""


def activations_of(target: Target, cut_id: str) -> int:
    """Lines of the activation log recording ``cut_id`` activated (the log outlives resets)."""
    lines = target.host("cat /var/log/prep-iac/activate.log").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return sum(1 for r in records if (r.get("outcome"), r.get("cut_id")) == ("activated", cut_id))


def test_attack_two_uploads_racing_activate_the_cut_once(target: Target) -> None:
    cut = target.cut(target.next_index)
    before = activations_of(target, cut.manifest.cut_id)
    results: list[NodeResult] = []

    def push() -> None:
        results.append(
            push_node(cut, target.difusor, target.difusor.nodes[0], target.credentials, BUDGET)
        )

    racers = [threading.Thread(target=push) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert all(r.ok for r in results), results
    target.pushed.append(cut)
    assert activations_of(target, cut.manifest.cut_id) == before + 1
    assert target.served_cut() == cut.manifest.cut_id
