"""Small helpers shared by the cut tests."""

from __future__ import annotations

from pathlib import Path

from prep_iac.cuts import CutInfo


def zip_of(cut: CutInfo, contest: str = "AYUN") -> Path:
    return cut.path / f"{cut.id}_PREP_{contest}_COAH.zip"


def files_of(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}
