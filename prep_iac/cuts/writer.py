"""Writing cuts to disk: new files only, hard links for unchanged ones, atomic rename.

A cut is assembled in ``OUT/.<id>.partial`` and renamed to ``OUT/<id>`` when
complete, so a half-written cut is never visible under its id. Files are
created with exclusive mode and never reopened for writing: a file that is
byte-identical to the previous cut's is a hard link to it, and writing in
place would change every cut sharing that inode. Callers that want to tamper
with a cut (drills, corruption tests) must ``copy_cut`` it first.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

STAMP_KEY = b'{"corte_actualizacion":"'


@dataclass(frozen=True, slots=True)
class CutFile:
    """A file of a cut. ``stamped`` JSON bodies get ``corte_actualizacion`` when written."""

    path: str
    body: bytes
    stamped: bool = False


@dataclass(frozen=True, slots=True)
class WriteStats:
    files: int
    bytes: int
    changed: int
    linked: int


@dataclass(frozen=True, slots=True)
class _Written:
    body: bytes
    content: bytes


def stamp(body: bytes, cut_id: str) -> bytes:
    """``{"corte_actualizacion":"<id>", ...body}``: the cut at which the content last changed."""
    rest = body[1:]
    separator = b"" if rest == b"}" else b","
    return STAMP_KEY + cut_id.encode() + b'"' + separator + rest


class CutWriter:
    """Writes a series of cuts into ``out_dir``, each against the previous one."""

    def __init__(self, out_dir: Path, *, link_unchanged: bool = True) -> None:
        self.out_dir = out_dir
        self.link_unchanged = link_unchanged
        self._previous: dict[str, _Written] = {}
        self._previous_dir: Path | None = None

    def write(self, cut_id: str, files: list[CutFile]) -> tuple[Path, WriteStats]:
        """Write one cut as ``out_dir/cut_id``; returns its path and what it cost."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        partial = self.out_dir / f".{cut_id}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        for directory in sorted({str(Path(f.path).parent) for f in files}):
            (partial / directory).mkdir(parents=True, exist_ok=True)

        written: dict[str, _Written] = {}
        changed = linked = size = 0
        for f in files:
            before = self._previous.get(f.path)
            target = partial / f.path
            if before is not None and before.body == f.body:
                content = before.content
                if self.link_unchanged and self._previous_dir is not None:
                    os.link(self._previous_dir / f.path, target)
                    linked += 1
                else:
                    _create(target, content)
            else:
                content = stamp(f.body, cut_id) if f.stamped else f.body
                _create(target, content)
                changed += 1
            written[f.path] = _Written(f.body, content)
            size += len(content)

        final = self.out_dir / cut_id
        if final.exists():
            # Unlinking is safe for hard-linked files; the other cuts keep their copies.
            shutil.rmtree(final)
        partial.rename(final)
        self._previous = written
        self._previous_dir = final
        return final, WriteStats(files=len(files), bytes=size, changed=changed, linked=linked)


def _create(path: Path, content: bytes) -> None:
    # "xb": a new inode every time; never truncate a file another cut may share.
    with path.open("xb") as handle:
        handle.write(content)


def copy_cut(src: Path, dst: Path) -> Path:
    """Copy a cut to ``dst`` (which must not exist) with no hard link shared with ``src``.

    Use it before modifying a generated cut: its files may be hard links shared
    with the cuts before and after it.
    """
    if dst.exists():
        raise FileExistsError(f"{dst}: copy_cut needs a destination that does not exist")
    shutil.copytree(src, dst, copy_function=shutil.copyfile)
    return dst
