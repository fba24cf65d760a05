"""Publication end to end: cuts pushed with the real push to a host the real deploy provisioned.

One testbed host is deployed once for the module (with a signing key for the
IEC, separate from its SSH key) and receives a synthetic night, cut after cut,
in file order: each test pushes the next cut, so the host always holds a newer
live cut that the rejection and fault tests must leave in place.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import posixpath
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prep_iac.cuts import copy_cut, generate_night
from prep_iac.models.difusor import Difusor, HostKey
from prep_iac.orchestrate.suspension import build_suspension, upload_suspension
from prep_iac.presets import load_election
from prep_iac.publish import consistency
from prep_iac.publish.freshness import SignedStatement, sign_statement
from prep_iac.publish.prepare import PreparedCut, bundle, prepare_cut
from prep_iac.publish.push import (
    KNOWN_MANIFESTS,
    Credentials,
    NodeResult,
    PushFailure,
    connect,
    push_many,
    push_node,
    read_bytes,
    read_json,
    read_status,
    upload,
    upload_signed,
    wait_for_activation,
)
from prep_iac.publish.signing import generate_signing_key, sign_file
from prep_iac.testbed import Testbed
from prep_iac.testbed.difusor import Deployed, difusor_on
from prep_iac.wire import PART_SUFFIX, Statement, sequence

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parents[2]
ELECTION = load_election("coahuila-2018")
BUDGET = 60.0
CUTS = 12


@dataclass
class Night:
    """The module's host, its cuts and the next one to push."""

    deployed: Deployed
    difusor: Difusor
    credentials: Credentials
    signing_key: Path
    work: Path
    sources: list[Path]
    pushed: list[PreparedCut] = field(default_factory=list)
    prepared: dict[int, PreparedCut] = field(default_factory=dict)

    def cut(self, index: int) -> PreparedCut:
        if index not in self.prepared:
            self.prepared[index] = prepare_cut(
                self.sources[index], ELECTION, self.signing_key, self.work / "prepared"
            )
        return self.prepared[index]

    @property
    def next_index(self) -> int:
        return len(self.pushed)

    def push_next(
        self, budget: float = BUDGET, credentials: Credentials | None = None
    ) -> NodeResult:
        cut = self.cut(self.next_index)
        result = push_node(
            cut, self.difusor, self.difusor.nodes[0], credentials or self.credentials, budget
        )
        if result.ok:
            self.pushed.append(cut)
        return result

    @property
    def live(self) -> str:
        return self.pushed[-1].manifest.cut_id

    def served_cut(self) -> str:
        return self.deployed.served_cut()

    def host(self, command: str) -> str:
        return self.deployed.root(command).stdout


@pytest.fixture(scope="module")
def night(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    work = tmp_path_factory.mktemp("publication")
    infos = generate_night(ELECTION, work / "cuts", cuts=CUTS, seed=11)
    signing_key = generate_signing_key(work / "iec_signing")
    # The host tests/deploy already deployed: a re-deploy adding the signing key is quick.
    host = testbed.hosts[0]
    with difusor_on(testbed, host, work, ROOT) as deployed:
        deployed.write_inventory(
            iec_signing_keys=[signing_key.with_suffix(".pub").read_text().strip()]
        )
        deployed.deploy()
        difusor = next(d for d in testbed.registry().difusores if d.id == host.name)
        credentials = Credentials(deployed.iec_key, source_address=deployed.iec_source)
        yield Night(deployed, difusor, credentials, signing_key, work, [i.path for i in infos])


def test_first_push_sends_the_whole_cut_and_is_confirmed_live(night: Night) -> None:
    result = night.push_next()
    cut = night.pushed[-1]
    assert result.ok, result
    assert result.files_sent == len(cut.manifest.files)
    # One gzipped bundle: the synthetic cut's JSON, SVG and JS shrink several-fold.
    assert cut.manifest.total_bytes / 4 < result.bytes_sent < cut.manifest.total_bytes * 0.8
    status = read_status(night.difusor, night.difusor.nodes[0], night.credentials)
    assert status is not None and status["cut_id"] == cut.manifest.cut_id
    assert status["state"] == "live"
    assert night.served_cut() == cut.manifest.cut_id


def test_next_push_sends_only_changed_files_and_links_the_rest(night: Night) -> None:
    before = night.pushed[-1]
    KNOWN_MANIFESTS.clear()  # the base comes from the host's status/manifest.json
    result = night.push_next()
    after = night.pushed[-1]
    assert result.ok, result
    old, new = before.manifest.by_path(), after.manifest.by_path()
    changed = [p for p, f in new.items() if old.get(p) != f]
    assert result.files_sent == len(changed)
    assert result.bytes_sent < after.manifest.total_bytes / 10
    same = next(p for p, f in new.items() if old.get(p) == f)
    inodes = night.host(
        f"stat -c %i /srv/prep/releases/{before.manifest.cut_id}/{same}"
        f" /srv/prep/releases/{after.manifest.cut_id}/{same}"
    ).split()
    assert inodes[0] == inodes[1], "an unchanged file is one inode in both releases"


def _changed_path(night: Night, cut: PreparedCut) -> str:
    old = night.pushed[-1].manifest.by_path()
    return next(
        f.path for f in cut.manifest.files if old.get(f.path) != f and f.path.endswith(".json")
    )


def _tampered(night: Night, cut: PreparedCut, name: str, how: str) -> PreparedCut:
    """A copy of ``cut`` damaged as an attacker (or a broken link) would."""
    directory = copy_cut(cut.directory, night.work / "attacks" / name / cut.manifest.cut_id)
    target = directory / _changed_path(night, cut)
    data = target.read_bytes()
    if how == "content":
        target.write_bytes(data[:-2] + (b"0}" if data[-2:] != b"0}" else b"1}"))
    elif how == "size":
        target.write_bytes(data + b" ")
    return replace(cut, directory=directory)


def _foreign_signature(night: Night, cut: PreparedCut) -> PreparedCut:
    """The right manifest signed by a key the host does not trust (a stolen SSH key
    lets its thief upload, and ssh-keygen -Y sign works with an SSH key too)."""
    folder = night.work / "attacks" / "foreign"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.json"
    manifest.write_bytes(cut.manifest_bytes)
    signature = sign_file(night.deployed.iec_key, manifest).read_bytes()
    return replace(cut, signature=signature)


def raw_upload(night: Night, cut: PreparedCut, leave_out: str | None = None) -> dict[str, object]:
    """Upload what the push would (but the file ``leave_out``) and wait for the host's verdict."""
    node = night.difusor.nodes[0]
    with connect(node, night.difusor.sftp_user, night.credentials) as conn:
        sftp = conn.sftp()
        staging = f"/incoming/{cut.manifest.cut_id}{PART_SUFFIX}"
        before = sequence(read_json(sftp, "/status/status.json"))
        payload = cut.upload_for(read_bytes(sftp, "/status/manifest.json"))
        if leave_out is not None:
            paths = tuple(p for p in payload.paths if p != leave_out)
            payload = replace(payload, bundle=bundle(cut.directory, paths)[1], paths=paths)
        upload(sftp, payload, cut.signature, staging)
        complete = f"/incoming/{cut.manifest.cut_id}"
        sftp.rename(staging, complete)
        with contextlib.suppress(PushFailure):  # a rejection is what most callers expect
            wait_for_activation(
                sftp, "/status/status.json", cut.manifest.cut_id, time.monotonic() + 30,
                complete, before,
            )  # fmt: skip
        with sftp.open("/status/status.json") as handle:
            return dict(json.loads(handle.read()))


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("tampered-file", "hash-mismatch"),
        ("wrong-size", "size-mismatch"),
        ("missing-file", "missing-file"),
        ("foreign-signature", "bad-signature"),
        ("replayed-older-cut", "replay"),
    ],
)
def test_a_bad_upload_is_rejected_with_its_reason_and_the_live_cut_stays(
    night: Night, attack: str, reason: str
) -> None:
    live = night.live
    cut = night.cut(night.next_index)
    if attack == "tampered-file":
        status = raw_upload(night, _tampered(night, cut, attack, "content"))
    elif attack == "wrong-size":
        status = raw_upload(night, _tampered(night, cut, attack, "size"))
    elif attack == "missing-file":
        status = raw_upload(night, cut, leave_out=_changed_path(night, cut))
    elif attack == "foreign-signature":
        status = raw_upload(night, _foreign_signature(night, cut))
    else:
        status = raw_upload(night, night.pushed[0])
    last = status["last_result"]
    assert isinstance(last, dict)
    assert (last["outcome"], last["reason"]) == ("rejected", reason)
    assert status["cut_id"] == live
    assert night.served_cut() == live
    logged = night.host("tail -n 1 /var/log/prep-iac/activate.log")
    assert f'"reason": "{reason}"' in logged


def test_a_push_signed_by_another_key_fails_without_retrying(night: Night) -> None:
    cut = _foreign_signature(night, night.cut(night.next_index))
    result = push_node(cut, night.difusor, night.difusor.nodes[0], night.credentials, BUDGET)
    assert not result.ok
    assert result.error_class == "rejected:bad-signature"
    assert result.attempts == 1
    assert night.served_cut() == night.live


def test_a_changed_host_key_fails_the_push_before_any_upload(
    night: Night, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="paramiko")
    other = night.work / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    node = night.difusor.nodes[0]
    forged = node.model_copy(
        update={"host_key": HostKey.parse(other.with_suffix(".pub").read_text())}
    )
    difusor = night.difusor.model_copy(update={"nodes": [forged]})
    result = push_node(night.cut(night.next_index), difusor, forged, night.credentials, BUDGET)
    assert (result.outcome, result.error_class, result.bytes_sent) == (
        "failed",
        "host-key-changed",
        0,
    )
    assert "pinned" in result.error
    assert result.attempts == 1
    time.sleep(0.5)  # paramiko's transport thread would log after the push returned
    noise = [r.getMessage() for r in caplog.records if "Socket exception" in r.getMessage()]
    assert noise == [], "the socket was closed under paramiko's transport thread"


def _link_down_once_uploading(testbed: Testbed, name: str, cut_id: str) -> None:
    """Take the link down as soon as the upload's staging directory exists (seen
    from inside the host, not over the link)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        probe = testbed.exec(
            name, "test", "-d", f"/srv/prep/incoming/{cut_id}{PART_SUFFIX}", check=False
        )
        if probe.returncode == 0:
            time.sleep(0.3)
            break
        time.sleep(0.1)
    testbed.link_down(name)


def test_a_link_lost_mid_push_is_retried_then_fails_in_budget_and_leftovers_go_next_push(
    night: Night, testbed: Testbed
) -> None:
    name = night.deployed.host.name
    live = night.live
    quick = replace(night.credentials, connect_timeout=2.0, stall_timeout=2.0)
    cut_id = night.cut(night.next_index).manifest.cut_id
    testbed.shape(name, 0.2)  # the delta bundle (~70 kB) takes ~3 s: the cut falls inside it
    cutter = threading.Thread(target=_link_down_once_uploading, args=(testbed, name, cut_id))
    try:
        cutter.start()
        result = night.push_next(budget=15.0, credentials=quick)
    finally:
        cutter.join()
        testbed.link_up(name)
        testbed.unshape(name)
    assert not result.ok, result
    assert result.attempts >= 2
    assert result.duration_s <= 17.0
    assert night.served_cut() == live
    assert f"{cut_id}{PART_SUFFIX}" in night.host("ls /srv/prep/incoming")
    result = night.push_next()
    assert result.ok, result
    assert night.host("ls /srv/prep/incoming").strip() == ""


def test_a_full_disk_fails_clearly_and_the_next_push_after_clearing_succeeds(
    night: Night, testbed: Testbed
) -> None:
    name = night.deployed.host.name
    live = night.live
    testbed.fill_disk(name, leave_bytes=1 << 20)
    try:
        result = night.push_next(budget=15.0)
    finally:
        testbed.clear_disk(name)
    assert (result.outcome, result.error_class) == ("failed", "disk-full")
    assert "bytes free" in result.error
    assert night.served_cut() == live
    assert night.push_next().ok


def test_visitors_never_get_a_partial_file_or_a_file_of_another_cut_during_pushes(
    night: Night,
) -> None:
    """Two clients (own source address each, under nginx's per-source rate) load pages
    while three cuts are pushed. Every response must be its cut's exact file; a page
    load may name two cuts only if a switch fell between its requests, so at most one
    per client per switch."""
    manifests = {
        c.manifest.cut_id: {f.path: f.sha256 for f in c.manifest.files} for c in night.pushed
    }
    pages = ["/corte.json", "/index.html"]
    jsons = [
        f.path
        for f in night.cut(night.next_index).manifest.files
        if f.path.startswith("assets/JSON/")
    ]
    pages += ["/" + p for p in jsons[:: max(1, len(jsons) // 3)][:3]]
    stop = threading.Event()
    loads: list[list[consistency.Response]] = []

    def client(source: str) -> None:
        conn = http.client.HTTPConnection(
            night.deployed.address, 80, timeout=10, source_address=(source, 0)
        )
        while not stop.is_set():
            load = []
            for path in pages:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                length = response.getheader("Content-Length")
                load.append(
                    consistency.Response(
                        path,
                        response.status,
                        response.getheader("X-PREP-Corte", ""),
                        int(length) if length else None,
                        body,
                    )
                )
            loads.append(load)
            time.sleep(0.3)
        conn.close()

    clients = [
        threading.Thread(target=client, args=(source,))
        for source in (night.deployed.admin_source, night.deployed.iec_source)
    ]
    for thread in clients:
        thread.start()
    try:
        for _ in range(3):
            result = night.push_next()
            assert result.ok, result
            manifests[night.live] = {f.path: f.sha256 for f in night.pushed[-1].manifest.files}
            time.sleep(1.0)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    found = [consistency.problems(load, manifests) for load in loads]
    mixed = [p for p in found if p and all(x.startswith("mixed") for x in p)]
    broken = [p for p in found if p and not all(x.startswith("mixed") for x in p)]
    assert len(loads) > 30
    assert broken == []
    assert len(mixed) <= 2 * 3
    assert len({load[0].corte for load in loads}) >= 3, "the load saw the switches"


def test_push_many_confirms_every_difusor(night: Night) -> None:
    results = push_many(night.cut(night.next_index), [night.difusor], night.credentials, BUDGET)
    assert [r.ok for r in results] == [True]
    night.pushed.append(night.cut(night.next_index))
    assert night.served_cut() == night.live


def _wait_served(night: Night, wanted: str, seconds: float = 20) -> str:
    deadline = time.monotonic() + seconds
    while (served := night.served_cut()) != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
    return served


@pytest.mark.parametrize("signer", ["iec", "stolen-ssh-key"])
def test_a_signed_suspension_shows_the_notice_and_a_fresh_cut_brings_results_back(
    night: Night, signer: str
) -> None:
    key = night.signing_key if signer == "iec" else night.deployed.iec_key
    instruction = build_suspension(
        ELECTION.id, night.difusor.id, "Prueba de suspensión", datetime.now(UTC), key,
        night.work / signer,
    )  # fmt: skip
    with connect(night.difusor.nodes[0], night.difusor.sftp_user, night.credentials) as conn:
        upload_suspension(conn.sftp(), night.difusor, instruction)
    if signer == "iec":
        assert _wait_served(night, "") == ""
        _, _, body = night.deployed.http("/")
        assert "suspendid" in body.decode().lower()
        assert night.push_next().ok
        assert night.served_cut() == night.live
    else:
        time.sleep(2)
        assert night.served_cut() == night.live
        logged = night.host("tail -n 1 /var/log/prep-iac/activate.log")
        assert '"reason": "bad-signature"' in logged


def test_a_stale_host_shows_the_notice_by_itself_and_a_fresh_cut_brings_results_back(
    night: Night,
) -> None:
    night.deployed.write_inventory(
        iec_signing_keys=[night.signing_key.with_suffix(".pub").read_text().strip()],
        publication_max_age_seconds=5,
    )
    night.deployed.deploy()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and night.served_cut():
        time.sleep(1)
    _status, headers, body = night.deployed.http("/")
    assert headers.get("x-prep-corte", "") == ""
    assert "suspendid" in body.decode().lower()
    assert night.push_next().ok
    assert night.served_cut() == night.live


def _vouch(night: Night, valid_s: float | None, difusor: str | None = None) -> SignedStatement:
    cut = night.pushed[-1].manifest
    now = datetime.now(UTC)
    expires = None if valid_s is None else now + timedelta(seconds=valid_s)
    statement = Statement(
        ELECTION.id, difusor or night.difusor.id, cut.cut_id, cut.cut_time, now, expires
    )
    return sign_statement(statement, night.signing_key)


def _push_statement(night: Night, statement: SignedStatement) -> NodeResult:
    return push_node(
        night.pushed[-1], night.difusor, night.difusor.nodes[0], night.credentials, BUDGET,
        statement=statement,
    )  # fmt: skip


def _served_throughout(night: Night, seconds: float) -> set[str]:
    """Every cut id a visitor got, sampled each second for ``seconds`` (bounded)."""
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(night.served_cut())
        time.sleep(1)
    return seen


def test_statements_keep_a_deployed_host_serving_past_its_age_limit_until_they_expire(
    night: Night,
) -> None:
    # The host above was left with a 5 s age limit and a 15 s watchdog: without a
    # statement its live cut would show the notice within 20 s of its activation.
    result = _push_statement(night, _vouch(night, valid_s=45))
    assert result.ok, result
    assert 0 < result.bytes_sent < 1024 and result.files_sent == 0
    assert _served_throughout(night, 25) == {night.live}
    # The IEC stops vouching (it cannot reach the host): the notice, by the host itself.
    assert _wait_served(night, "", seconds=60) == ""
    _, _, body = night.deployed.http("/")
    assert "suspendid" in body.decode().lower()
    status = read_status(night.difusor, night.difusor.nodes[0], night.credentials)
    assert status is not None and status["state"] == "stale"
    assert status["last_result"]["outcome"] == "stale"
    # The next statement brings the results back, without resending the cut.
    result = _push_statement(night, _vouch(night, valid_s=45))
    assert result.ok and result.files_sent == 0
    assert night.served_cut() == night.live


def test_a_final_statement_keeps_a_deployed_host_serving_for_good(night: Night) -> None:
    assert _push_statement(night, _vouch(night, valid_s=None)).ok
    assert _served_throughout(night, 25) == {night.live}
    status = read_status(night.difusor, night.difusor.nodes[0], night.credentials)
    assert status is not None and status["freshness"]["final"] is True


@pytest.mark.parametrize(
    ("case", "reason"),
    [("other-difusor", "wrong-difusor"), ("other-election", "wrong-election"),
     ("stolen-ssh-key", "bad-signature"), ("replayed", "replay")],
)  # fmt: skip
def test_a_statement_the_deployed_host_must_not_take_is_refused_and_the_cut_stays(
    night: Night, case: str, reason: str
) -> None:  # fmt: skip
    if case == "other-difusor":
        statement = _vouch(night, valid_s=45, difusor="otro-difusor")
    elif case == "other-election":
        good = _vouch(night, valid_s=45)
        statement = sign_statement(replace(good.statement, election="coahuila-2017"),
                                   night.signing_key)  # fmt: skip
    elif case == "replayed":  # the newest one the host holds, sent again under a new name
        statement = _vouch(night, valid_s=45)
        assert _push_statement(night, statement).ok
        incoming = posixpath.join(night.difusor.publication_path, "incoming")
        with connect(night.difusor.nodes[0], night.difusor.sftp_user, night.credentials) as conn:
            upload_signed(conn.sftp(), incoming, "fresh-again.json", statement.document,
                          statement.signature)  # fmt: skip
        last = "tail -n 1 /var/log/prep-iac/activate.log"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and '"replay"' not in night.host(last):
            time.sleep(0.5)
        assert '"reason": "replay"' in night.host(last)
        assert night.served_cut() == night.live
        return
    else:  # signed with the IEC's SSH key, not its signing key
        good = _vouch(night, valid_s=45)
        statement = sign_statement(good.statement, night.deployed.iec_key)
    result = _push_statement(night, statement)
    assert result.error_class == f"rejected:{reason}", result
    assert night.served_cut() == night.live
    logged = night.host("tail -n 1 /var/log/prep-iac/activate.log")
    assert f'"reason": "{reason}"' in logged


def test_an_interrupted_statement_upload_leaves_nothing_that_breaks_the_next_push(
    night: Night,
) -> None:
    incoming = posixpath.join(night.difusor.publication_path, "incoming")
    with connect(night.difusor.nodes[0], night.difusor.sftp_user, night.credentials) as conn:
        sftp = conn.sftp()
        # Killed after the signature and half the JSON, as a lost link would leave it.
        sftp.putfo(io.BytesIO(b'{"format":'), f"{incoming}/.fresh-x.json{PART_SUFFIX}")
        result = _push_statement(night, _vouch(night, valid_s=None))
        assert result.ok, result
        assert [n for n in sftp.listdir(incoming) if n.endswith(PART_SUFFIX)] == []
