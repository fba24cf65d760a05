"""The bitácoras archive on its own: kernel copy or not, every sum is of the bytes archived."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from prep_iac.memoria import bitacoras
from prep_iac.memoria.bitacoras import BitacorasError, write_bitacoras


def _logs(tmp_path: Path) -> list[Path]:
    paths = []
    for host, name, size in (("a", "prep-access.log", 3 * bitacoras.CHUNK + 17),
                             ("b", "prep-access.log", 511), ("b", "events.log", 0)):  # fmt: skip
        path = tmp_path / "logs" / host / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def _check(archive: Path, paths: list[Path], tmp_path: Path) -> None:
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["bitacoras/a/prep-access.log", "bitacoras/b/prep-access.log",
                                  "bitacoras/b/events.log", "bitacoras/SHA256SUMS"]  # fmt: skip
        tar.extractall(tmp_path / "out", filter="data")
    folder = tmp_path / "out" / "bitacoras"
    check = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=folder,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    for path in paths:
        assert (folder / path.parent.name / path.name).read_bytes() == path.read_bytes()
    side = archive.with_name(archive.name + ".sha256").read_text().split()
    assert side == [hashlib.sha256(archive.read_bytes()).hexdigest(), archive.name]
    assert archive.stat().st_size % tarfile.RECORDSIZE == 0


@pytest.mark.parametrize("kernel", [True, False], ids=["copy_file_range", "refused"])
def test_archive_is_a_tar_whose_sums_check_with_or_without_the_kernel_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    paths = _logs(tmp_path)
    if not kernel:

        def refused(*_args: object) -> int:
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "copy_file_range", refused)
    archive = tmp_path / "memoria" / "bitacoras.tar"
    made = write_bitacoras(paths, archive)
    _check(archive, paths, tmp_path)
    assert [(f.name, f.size) for f in made.files] == [
        ("a/prep-access.log", 3 * bitacoras.CHUNK + 17), ("b/prep-access.log", 511),
        ("b/events.log", 0),
    ]  # fmt: skip
    assert made.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()


def test_a_log_written_to_while_archived_is_archived_as_it_was_when_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _logs(tmp_path)
    before = paths[0].read_bytes()
    copy = os.copy_file_range

    def appending(source: int, target: int, count: int, *offsets: int) -> int:
        with paths[0].open("ab") as log:  # nginx goes on logging while the copy runs
            log.write(b'{"late": true}\n')
        return copy(source, target, count, *offsets)

    monkeypatch.setattr(os, "copy_file_range", appending)
    made = write_bitacoras(paths, tmp_path / "bitacoras.tar")
    with tarfile.open(tmp_path / "bitacoras.tar") as tar:
        member = tar.extractfile("bitacoras/a/prep-access.log")
        assert member is not None
        archived = member.read()
    assert archived == before
    assert made.files[0].sha256 == hashlib.sha256(before).hexdigest()


def test_a_log_that_shrinks_while_archived_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _logs(tmp_path)
    copy = os.copy_file_range

    def truncating(source: int, target: int, count: int, *offsets: int) -> int:
        os.truncate(paths[0], bitacoras.CHUNK)  # a rotation that truncates in place
        return copy(source, target, count, *offsets)

    monkeypatch.setattr(os, "copy_file_range", truncating)
    with pytest.raises(BitacorasError, match=r"a/prep-access\.log: the file ended at byte"):
        write_bitacoras(paths, tmp_path / "bitacoras.tar")


def test_a_full_disk_is_an_error_naming_the_archive_and_leaves_no_half_archive(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("needs root to mount a small tmpfs (CI runs as root)")
        pytest.skip("needs root to mount a small tmpfs")
    paths = _logs(tmp_path)  # 12 MB, onto a disk of 4 MB
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "prep-iac-full", str(small)],
                   check=True)  # fmt: skip
    try:
        with pytest.raises(BitacorasError, match=r"bitacoras\.tar: No space left on device"):
            write_bitacoras(paths, small / "bitacoras.tar")
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)
