"""The host side's deploy pieces checked here: signing keys with validity windows
(rendered as the deploy renders them, verified by the real ``ssh-keygen -Y``), the
upload area's mount unit name and its size setting."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from prep_iac.deploy.publication import signer
from prep_iac.deploy.rendering import render
from prep_iac.deploy.settings import SigningKey
from prep_iac.deploy.sftp import mount_unit
from prep_iac.publish.signing import generate_signing_key, sign_file
from prep_iac.wire import CUT_NAMESPACE, FRESHNESS_NAMESPACE, SIGNER_IDENTITY

NOW = datetime.now(UTC).replace(microsecond=0)
HOUR = timedelta(hours=1)


def allowed_signers(path: Path, keys: list[SigningKey]) -> Path:
    path.write_text(
        render(
            "prep-activate-allowed_signers.j2",
            identity=SIGNER_IDENTITY,
            namespaces=[CUT_NAMESPACE, FRESHNESS_NAMESPACE],
            signers=[signer(key) for key in keys],
        )
    )
    return path


def verify(signers: Path, document: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", SIGNER_IDENTITY,
         "-n", CUT_NAMESPACE, "-s", f"{document}.sig"],
        stdin=document.open("rb"), capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("window", "verifies", "says"),
    [
        ({}, True, ""),
        ({"valid_before": NOW + HOUR}, True, ""),
        ({"valid_after": NOW - HOUR, "valid_before": NOW + HOUR}, True, ""),
        ({"valid_after": NOW - 2 * HOUR, "valid_before": NOW - HOUR}, False, "key has expired"),
        ({"valid_after": NOW + HOUR}, False, "key is not yet valid"),
    ],
)
def test_ssh_keygen_honours_each_signing_keys_validity_window(
    tmp_path: Path, window: dict[str, datetime], verifies: bool, says: str
) -> None:
    key = generate_signing_key(tmp_path / "signing")
    document = tmp_path / "manifest.json"
    document.write_bytes(b'{"cut_id":"20180701_2000"}\n')
    sign_file(key, document)
    entry = SigningKey(key=key.with_suffix(".pub").read_text(), **window)
    result = verify(allowed_signers(tmp_path / "allowed_signers", [entry]), document)
    assert (result.returncode == 0) is verifies, result.stderr
    assert says in result.stderr


def test_during_a_rotation_both_keys_verify_and_other_signers_do_not(tmp_path: Path) -> None:
    current, following, stranger = (
        generate_signing_key(tmp_path / name) for name in ("current", "next", "stranger")
    )
    signers = allowed_signers(
        tmp_path / "allowed_signers",
        [
            SigningKey(key=current.with_suffix(".pub").read_text(), valid_before=NOW + HOUR),
            SigningKey(key=following.with_suffix(".pub").read_text(), valid_after=NOW - HOUR),
        ],
    )
    for key, verifies in ((current, True), (following, True), (stranger, False)):
        document = tmp_path / f"{key.name}.json"
        document.write_bytes(b"{}\n")
        sign_file(key, document)
        assert (verify(signers, document).returncode == 0) is verifies, key.name


def test_validity_instants_are_written_in_utc_whatever_their_offset() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQvCFMcK/okt5a9esEKRngMifaJsvRsF3CZdfSeITTW"
    entry = SigningKey.model_validate(
        {"key": f"{key} firma", "valid_after": "2026-12-01T18:00:00-06:00"}
    )
    line = signer(entry)
    assert (line.key, line.valid_after, line.valid_before) == (key, "20261202000000Z", None)


def test_a_window_that_ends_before_it_starts_is_refused_naming_valid_before() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQvCFMcK/okt5a9esEKRngMifaJsvRsF3CZdfSeITTW"
    with pytest.raises(ValidationError) as info:
        SigningKey.model_validate(
            {"key": key, "valid_after": "2026-12-02T00:00:00Z", "valid_before": "2026-12-01T00:00Z"}
        )
    [error] = info.value.errors()
    assert error["loc"] == ("valid_before",)
    assert "after valid_after" in error["msg"]


def test_a_validity_instant_without_an_offset_is_refused() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQvCFMcK/okt5a9esEKRngMifaJsvRsF3CZdfSeITTW"
    with pytest.raises(ValidationError) as info:
        SigningKey.model_validate({"key": key, "valid_after": "2026-12-02T00:00:00"})
    assert info.value.errors()[0]["loc"] == ("valid_after",)


@pytest.mark.parametrize(
    ("path", "unit"),
    [
        ("/srv/prep/incoming", "srv-prep-incoming.mount"),
        ("/srv/prep-iac/incoming", "srv-prep\\x2diac-incoming.mount"),
        ("/srv/.prep/in coming", "srv-.prep-in\\x20coming.mount"),
        ("/.srv/prep", "\\x2esrv-prep.mount"),
    ],
)
def test_mount_unit_names_are_escaped_as_systemd_escape_does(path: str, unit: str) -> None:
    assert mount_unit(path) == unit
    escaped = subprocess.run(
        ["systemd-escape", "--path", "--suffix=mount", path],
        capture_output=True,
        text=True,
        check=True,
    )
    assert escaped.stdout.strip() == unit
