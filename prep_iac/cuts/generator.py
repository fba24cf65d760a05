"""``generate_night``: write a series of synthetic cuts and say what each cost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from prep_iac.cuts.columns import cut_time_label
from prep_iac.cuts.night import MB, Night
from prep_iac.cuts.writer import CutWriter
from prep_iac.models.election import Election


class CutInfo(BaseModel):
    """One written cut: where it is, how big, and how much of it changed."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Cut id, YYYYMMDD_HHMM in local time.")
    time: datetime = Field(description="Cut instant, aware, in the election's zone.")
    label: str = Field(description="The cut time as the CSV states it: DD/MM/YYYY HH:MM (UTC-6).")
    path: Path
    files: int = Field(description="Files in the cut.")
    bytes: int = Field(description="Sum of the cut's file sizes (hard links counted in full).")
    changed_files: int = Field(description="Files new or different from the previous cut's.")
    linked_files: int = Field(description="Unchanged files hard-linked to the previous cut's.")
    counted_percent: float = Field(description="Actas contabilizadas over esperadas, all contests.")

    @property
    def megabytes(self) -> float:
        return self.bytes / MB


def night_times(election: Election, cuts: int, every: int = 1) -> list[datetime]:
    """The first ``cuts`` cut instants of the window, taking one period in ``every``."""
    if cuts < 1 or every < 1:
        raise ValueError("cuts and every must be at least 1")
    return list(election.cut_times(cuts * every))[::every]


def generate_night(
    election: Election,
    out_dir: Path,
    *,
    cuts: int = 10,
    seed: int = 2018,
    every: int = 1,
    link_unchanged: bool = True,
    progress: Callable[[CutInfo], None] | None = None,
) -> list[CutInfo]:
    """Write ``cuts`` consecutive cuts of ``election`` under ``out_dir/<cut id>/``.

    + election: the election whose night to simulate (geography from its entity).
    + out_dir: parent directory; existing cuts with the same ids are replaced.
    + cuts: how many cuts, from the window's start.
    + seed: same seed and arguments give byte-identical cuts.
    + every: take one update period in ``every`` (6 with 10-minute periods: hourly cuts).
    + link_unchanged: hard-link files identical to the previous cut's instead of writing them.
    + progress: called with each cut's ``CutInfo`` as soon as it is written.

    **Example:**

        infos = generate_night(load_election("coahuila-2018"), Path("/var/tmp/cuts"), cuts=3)
        infos[-1].counted_percent
    """
    times = night_times(election, cuts, every)
    night = Night(election, seed)
    writer = CutWriter(out_dir, link_unchanged=link_unchanged)
    infos: list[CutInfo] = []
    for when in times:
        cut_id = election.cut_id(when)
        path, stats = writer.write(cut_id, night.cut_files(when))
        info = CutInfo(
            id=cut_id,
            time=when,
            label=cut_time_label(when.astimezone(election.tz), election.csv_offset_label),
            path=path,
            files=stats.files,
            bytes=stats.bytes,
            changed_files=stats.changed,
            linked_files=stats.linked,
            counted_percent=night.counted_percent(when),
        )
        infos.append(info)
        if progress is not None:
            progress(info)
    return infos
