"""The bitácoras: the raw logs of the election days in one archive, with SHA-256 sums.

The files go in byte for byte as read (a rotated ``.gz`` stays gzipped), so
each sum can be checked against the file still on the server. The archive is
an uncompressed tar holding the logs and ``SHA256SUMS`` (``sha256sum -c``
format); the archive's own sum is written beside it.

It is made in two steps, so that a memoria can put them where a core is free:
``archive_logs`` copies the logs into the archive (in the kernel, with
``copy_file_range``) and takes each log's sum from the bytes the archive holds,
so a sum always describes what was archived, even of a log still being written;
``seal_archive`` takes the archive's own sum. ``write_bitacoras`` does both.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
# Bytes read at a time to take a sum (the buffer is reused, so memory stays flat).
CHUNK = 4 << 20
# copy_file_range is refused on some filesystems and kernels: then bytes go through here.
NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM}


class BitacorasError(Exception):
    """A log could not be archived as it was: unreadable, shrunk while copied, or a full disk."""


class ArchivedFile(BaseModel):
    name: str
    size: int
    sha256: str


class ArchivedLogs(BaseModel):
    archive: str
    files: list[ArchivedFile]


class Bitacoras(ArchivedLogs):
    sha256: str


def _member_names(paths: Sequence[Path]) -> list[str]:
    """``<parent>/<file>`` (the host's directory name when fetched), unique within the archive."""
    names: list[str] = []
    for path in paths:
        name = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
        base, number = name, 2
        while name in names:
            name, number = f"{base}.{number}", number + 1
        names.append(name)
    return names


def _header(name: str, size: int, mtime: float, mode: int) -> bytes:
    info = tarfile.TarInfo(f"bitacoras/{name}")
    info.size, info.mtime, info.mode = size, int(mtime), mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def _copy(path: Path, source: int, target: int, size: int, at: int) -> None:
    """``size`` bytes of ``source`` into ``target`` at offset ``at``, in the kernel if it can."""
    done = 0
    kernel = True
    while done < size:
        if kernel:
            try:
                copied = os.copy_file_range(source, target, size - done, done, at + done)
            except OSError as exc:
                if exc.errno not in NO_KERNEL_COPY:
                    raise
                kernel = False
                continue
        else:
            data = os.pread(source, min(CHUNK, size - done), done)
            copied = os.pwrite(target, data, at + done) if data else 0
        if copied == 0:
            raise BitacorasError(
                f"{path}: the file ended at byte {done:,} of {size:,} while it was archived"
                " (it shrank or was replaced); archive it again"
            )
        done += copied


def _sha256(archive: Path, fd: int, start: int, size: int) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    done = 0
    while done < size:
        try:
            got = os.preadv(fd, [view[: min(CHUNK, size - done)]], start + done)
        except OSError as exc:
            raise BitacorasError(f"{archive}: {exc.strerror} while its sums were taken") from exc
        if got == 0:
            raise BitacorasError(f"{archive}: it ended at byte {start + done:,} while it was read")
        digest.update(view[:got])
        done += got
    return digest.hexdigest()


def archive_logs(paths: Sequence[Path], archive: Path) -> ArchivedLogs:
    """Archive ``paths`` as they are, with ``SHA256SUMS``; each sum is of the bytes archived."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    target = os.open(archive, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        files = _fill(paths, archive, target)
    except BaseException:
        # No half-written archive is left to be mistaken for the bitácoras.
        archive.unlink(missing_ok=True)
        raise
    finally:
        os.close(target)
    return ArchivedLogs(archive=archive.name, files=files)


def _fill(paths: Sequence[Path], archive: Path, target: int) -> list[ArchivedFile]:
    files: list[ArchivedFile] = []
    latest = 0.0  # the newest log's time, for SHA256SUMS
    at = 0
    for path, name in zip(paths, _member_names(paths), strict=True):
        try:
            source = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise BitacorasError(f"{path}: {exc.strerror}; it cannot go in the bitácoras") from exc
        try:
            status = os.fstat(source)
            size = status.st_size
            latest = max(latest, status.st_mtime)
            header = _header(name, size, status.st_mtime, stat.S_IMODE(status.st_mode))
            at += _write(archive, target, header, at)
            try:
                _copy(path, source, target, size, at)
            except OSError as exc:
                raise BitacorasError(f"{archive}: {exc.strerror} while archiving {path}") from exc
        finally:
            os.close(source)
        files.append(ArchivedFile(name=name, size=size, sha256=_sha256(archive, target, at, size)))
        at += size
        at += _write(archive, target, _padding(size), at)
    sums = "".join(f"{f.sha256}  {f.name}\n" for f in files).encode()
    at += _write(archive, target, _header("SHA256SUMS", len(sums), latest, 0o644) + sums
                 + _padding(len(sums)) + b"\0" * 2 * BLOCK, at)  # fmt: skip
    at += _write(archive, target, b"\0" * (-at % RECORD), at)
    os.ftruncate(target, at)
    return files


def _write(archive: Path, target: int, data: bytes, at: int) -> int:
    done = 0
    try:
        while done < len(data):  # a write cut short (a disk filling) is continued
            done += os.pwrite(target, data[done:], at + done)
        return done
    except OSError as exc:
        raise BitacorasError(f"{archive}: {exc.strerror} while writing the bitácoras") from exc


def seal_archive(archive: Path) -> str:
    """The archive's SHA-256, also written beside it as ``<archive>.sha256``."""
    with archive.open("rb", buffering=0) as handle:
        total = _sha256(archive, handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
    archive.with_name(archive.name + ".sha256").write_text(f"{total}  {archive.name}\n")
    return total


def write_bitacoras(paths: Sequence[Path], archive: Path) -> Bitacoras:
    """Archive ``paths`` with ``SHA256SUMS`` and seal the archive; return its inventory."""
    logs = archive_logs(paths, archive)
    return Bitacoras(**logs.model_dump(), sha256=seal_archive(archive))
