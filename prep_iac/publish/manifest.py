"""Cut manifests: every file's path, size and SHA-256, the cut id and time, signed.

The manifest is what a difusor host verifies before a cut becomes visible, and
what the IEC compares with a host's live manifest to send only what changed.
Its wire format (canonical JSON) is defined once, in ``prep_iac.wire``.
"""

from __future__ import annotations

import contextlib
import itertools
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from prep_iac.hostside.activate import sha256_file
from prep_iac.publish.signing import sign_file
from prep_iac.wire import MANIFEST_FORMAT, MANIFEST_NAME, canonical_json, safe_relpath


class CutError(ValueError):
    """A cut that cannot be published as it is; the message names the file."""


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Manifest(BaseModel):
    """What a cut contains, as the IEC signs it."""

    model_config = ConfigDict(frozen=True)

    format: Literal["prep-iac-manifest/1"] = MANIFEST_FORMAT
    election: str
    cut_id: str = Field(pattern=r"^[0-9]{8}_[0-9]{4}b?$")
    cut_time: AwareDatetime
    files: list[FileEntry] = Field(min_length=1)

    @field_validator("files")
    @classmethod
    def _canonical_order(cls, files: list[FileEntry]) -> list[FileEntry]:
        """Entries sorted by path, each path once: hosts rebuild manifests in this order."""
        ordered = sorted(files, key=lambda f: f.path)
        for before, after in itertools.pairwise(ordered):
            if before.path == after.path:
                raise ValueError(f"path {after.path!r} is listed twice")
        return ordered

    def to_bytes(self) -> bytes:
        """The canonical bytes that are signed and uploaded."""
        return canonical_json(self.model_dump(mode="json"))

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    def write(self, directory: Path, signing_key: Path | None = None) -> Path:
        """Write ``manifest.json`` (and its ``.sig`` when a key is given) into ``directory``."""
        path = directory / MANIFEST_NAME
        path.write_bytes(self.to_bytes())
        if signing_key is not None:
            sign_file(signing_key, path)
        return path


def build_manifest(cut_dir: Path, election: str, cut_id: str, cut_time: datetime) -> Manifest:
    """Hash every file of a cut directory into a manifest.

    Symlinks and special files are refused: a published cut is plain files, and
    a link could point a visitor (or the activation) outside the release.
    """
    entries = []
    for path in cut_dir.rglob("*"):
        rel = path.relative_to(cut_dir).as_posix()
        if path.is_symlink():
            raise CutError(f"{path}: cut contains a symlink; publish plain files only")
        if path.is_dir():
            continue
        if not path.is_file():
            raise CutError(f"{path}: cut contains a special file")
        if rel == MANIFEST_NAME:
            continue
        entries.append(FileEntry(path=rel, size=path.stat().st_size, sha256=sha256_file(path)))
    if not entries:
        raise CutError(f"{cut_dir}: cut has no files")
    return Manifest(election=election, cut_id=cut_id, cut_time=cut_time, files=entries)


@contextlib.contextmanager
def cut_directory(source: Path) -> Iterator[Path]:
    """Yield a directory holding the cut at ``source`` (a directory, ``.zip`` or ``.tar.*``).

    Archives are extracted into a temporary directory that is removed afterwards;
    members that would land outside it are refused.
    """
    if source.is_dir():
        yield source
        return
    if not source.is_file():
        raise CutError(f"{source}: no such cut (expected a directory, .zip or .tar.*)")
    with tempfile.TemporaryDirectory(prefix="prep-cut-") as tmp:
        target = Path(tmp)
        try:
            if zipfile.is_zipfile(source):
                _extract_zip(source, target)
            elif tarfile.is_tarfile(source):
                with tarfile.open(source) as archive:
                    archive.extractall(target, filter="data")
            else:
                raise CutError(f"{source}: not a directory, zip or tar archive")
        except (tarfile.TarError, zipfile.BadZipFile, OSError) as exc:
            raise CutError(f"{source}: cannot extract the cut: {exc}") from exc
        yield _single_top(target)


def _extract_zip(source: Path, target: Path) -> None:
    with zipfile.ZipFile(source) as archive:
        for member in archive.infolist():
            try:
                safe_relpath(PurePosixPath(member.filename).as_posix().rstrip("/"))
            except ValueError as exc:
                raise CutError(f"{source}: member {member.filename!r} escapes the cut") from exc
        archive.extractall(target)  # noqa: S202 (every member was checked above)


def _single_top(extracted: Path) -> Path:
    """Archives often wrap the site in one folder; publish its content, not the folder."""
    children = list(extracted.iterdir())
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return extracted
