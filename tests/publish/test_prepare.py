"""Preparing a cut for the push: any packaging in, one signed manifest out."""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from prep_iac.cuts import generate_night
from prep_iac.presets import load_election
from prep_iac.publish.manifest import CutError
from prep_iac.publish.prepare import prepare_cut
from prep_iac.publish.signing import allowed_signers_line, generate_signing_key, verify_file

ELECTION = load_election("coahuila-2018")


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cuts")
    [info] = generate_night(ELECTION, base, cuts=1, seed=11)
    return Path(info.path)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_signing_key(tmp_path_factory.mktemp("keys") / "signing")


def _check(prepared_dir: Path, tmp_path: Path, key: Path, manifest_path: Path) -> None:
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_signers_line(key.with_suffix(".pub")))
    verify_file(signers, manifest_path)


def test_directory_cut_is_signed_with_the_time_its_csv_states(
    cut: Path, key: Path, tmp_path: Path
) -> None:
    prepared = prepare_cut(cut, ELECTION, key, tmp_path / "work")
    assert prepared.directory == cut
    assert prepared.manifest.cut_id == "20180701_1800"
    assert prepared.manifest.cut_time.isoformat() == "2018-07-01T18:00:00-05:00"
    assert prepared.manifest.election == "coahuila-2018"
    on_disk = sorted(p.relative_to(cut).as_posix() for p in cut.rglob("*") if p.is_file())
    assert [f.path for f in prepared.manifest.files] == on_disk
    assert not (cut / "manifest.json").exists()  # the cut itself is left untouched
    manifest_path = tmp_path / "work" / "manifests" / "20180701_1800" / "manifest.json"
    assert manifest_path.read_bytes() == prepared.manifest_bytes
    _check(cut, tmp_path, key, manifest_path)


@pytest.mark.parametrize("packaging", ["zip", "tar.gz"])
def test_archived_cut_gives_the_same_manifest(
    cut: Path, key: Path, tmp_path: Path, packaging: str
) -> None:
    archive = tmp_path / f"cut.{packaging}"
    if packaging == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for path in sorted(cut.rglob("*")):
                zf.write(path, Path(cut.name) / path.relative_to(cut))
    else:
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(cut, arcname=cut.name)
    from_dir = prepare_cut(cut, ELECTION, key, tmp_path / "a")
    from_archive = prepare_cut(archive, ELECTION, key, tmp_path / "b")
    assert from_archive.manifest.files == from_dir.manifest.files
    assert from_archive.directory == tmp_path / "b" / "cuts" / "20180701_1800"


def test_cut_without_results_csv_is_refused_naming_it(cut: Path, key: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(cut, broken)
    for z in broken.glob("*.zip"):
        z.unlink()
    with pytest.raises(CutError, match=str(broken)):
        prepare_cut(broken, ELECTION, key, tmp_path / "work")


def test_zip_member_escaping_the_cut_is_refused(key: Path, tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../etc/passwd", "x")
    with pytest.raises(CutError, match="escapes the cut"):
        prepare_cut(archive, ELECTION, key, tmp_path / "work")


def test_symlink_in_a_cut_is_refused(cut: Path, key: Path, tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    shutil.copytree(cut, linked)
    (linked / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(CutError, match="symlink"):
        prepare_cut(linked, ELECTION, key, tmp_path / "work")
