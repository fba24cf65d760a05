"""The host-side activation, run as the host runs it: system Python, no site-packages.

Each test uploads a cut the way the IEC does (into ``incoming/<cut>.part``, then
a rename) and runs ``activate.py process``; the outcome is read from the files
a visitor and the IEC would see: the ``live`` link, ``status.json`` and the log.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prep_iac.hostside import activate_script
from prep_iac.hostside.activate import INSTRUCTION_FORMAT, canonical_json
from prep_iac.publish.manifest import build_manifest
from prep_iac.publish.signing import allowed_signers_line, generate_signing_key, sign_file

ELECTION = "coahuila-2018"
MTY = timedelta(hours=-5)


@dataclass
class Host:
    root: Path
    signers: Path
    key: Path
    log: Path

    def run(self, command: str = "process") -> list[dict[str, Any]]:
        # -I -S: isolated, no site-packages; proves the program needs only the stdlib.
        result = subprocess.run(
            [
                "/usr/bin/python3", "-I", "-S", str(activate_script()), command,
                "--root", str(self.root), "--election", ELECTION,
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
    return datetime.strptime(cut_id, "%Y%m%d_%H%M").replace(tzinfo=UTC) - MTY


def upload(
    host: Host,
    cut: Path,
    only: list[str] | None = None,
    key: Path | None = None,
    tamper: Callable[[Path], None] | None = None,
) -> None:
    """Upload ``only`` (default all) files plus the signed manifest, then mark it complete."""
    manifest = build_manifest(cut, ELECTION, cut.name, cut_time(cut.name))
    part = host.root / "incoming" / f"{cut.name}.part"
    part.mkdir()
    for rel in only if only is not None else [f.path for f in manifest.files]:
        (part / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cut / rel, part / rel)
    manifest.write(part, signing_key=key or host.key)
    if tamper is not None:
        tamper(part)
    part.rename(host.root / "incoming" / cut.name)


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
    upload(host, second, only=["data/r.json"])
    [result] = host.run()
    assert result["outcome"] == "activated"
    assert host.serve("data/r.json") == b'{"actas": 12}'
    old, new = host.root / "releases" / "20180701_2000", host.root / "releases" / "20180701_2010"
    assert (old / "assets/app.js").stat().st_ino == (new / "assets/app.js").stat().st_ino
    assert (old / "data/r.json").stat().st_ino != (new / "data/r.json").stat().st_ino


def test_uploaded_files_are_copied_so_the_uploader_keeps_no_handle(
    host: Host, tmp_path: Path
) -> None:
    cut = make_cut(tmp_path, "20180701_2000", SITE)
    upload(host, cut)
    staged_inode = (host.root / "incoming" / cut.name / "index.html").stat().st_ino
    host.run()
    assert (host.root / "releases" / cut.name / "index.html").stat().st_ino != staged_inode


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
        (part / "index.html").write_text("wen")  # same size, other bytes

    result = _live_after_rejection(host, tmp_path, tamper=tamper)
    assert result["reason"] == "hash-mismatch"
    assert "index.html" in result["detail"]


def test_wrong_size_is_rejected(host: Host, tmp_path: Path) -> None:
    def grow(part: Path) -> None:
        (part / "index.html").write_text("new plus more")

    assert _live_after_rejection(host, tmp_path, tamper=grow)["reason"] == "size-mismatch"


def test_missing_file_is_rejected(host: Host, tmp_path: Path) -> None:
    def drop(part: Path) -> None:
        (part / "index.html").unlink()

    result = _live_after_rejection(host, tmp_path, tamper=drop)
    assert result["reason"] == "missing-file"
    assert "index.html" in result["detail"]


def test_manifest_signed_by_another_key_is_rejected(host: Host, tmp_path: Path) -> None:
    stranger = generate_signing_key(tmp_path / "stranger" / "key")
    assert _live_after_rejection(host, tmp_path, key=stranger)["reason"] == "bad-signature"


def test_stolen_ssh_key_cannot_forge_a_manifest(host: Host, tmp_path: Path) -> None:
    # With only the SSH account, an attacker can rewrite manifest.json but not re-sign it.
    def forge(part: Path) -> None:
        manifest = json.loads((part / "manifest.json").read_text())
        manifest["files"][0]["sha256"] = "0" * 64
        (part / "manifest.json").write_bytes(canonical_json(manifest))

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
    upload(host, cut, only=[])
    [result] = host.run()
    assert result["outcome"] == "already-active"


def test_signed_manifest_with_escaping_path_is_rejected(host: Host, tmp_path: Path) -> None:
    def escape(part: Path) -> None:
        manifest = json.loads((part / "manifest.json").read_text())
        manifest["files"][0]["path"] = "../../etc/cron.d/x"
        (part / "manifest.json").write_bytes(canonical_json(manifest))
        sign_file(host.key, part / "manifest.json")

    assert _live_after_rejection(host, tmp_path, tamper=escape)["reason"] == "unsafe-path"


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
    data = {
        "format": INSTRUCTION_FORMAT,
        "action": "suspend",
        "election": ELECTION,
        "issued_at": issued_at.isoformat(),
        "reason": "3 periodos sin actualizar",
    }
    path.write_bytes(canonical_json(data))
    sign_file(host.key, path)


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
    upload(host, make_cut(tmp_path, "20180701_2010", SITE), only=[])
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
    upload(host, cut, only=[])  # reinstating when the PREP has no newer cut
    [result] = host.run()
    assert result["outcome"] == "activated"
    assert host.live_target() == "releases/20180701_2000"
    assert host.serve("assets/app.js") == b"app()"
    assert host.status["state"] == "live"
