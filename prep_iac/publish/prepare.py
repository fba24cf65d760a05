"""Turn a cut as the PREP system drops it into a signed cut ready to push.

A cut may arrive as a directory, a ``.zip`` or a ``.tar.*``. Its id and time
come from the cut itself (the results CSV's preamble), never from a file name
or the clock, so what is signed is what the PREP stated.

What a push sends (``Upload``) is built here too: one tar bundle of the files a
host lacks, gzip-compressed when that pays, and a manifest patch against the
host's live manifest (or a full one). It is built once per cut and base
manifest and shared by every host that has that base.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prep_iac.cuts import read_cut_time
from prep_iac.models.election import Election
from prep_iac.publish.manifest import CutError, Manifest, build_manifest, cut_directory
from prep_iac.wire import PATCH_FORMAT, SIGNATURE_SUFFIX, canonical_json

# Compressing pays below this ratio (PNG and zip members barely shrink).
WORTH_COMPRESSING = 0.9
# Large bundles (a first push) use gzip -1: most of the gain at a fifth of -6's CPU.
FAST_COMPRESSION_ABOVE = 8 << 20


@dataclass(frozen=True)
class Upload:
    """What one push sends: the bundle of files, the gzipped manifest patch."""

    bundle: bytes
    patch: bytes
    paths: tuple[str, ...]  # the files in the bundle
    raw_bytes: int  # their total size, as the host will write them
    base: str | None  # SHA-256 of the host manifest the patch applies to (None: full)

    @property
    def size(self) -> int:
        return len(self.bundle) + len(self.patch)


@dataclass(frozen=True)
class PreparedCut:
    """A cut ready to push: its files on disk and its signed manifest."""

    directory: Path
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes
    _uploads: dict[str | None, Upload] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @classmethod
    def load(cls, directory: Path, manifest_path: Path) -> PreparedCut:
        """Read a cut directory and the manifest (+ ``.sig``) prepared for it."""
        data = manifest_path.read_bytes()
        signature = manifest_path.with_name(manifest_path.name + SIGNATURE_SUFFIX).read_bytes()
        manifest = Manifest.model_validate_json(data)
        if manifest.to_bytes() != data:
            # Hosts rebuild the canonical bytes and verify the signature over them.
            raise CutError(f"{manifest_path}: not a canonical manifest; sign the cut again")
        return cls(directory, manifest, data, signature)

    def upload_for(self, remote: bytes | None) -> Upload:
        """What to send a host whose live manifest is ``remote`` (its bytes; None: nothing)."""
        base, have = self._base(remote)
        with self._lock:
            if base not in self._uploads:
                self._uploads[base] = self._build(base, have)
            return self._uploads[base]

    def _base(self, remote: bytes | None) -> tuple[str | None, dict[str, Any]]:
        """The host manifest's SHA-256 and entries, when it is one of this election's."""
        if remote is None:
            return None, {}
        try:
            data = json.loads(remote)
            if data.get("election") != self.manifest.election:
                return None, {}
            have = {str(f["path"]): dict(f) for f in data["files"]}
        except (ValueError, KeyError, TypeError, AttributeError):
            return None, {}
        return hashlib.sha256(remote).hexdigest(), have

    def _build(self, base: str | None, have: dict[str, Any]) -> Upload:
        entries = [f.model_dump(mode="json") for f in self.manifest.files]
        changed = [e for e in entries if have.get(e["path"]) != e]
        wanted = {e["path"] for e in entries}
        header = self.manifest.model_dump(mode="json", exclude={"files"})
        patch = {
            "format": PATCH_FORMAT,
            "base": base,
            "header": header,
            "files": changed,
            "removed": sorted(p for p in have if p not in wanted),
        }
        paths = tuple(e["path"] for e in changed)
        raw, tar_bytes = bundle(self.directory, paths)
        return Upload(tar_bytes, gzip.compress(canonical_json(patch), 6, mtime=0), paths, raw, base)


def bundle(directory: Path, paths: tuple[str, ...]) -> tuple[int, bytes]:
    """A tar of ``paths`` under ``directory`` (gzipped when that pays); (file bytes, tar)."""
    buffer = io.BytesIO()
    raw = 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for rel in paths:
            with (directory / rel).open("rb") as handle:
                info = tarfile.TarInfo(rel)
                info.size = handle.seek(0, io.SEEK_END)
                info.mode = 0o644
                handle.seek(0)
                archive.addfile(info, handle)
            raw += info.size
    tar_bytes = buffer.getvalue()
    level = 1 if len(tar_bytes) > FAST_COMPRESSION_ABOVE else 6
    packed = gzip.compress(tar_bytes, level, mtime=0)
    return raw, packed if len(packed) < WORTH_COMPRESSING * len(tar_bytes) else tar_bytes


def prepare_cut(
    source: Path, election: Election, signing_key: Path, workdir: Path,
    cut_time: datetime | None = None,
) -> PreparedCut:  # fmt: skip
    """Read, hash and sign the cut at ``source``; archives are unpacked under ``workdir``.

    The manifest and its signature go to ``workdir/manifests/<cut id>/``; the
    cut's own files are never modified.

    + cut_time: the instant of the time the cut states, when the caller placed
      it among other cuts (a fall-back's repeated hour, ``Election.stated_instant``);
      by default it is placed alone (the first pass of a repeated hour)
    """
    with cut_directory(source) as found:
        try:
            stated = read_cut_time(found)
            when = election.stated_instant(stated.local, stated.offset_label)
        except ValueError as exc:  # CutFormatError too
            raise CutError(f"{source}: {exc}") from exc
        if cut_time is not None:
            if cut_time.astimezone(election.tz).replace(tzinfo=None, fold=0) != stated.local:
                raise CutError(
                    f"{source}: states {stated.local:%d/%m/%Y %H:%M}, not {cut_time.isoformat()}"
                )
            when = cut_time
        cut_id = election.cut_id(when)
        directory = found
        if found != source:
            directory = workdir / "cuts" / cut_id
            shutil.rmtree(directory, ignore_errors=True)
            shutil.copytree(found, directory)
    manifest = build_manifest(directory, election.id, cut_id, when)
    out = workdir / "manifests" / cut_id
    out.mkdir(parents=True, exist_ok=True)
    path = manifest.write(out, signing_key=signing_key)
    return PreparedCut.load(directory, path)
