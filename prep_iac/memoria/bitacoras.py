"""The bitácoras: the raw logs of the election days in one archive, with SHA-256 sums.

The files go in byte for byte as read (a rotated ``.gz`` stays gzipped), so
each sum can be checked against the file still on the server. The archive is
an uncompressed tar holding the logs and ``SHA256SUMS`` (``sha256sum -c``
format); the archive's own sum is written beside it.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pydantic import BaseModel

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

# tarfile copies 16 KiB at a time by default; a log of a gigabyte goes faster in MiB.
COPY_BUFFER = 1 << 20


class ArchivedFile(BaseModel):
    name: str
    size: int
    sha256: str


class Bitacoras(BaseModel):
    archive: str
    sha256: str
    files: list[ArchivedFile]


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


def write_bitacoras(paths: Sequence[Path], archive: Path) -> Bitacoras:
    """Archive ``paths`` as they are, with ``SHA256SUMS``; return the archive's inventory."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    files: list[ArchivedFile] = []
    # Each log is read once: its sum is taken as tarfile copies it, and the archive's
    # own sum as tarfile writes it (not by reading the archive back).
    with archive.open("wb") as raw:
        output = _HashingWriter(raw)
        with tarfile.TarFile(fileobj=output, mode="w", format=tarfile.PAX_FORMAT,
                             copybufsize=COPY_BUFFER) as tar:  # fmt: skip
            for path, name in zip(paths, _member_names(paths), strict=True):
                digest = hashlib.sha256()
                info = tar.gettarinfo(str(path), arcname=f"bitacoras/{name}")
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                with path.open("rb") as handle:
                    tar.addfile(info, _Hashing(handle, digest))
                files.append(ArchivedFile(name=name, size=info.size, sha256=digest.hexdigest()))
            sums = "".join(f"{f.sha256}  {f.name}\n" for f in files).encode()
            info = tarfile.TarInfo("bitacoras/SHA256SUMS")
            info.size = len(sums)
            tar.addfile(info, io.BytesIO(sums))
    total = output.digest.hexdigest()
    archive.with_name(archive.name + ".sha256").write_text(f"{total}  {archive.name}\n")
    return Bitacoras(archive=archive.name, sha256=total, files=files)


class _Hashing(io.RawIOBase):
    """A reader that hashes what tarfile copies, so each log is read once."""

    def __init__(self, handle: io.BufferedReader, digest: hashlib._Hash) -> None:
        self.handle = handle
        self.digest = digest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


class _HashingWriter(io.RawIOBase):
    """A writer that hashes what tarfile writes: the archive's sum without reading it back."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.handle.tell()

    def write(self, data: ReadableBuffer) -> int:
        self.digest.update(data)
        return self.handle.write(data)
