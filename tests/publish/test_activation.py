"""The host-side activation, run as the host runs it: system Python, no site-packages.

Each test uploads a cut the way the IEC does (the ``Upload`` the push would send
for the host's live manifest, into ``incoming/<cut>.part``, then a rename) and
runs ``activate.py process``; the outcome is read from the files a visitor and
the IEC would see: the ``live`` link, ``status.json`` and the log.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prep_iac.hostside import activate_script
from prep_iac.publish.manifest import build_manifest
from prep_iac.publish.prepare import PreparedCut, Upload
from prep_iac.publish.signing import allowed_signers_line, generate_signing_key, sign_file
from prep_iac.wire import (
    BUNDLE_NAME,
    INSTRUCTION_NAMESPACE,
    MANIFEST_NAME,
    PATCH_NAME,
    Suspension,
    apply_patch,
    canonical_json,
)

ELECTION = "coahuila-2018"
DIFUSOR = "uadec"
MTY = timedelta(hours=-5)


@dataclass
class Host:
    root: Path
    signers: Path
    key: Path
    log: Path

    def run(self, command: str = "process", difusor: str | None = DIFUSOR) -> list[dict[str, Any]]:
        # -I -S: isolated, no site-packages; proves the program needs only the stdlib.
        identity = [] if difusor is None else ["--difusor", difusor]
        result = subprocess.run(
            [
                "/usr/bin/python3", "-I", "-S", str(activate_script()), command,
                "--root", str(self.root), "--election", ELECTION, *identity,
                "--allowed-signers", str(self.signers), "--log", str(self.log),
                "--config", "/nonexistent",
            ],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert "Traceback" not in result.stderr, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    @property
    def status(self) -> dict[str, Any]:
        return dict(json.loads((self.root / "status" / "status.json").read_text()))

    def live_target(self) -> str:
        return str((self.root / "live").readlink())

    def serve(self, rel: str) -> bytes:
        return (self.root / "live" / rel).read_bytes()


@pytest.fixture
def host(tmp_path: Path) -> Host:
    root = tmp_path / "srv-prep"
    (root / "incoming").mkdir(parents=True)
    (root / "notice").mkdir()
    (root / "notice" / "index.html").write_text("<h1>Publicación suspendida</h1>")
    key = generate_signing_key(tmp_path / "keys" / "signing")
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_signers_line(key.with_suffix(".pub")))
    return Host(root, signers, key, tmp_path / "activate.log")


def make_cut(base: Path, cut_id: str, files: dict[str, str]) -> Path:
    cut = base / "cuts" / cut_id
    for rel, text in files.items():
        (cut / rel).parent.mkdir(parents=True, exist_ok=True)
        (cut / rel).write_text(text)
    return cut


def cut_time(cut_id: str) -> datetime:
    if cut_id.endswith("b"):  # the fall-back hour's second pass: an hour later than its id
        return cut_time(cut_id[:-1]) + timedelta(hours=1)
    return datetime.strptime(cut_id, "%Y%m%d_%H%M").replace(tzinfo=UTC) - MTY


def prepared(cut: Path, key: Path) -> PreparedCut:
    manifest = build_manifest(cut, ELECTION, cut.name, cut_time(cut.name))
    folder = cut.parent.parent / "signed" / f"{cut.name}-{key.name}"
    folder.mkdir(parents=True, exist_ok=True)
    return PreparedCut.load(cut, manifest.write(folder, signing_key=key))


def upload(
    host: Host,
    cut: Path,
    key: Path | None = None,
    tamper: Callable[[Path], None] | None = None,
    full: bool = False,
) -> Upload:
    """Upload what the push would send this host (a full upload if ``full``), then
    mark it complete; ``tamper`` may damage the staged upload first."""
    ready = prepared(cut, key or host.key)
    live = host.root / "status" / "manifest.json"
    payload = ready.upload_for(None if full or not live.is_file() else live.read_bytes())
    part = host.root / "incoming" / f"{cut.name}.part"
    part.mkdir()
    (part / BUNDLE_NAME).write_bytes(payload.bundle)
    (part / PATCH_NAME).write_bytes(payload.patch)
    (part / f"{MANIFEST_NAME}.sig").write_bytes(ready.signature)
    if tamper is not None:
        tamper(part)
    part.rename(host.root / "incoming" / cut.name)
    return payload


Member = tuple[tarfile.TarInfo, bytes]


def edit_bundle(part: Path, change: Callable[[list[Member]], list[Member]]) -> None:
    """Rewrite the staged bundle's members (as an attacker with the SSH key could)."""
    members = []
    with tarfile.open(part / BUNDLE_NAME) as archive:
        for info in archive.getmembers():
            handle = archive.extractfile(info)
            members.append((info, handle.read() if handle is not None else b""))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, content in change(members):
            info.size = len(content) if info.isreg() else 0
            archive.addfile(info, io.BytesIO(content) if info.isreg() else None)
    (part / BUNDLE_NAME).write_bytes(buffer.getvalue())


def edit_patch(part: Path, change: Callable[[dict[str, Any]], None]) -> None:
    patch = json.loads(gzip.decompress((part / PATCH_NAME).read_bytes()))
    change(patch)
    (part / PATCH_NAME).write_bytes(gzip.compress(canonical_json(patch)))


SITE = {
    "index.html": "<meta name=prep-corte content=X>",
    "assets/app.js": "app()",
    "data/r.json": "{}",
}


def test_first_cut_is_verified_and_becomes_live(host: Host, tmp_path: Path) -> None:
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    [result] = host.run()
    assert result["outcome"] == "activated"
    assert host.live_target() == "releases/20180701_2000"
    assert host.serve("assets/app.js") == b"app()"
    assert host.status["state"] == "live"
    assert host.status["cut_id"] == "20180701_2000"
    assert (host.root / "status" / "manifest.json").is_file()
    assert not any((host.root / "incoming").iterdir())


def test_delta_upload_reuses_unchanged_files_by_hard_link(host: Host, tmp_path: Path) -> None:
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    host.run()
    second = make_cut(tmp_path, "20180701_2010", {**SITE, "data/r.json": '{"actas": 12}'})
    payload = upload(host, second)
    assert payload.paths == ("data/r.json",)
    assert payload.base is not None
    [result] = host.run()
    assert result["outcome"] == "activated"
    assert host.serve("data/r.json") == b'{"actas": 12}'
    old, new = host.root / "releases" / "20180701_2000", host.root / "releases" / "20180701_2010"
    assert (old / "assets/app.js").stat().st_ino == (new / "assets/app.js").stat().st_ino
    assert (old / "data/r.json").stat().st_ino != (new / "data/r.json").stat().st_ino


def test_a_full_upload_to_a_host_with_a_release_writes_every_file_anew(
    host: Host, tmp_path: Path
) -> None:
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    host.run()
    payload = upload(host, make_cut(tmp_path, "20180701_2010", SITE), full=True)
    assert payload.base is None
    assert set(payload.paths) == set(SITE)
    [result] = host.run()
    assert result["outcome"] == "activated"
    old, new = host.root / "releases" / "20180701_2000", host.root / "releases" / "20180701_2010"
    assert (old / "index.html").stat().st_ino != (new / "index.html").stat().st_ino
    assert oct((new / "assets").stat().st_mode & 0o777) == "0o755"
    assert oct((new / "assets" / "app.js").stat().st_mode & 0o777) == "0o644"


def test_the_push_sends_a_patch_only_against_a_manifest_of_this_election(
    host: Host, tmp_path: Path
) -> None:
    first = prepared(make_cut(tmp_path, "20180701_2000", SITE), host.key)
    second = prepared(
        make_cut(tmp_path, "20180701_2010", {"index.html": "x", "assets/app.js": "app()"}),
        host.key,
    )
    delta = second.upload_for(first.manifest_bytes)
    assert delta.base == hashlib.sha256(first.manifest_bytes).hexdigest()
    patch = json.loads(gzip.decompress(delta.patch))
    assert (delta.paths, patch["removed"]) == (("index.html",), ["data/r.json"])
    rebuilt = apply_patch(json.loads(first.manifest_bytes), patch)
    assert canonical_json(rebuilt) == second.manifest_bytes
    other = json.loads(first.manifest_bytes) | {"election": "coahuila-2017"}
    for remote in (None, b"not json", canonical_json(other)):
        assert second.upload_for(remote).base is None
        assert set(second.upload_for(remote).paths) == {"index.html", "assets/app.js"}


def _live_after_rejection(host: Host, tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    host.run()
    bad = make_cut(tmp_path, "20180701_2010", {**SITE, "index.html": "new"})
    upload(host, bad, **kwargs)
    [result] = host.run()
    assert result["outcome"] == "rejected"
    assert host.live_target() == "releases/20180701_2000"
    assert host.serve("index.html") == SITE["index.html"].encode()
    assert host.status["cut_id"] == "20180701_2000"
    assert host.status["last_result"]["reason"] == result["reason"]
    assert not (host.root / "releases" / "20180701_2010").exists()
    logged = [json.loads(line) for line in host.log.read_text().splitlines()]
    assert logged[-1]["reason"] == result["reason"]
    return result


def test_tampered_file_is_rejected_and_previous_cut_stays_live(host: Host, tmp_path: Path) -> None:
    def tamper(part: Path) -> None:
        edit_bundle(part, lambda ms: [(i, b"wen" if i.name == "index.html" else d) for i, d in ms])

    result = _live_after_rejection(host, tmp_path, tamper=tamper)
    assert result["reason"] == "hash-mismatch"
    assert "index.html" in result["detail"]


def test_wrong_size_is_rejected(host: Host, tmp_path: Path) -> None:
    def grow(part: Path) -> None:
        edit_bundle(part, lambda ms: [(i, d + b" plus more") for i, d in ms])

    assert _live_after_rejection(host, tmp_path, tamper=grow)["reason"] == "size-mismatch"


def test_missing_file_is_rejected(host: Host, tmp_path: Path) -> None:
    def drop(part: Path) -> None:
        edit_bundle(part, lambda ms: [(i, d) for i, d in ms if i.name != "index.html"])

    result = _live_after_rejection(host, tmp_path, tamper=drop)
    assert result["reason"] == "missing-file"
    assert "index.html" in result["detail"]


def test_manifest_signed_by_another_key_is_rejected(host: Host, tmp_path: Path) -> None:
    stranger = generate_signing_key(tmp_path / "stranger" / "key")
    assert _live_after_rejection(host, tmp_path, key=stranger)["reason"] == "bad-signature"


def test_stolen_ssh_key_cannot_forge_a_manifest(host: Host, tmp_path: Path) -> None:
    # With only the SSH account, an attacker can rewrite manifest.json but not re-sign it.
    def forge(part: Path) -> None:
        edit_patch(part, lambda patch: patch["files"][0].update(sha256="0" * 64))

    assert _live_after_rejection(host, tmp_path, tamper=forge)["reason"] == "bad-signature"


def test_unsigned_upload_is_rejected(host: Host, tmp_path: Path) -> None:
    def unsign(part: Path) -> None:
        (part / "manifest.json.sig").unlink()

    assert _live_after_rejection(host, tmp_path, tamper=unsign)["reason"] == "unsigned"


def test_replayed_older_cut_is_rejected(host: Host, tmp_path: Path) -> None:
    older = make_cut(tmp_path, "20180701_1950", SITE)
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    host.run()
    upload(host, older)
    [result] = host.run()
    assert result["reason"] == "replay"
    assert host.live_target() == "releases/20180701_2000"


def test_same_cut_again_is_confirmed_not_rebuilt(host: Host, tmp_path: Path) -> None:
    cut = make_cut(tmp_path, "20180701_2000", SITE)
    upload(host, cut)
    host.run()
    assert upload(host, cut).paths == ()
    [result] = host.run()
    assert result["outcome"] == "already-active"


def test_signed_manifest_with_escaping_path_is_rejected(host: Host, tmp_path: Path) -> None:
    def escape(part: Path) -> None:
        def rename(patch: dict[str, Any]) -> None:
            patch["files"][0]["path"] = "../../etc/cron.d/x"
            manifest = apply_patch(
                json.loads((host.root / "status/manifest.json").read_text()), patch
            )
            document = tmp_path / "escaping" / "manifest.json"
            document.parent.mkdir(exist_ok=True)
            document.write_bytes(canonical_json(manifest))
            (part / "manifest.json.sig").write_bytes(sign_file(host.key, document).read_bytes())

        edit_patch(part, rename)

    assert _live_after_rejection(host, tmp_path, tamper=escape)["reason"] == "unsafe-path"


def _bad_member(info: tarfile.TarInfo, data: bytes = b"") -> Callable[[Path], None]:
    def add(part: Path) -> None:
        edit_bundle(part, lambda members: [*members, (info, data)])

    return add


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (tarfile.TarInfo("assets/extra.js"), "extra-member"),
        (tarfile.TarInfo("../../etc/cron.d/x"), "unsafe-path"),
        (_symlink("assets/app.js", "/etc/shadow"), "bad-member"),
        (tarfile.TarInfo("index.html"), "extra-member"),  # a second copy
    ],
)
def test_a_bundle_member_the_manifest_does_not_ask_for_is_rejected(
    host: Host, tmp_path: Path, member: tarfile.TarInfo, reason: str
) -> None:
    result = _live_after_rejection(host, tmp_path, tamper=_bad_member(member, b"new"))
    assert result["reason"] == reason
    assert not (tmp_path / "etc").exists()


def test_a_truncated_bundle_is_rejected(host: Host, tmp_path: Path) -> None:
    def truncate(part: Path) -> None:
        data = (part / BUNDLE_NAME).read_bytes()
        (part / BUNDLE_NAME).write_bytes(data[: len(data) // 2])

    assert _live_after_rejection(host, tmp_path, tamper=truncate)["reason"] == "bad-bundle"


def test_a_bundle_unpacking_past_the_manifest_sizes_is_rejected(host: Host, tmp_path: Path) -> None:
    def bloat(part: Path) -> None:
        def padded(members: list[Member]) -> list[Member]:
            for info, _ in members:
                info.pax_headers = {"comment": "x" * (4 << 20)}  # 4 MiB for a 3-byte file
            return members

        edit_bundle(part, padded)

    assert _live_after_rejection(host, tmp_path, tamper=bloat)["reason"] == "oversize"


def test_a_patch_against_another_manifest_is_rejected(host: Host, tmp_path: Path) -> None:
    def rebase(part: Path) -> None:
        edit_patch(part, lambda patch: patch.update(base="0" * 64))

    assert _live_after_rejection(host, tmp_path, tamper=rebase)["reason"] == "bad-patch-base"


def test_a_patch_to_a_host_without_releases_is_rejected(host: Host, tmp_path: Path) -> None:
    first = prepared(make_cut(tmp_path, "20180701_2000", SITE), host.key)
    (host.root / "status").mkdir()
    (host.root / "status" / "manifest.json").write_bytes(first.manifest_bytes)
    upload(host, make_cut(tmp_path, "20180701_2010", {**SITE, "index.html": "new"}))
    [result] = host.run()
    assert (result["outcome"], result["reason"]) == ("rejected", "bad-patch-base")
    assert not (host.root / "live").exists()


def test_partial_upload_is_left_alone_until_complete(host: Host, tmp_path: Path) -> None:
    (host.root / "incoming" / "20180701_2000.part").mkdir()
    assert host.run() == []
    assert not (host.root / "live").exists()


def test_several_waiting_uploads_are_applied_in_cut_order(host: Host, tmp_path: Path) -> None:
    upload(host, make_cut(tmp_path, "20180701_2010", SITE))
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    results = host.run()
    assert [r["cut_id"] for r in results] == ["20180701_2000", "20180701_2010"]
    assert host.live_target() == "releases/20180701_2010"


def _instruction(host: Host, name: str, issued_at: datetime) -> None:
    path = host.root / "incoming" / name
    path.write_bytes(
        Suspension(ELECTION, DIFUSOR, issued_at, "3 periodos sin actualizar").to_bytes()
    )
    sign_file(host.key, path, INSTRUCTION_NAMESPACE)


def test_signed_suspension_shows_the_notice_and_a_replay_is_refused(
    host: Host, tmp_path: Path
) -> None:
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    host.run()
    issued = datetime.now(UTC)
    _instruction(host, "suspend-1.json", issued)
    [result] = host.run()
    assert result["outcome"] == "suspended"
    assert host.live_target() == "notice"
    assert "suspendida" in host.serve("index.html").decode()
    _instruction(host, "suspend-2.json", issued)
    [again] = host.run()
    assert again["reason"] == "replay"


def test_watchdog_shows_notice_when_no_fresh_cut_arrives_and_a_new_cut_restores(
    host: Host, tmp_path: Path
) -> None:
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    host.run()
    assert host.run("watchdog") == []  # fresh: nothing to do
    status = host.status
    status["activated_at"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    (host.root / "status" / "status.json").write_bytes(canonical_json(status))
    [result] = host.run("watchdog")
    assert result["outcome"] == "stale"
    assert host.live_target() == "notice"
    upload(host, make_cut(tmp_path, "20180701_2010", SITE))
    host.run()
    assert host.live_target() == "releases/20180701_2010"
    assert host.status["state"] == "live"


def test_old_releases_are_pruned_but_never_the_live_one(host: Host, tmp_path: Path) -> None:
    ids = [f"20180701_2{m:03d}" for m in range(0, 60, 10)]
    for cut_id in ids:
        upload(host, make_cut(tmp_path, cut_id, {**SITE, "data/r.json": cut_id}))
        host.run()
    (host.root / "releases" / ".20180701_9999.crashed").mkdir()
    upload(host, make_cut(tmp_path, "20180701_2100", SITE))
    host.run()
    kept = sorted(p.name for p in (host.root / "releases").iterdir() if p.is_dir())
    assert kept == [*ids[-4:], "20180701_2100"]
    assert host.live_target() == "releases/20180701_2100"


def test_same_cut_after_a_suspension_is_published_again(host: Host, tmp_path: Path) -> None:
    cut = make_cut(tmp_path, "20180701_2000", SITE)
    upload(host, cut)
    host.run()
    _instruction(host, "suspend-1.json", datetime.now(UTC))
    host.run()
    assert host.live_target() == "notice"
    assert upload(host, cut).paths == ()  # reinstating when the PREP has no newer cut
    [result] = host.run()
    assert result["outcome"] == "activated"
    assert host.live_target() == "releases/20180701_2000"
    assert host.serve("assets/app.js") == b"app()"
    assert host.status["state"] == "live"


def _replace_with(part: Path, name: str, make: Callable[[Path], None]) -> None:
    """Swap an uploaded file for something else at the same name."""
    (part / name).unlink()
    make(part / name)


def _link_from_outside(p: Path) -> None:
    """Make ``p`` a second name of a file outside the upload, on the same file system
    (pytest's tmp_path, not /etc: /tmp is a tmpfs on Debian 13, so a link fails there)."""
    outside = p.parents[3] / "outside-the-upload"  # tmp_path, above srv-prep/incoming/<id>.part
    outside.write_bytes(b"not a bundle")
    os.link(outside, p)


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        (PATCH_NAME, lambda p: os.mkfifo(p), "is not a regular file"),
        (BUNDLE_NAME, lambda p: os.mkfifo(p), "is not a regular file"),
        (PATCH_NAME, lambda p: p.symlink_to("/etc/passwd"), "cannot be opened as a file"),
        (f"{MANIFEST_NAME}.sig", lambda p: p.symlink_to("/dev/zero"), "cannot be opened"),
        (BUNDLE_NAME, _link_from_outside, "has 2 names (a hard link)"),
    ],
    ids=["fifo-patch", "fifo-bundle", "symlinked-patch", "symlinked-signature", "hard-link"],
)
def test_an_upload_that_is_not_a_plain_file_is_refused_without_blocking(
    host: Host, tmp_path: Path, name: str, make: Callable[[Path], None], says: str
) -> None:
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    host.run()
    cut = make_cut(tmp_path, "20180701_2010", {**SITE, "data/r.json": '{"a":1}'})
    upload(host, cut, tamper=lambda part: _replace_with(part, name, make))
    [result] = host.run()  # a FIFO opened blocking would hang here past the run's timeout
    assert (result["outcome"], result["reason"]) == ("rejected", "bad-upload")
    assert says in result["detail"]
    assert host.live_target() == "releases/20180701_2000"
    assert not (host.root / "incoming" / cut.name).exists()


def test_an_upload_of_another_owner_is_refused(host: Host, tmp_path: Path) -> None:
    def give_away(part: Path) -> None:
        os.chown(part / BUNDLE_NAME, 65534, 65534)

    upload(host, make_cut(tmp_path, "20180701_2000", SITE), tamper=give_away)
    [result] = host.run()
    assert (result["outcome"], result["reason"]) == ("rejected", "bad-upload")
    assert "belongs to uid 65534" in result["detail"]


def test_an_upload_that_is_a_link_to_a_directory_is_refused_and_removed(
    host: Host, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    (host.root / "incoming" / "20180701_2000").rename(elsewhere)
    (host.root / "incoming" / "20180701_2000").symlink_to(elsewhere)
    [result] = host.run()
    assert (result["outcome"], result["reason"]) == ("rejected", "bad-upload")
    assert not (host.root / "incoming" / "20180701_2000").is_symlink()
    assert (elsewhere / BUNDLE_NAME).is_file()


def test_a_bundle_file_larger_than_the_manifest_allows_is_refused_unread(
    host: Host, tmp_path: Path
) -> None:
    def pad(part: Path) -> None:
        with (part / BUNDLE_NAME).open("ab") as handle:
            handle.truncate(1 << 30)  # sparse: a gigabyte of trailing zeros

    upload(host, make_cut(tmp_path, "20180701_2000", SITE), tamper=pad)
    [result] = host.run()
    assert (result["outcome"], result["reason"]) == ("rejected", "oversize")


def test_the_live_release_is_reused_not_removed_when_its_cut_is_activated_again(
    host: Host, tmp_path: Path
) -> None:
    cut = make_cut(tmp_path, "20180701_2000", SITE)
    upload(host, cut)
    host.run()
    release = host.root / "releases" / "20180701_2000"
    inode = release.stat().st_ino
    (host.root / "status" / "status.json").unlink()  # a lost status: live is not known live
    upload(host, cut, full=True)
    [result] = host.run()
    assert result["outcome"] == "activated"
    assert release.stat().st_ino == inode
    assert host.live_target() == "releases/20180701_2000"


def test_a_damaged_live_release_is_rebuilt_with_live_never_losing_a_release(
    host: Host, tmp_path: Path
) -> None:
    cut = make_cut(tmp_path, "20180701_2000", SITE)
    upload(host, cut)
    host.run()
    release = host.root / "releases" / "20180701_2000"
    (release / "assets" / "app.js").unlink()
    (release / "assets" / "app.js").write_text("damaged()")
    (host.root / "status" / "status.json").unlink()
    upload(host, cut, full=True)
    [result] = host.run()
    assert result["outcome"] == "activated"
    assert host.serve("assets/app.js") == b"app()"
    assert host.live_target() == "releases/20180701_2000"
    assert sorted(p.name for p in (host.root / "releases").iterdir()) == [
        "20180701_2000",
        "20180701_2000.manifest.json",
    ]


def test_a_failing_write_while_assembling_is_a_recorded_rejection(
    host: Host, tmp_path: Path
) -> None:
    (host.root / "releases").write_text("not a directory")
    upload(host, make_cut(tmp_path, "20180701_2000", SITE))
    [result] = host.run()
    assert (result["outcome"], result["reason"]) == ("rejected", "write-failed")
    assert host.status["last_result"]["reason"] == "write-failed"
    assert '"reason": "write-failed"' in host.log.read_text()


def test_pruning_keeps_the_newest_releases_by_cut_time_across_a_fall_back(
    host: Host, tmp_path: Path
) -> None:
    # Through the repeated hour the ids run 0140, 0150, then 0100b, 0110b: by name the
    # second pass sorts first, by time it is the newest.
    ids = ["20181028_0130", "20181028_0140", "20181028_0150", "20181028_0100b", "20181028_0110b",
           "20181028_0120b"]  # fmt: skip
    for cut_id in ids:
        upload(host, make_cut(tmp_path, cut_id, {**SITE, "data/r.json": cut_id}))
        assert host.run()[0]["outcome"] == "activated", cut_id
    kept = sorted(p.name for p in (host.root / "releases").iterdir() if p.is_dir())
    assert kept == sorted(ids[1:])  # the oldest by time went, not the "smallest" name
    assert host.live_target() == "releases/20181028_0120b"
