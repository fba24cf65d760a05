"""Turn a cut as the PREP system drops it into a signed cut ready to push.

A cut may arrive as a directory, a ``.zip`` or a ``.tar.*``. Its id and time
come from the cut itself (the results CSV's preamble), never from a file name
or the clock, so what is signed is what the PREP stated.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from prep_iac.cuts import CutFormatError, read_cut_time
from prep_iac.hostside.activate import SIGNATURE_SUFFIX
from prep_iac.models.election import Election
from prep_iac.publish.manifest import CutError, Manifest, build_manifest, cut_directory


@dataclass(frozen=True)
class PreparedCut:
    """A cut ready to push: its files on disk and its signed manifest."""

    directory: Path
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes

    @classmethod
    def load(cls, directory: Path, manifest_path: Path) -> PreparedCut:
        """Read a cut directory and the manifest (+ ``.sig``) prepared for it."""
        data = manifest_path.read_bytes()
        signature = manifest_path.with_name(manifest_path.name + SIGNATURE_SUFFIX).read_bytes()
        return cls(directory, Manifest.model_validate_json(data), data, signature)


def prepare_cut(source: Path, election: Election, signing_key: Path, workdir: Path) -> PreparedCut:
    """Read, hash and sign the cut at ``source``; archives are unpacked under ``workdir``.

    The manifest and its signature go to ``workdir/manifests/<cut id>/``; the
    cut's own files are never modified.
    """
    with cut_directory(source) as found:
        try:
            stated = read_cut_time(found)
        except CutFormatError as exc:
            raise CutError(f"{source}: {exc}") from exc
        cut_id = election.cut_id(stated.local.replace(tzinfo=election.tz))
        directory = found
        if found != source:
            directory = workdir / "cuts" / cut_id
            shutil.rmtree(directory, ignore_errors=True)
            shutil.copytree(found, directory)
    manifest = build_manifest(
        directory, election.id, cut_id, stated.local.replace(tzinfo=election.tz)
    )
    out = workdir / "manifests" / cut_id
    out.mkdir(parents=True, exist_ok=True)
    path = manifest.write(out, signing_key=signing_key)
    return PreparedCut.load(directory, path)
