"""A synthetic night through a fall-back: cut ids, offsets, order, signing and activation.

America/Monterrey left daylight saving at 02:00 CDT on 28 October 2018: the
wall clock went from 01:59 back to 01:00, so 01:00-01:59 happened twice. The
PREP's CSVs state only the wall clock and the label ``(UTC-6)`` all year.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prep_iac.models.difusor import Registry
from prep_iac.models.election import Election
from prep_iac.orchestrate import strikes
from prep_iac.orchestrate.runner import CutSource
from prep_iac.orchestrate.schedule import PeriodClock
from prep_iac.orchestrate.store import Store
from prep_iac.presets import load_election
from prep_iac.publish.prepare import PreparedCut, prepare_cut
from prep_iac.publish.signing import allowed_signers_line, generate_signing_key
from prep_iac.wire import BUNDLE_NAME, MANIFEST_NAME, PATCH_NAME

from .helpers import small_night
from .test_suspension import run_host

IDS = [
    "20181028_0120", "20181028_0130", "20181028_0140", "20181028_0150",
    "20181028_0100b", "20181028_0110b", "20181028_0120b",
]  # fmt: skip
OFFSETS = [-5] * 4 + [-6] * 3


@pytest.fixture(scope="module")
def election() -> Election:
    return load_election("coahuila-2018").model_copy(
        update={
            "publication_start": datetime(2018, 10, 28, 1, 20),
            "publication_end": datetime(2018, 10, 28, 3, 0),
        }
    )


@pytest.fixture(scope="module")
def night(election: Election, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Seven cuts every 10 minutes from 01:20 CDT, reduced to what states their time
    and two pages; as zips named so that name order is not time order."""
    return small_night(election, tmp_path_factory.mktemp("fall-back"), len(IDS), seed=11)


def drop(cuts: list[Path], source: Path, name: str = "{id}") -> None:
    """Drop cuts as the PREP produces them: one after the other (modification times)."""
    source.mkdir(exist_ok=True)
    start = 1_540_710_000_000_000_000  # ns; any increasing times do
    for index, cut in enumerate(cuts):
        target = source / name.format(id=cut.name, n=len(cuts) - index)
        shutil.copytree(cut, target)
        os.utime(target, ns=(start + index * 10**9, start + index * 10**9))
        (source / f"{target.name}.complete").touch()


def test_second_pass_cuts_get_the_b_id_the_later_offset_and_their_place(
    election: Election, night: list[Path], tmp_path: Path, registry: Registry
) -> None:
    periods = [PeriodClock(election).period(i) for i in range(len(IDS))]
    assert [p.cut_id for p in periods if p is not None] == IDS
    # Live: the PREP drops one cut per period and the orchestrator reads SOURCE each time.
    live = CutSource(tmp_path / "live", election)
    for cut in night:
        drop([cut], live.directory, name=f"{len(live.cuts()):02d}-{{id}}")
    # After a restart: every cut at once, under names that sort backwards.
    restarted = CutSource(tmp_path / "restart", election)
    drop(night, restarted.directory, name="{n:02d}")
    for source in (live, restarted):
        found = source.cuts()
        assert [c.cut_id for c in found] == IDS
        assert [c.cut_time.utcoffset() for c in found] == [timedelta(hours=h) for h in OFFSETS]
        assert [c.cut_time for c in found] == [p.start for p in periods if p is not None]
    # The store orders them by instant: each period's cut is new, none is a replay.
    with Store(tmp_path / "state.sqlite3") as store:
        for period, found_cut in zip(periods, live.cuts(), strict=True):
            assert period is not None
            record = strikes.open_period(
                store,
                registry,
                election,
                period,
                found_cut.ref,
                period.start + timedelta(seconds=1),
            )
            assert (record.cut_id, record.new_cut) == (found_cut.cut_id, True)


def test_fall_back_cuts_are_signed_with_their_offset_and_activate_in_time_order(
    election: Election, night: list[Path], tmp_path: Path
) -> None:
    key = generate_signing_key(tmp_path / "keys" / "signing")
    source = CutSource(tmp_path / "source", election)
    drop(night, source.directory)
    prepared = [
        prepare_cut(c.path, election, key, tmp_path / "work", c.cut_time) for c in source.cuts()
    ]
    assert [p.manifest.cut_id for p in prepared] == IDS
    stated = [json.loads(p.manifest_bytes)["cut_time"] for p in prepared]
    assert stated[3] == "2018-10-28T01:50:00-05:00"
    assert stated[4] == "2018-10-28T01:00:00-06:00"
    host = tmp_path / "srv-prep"
    (host / "incoming").mkdir(parents=True)
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_signers_line(key.with_suffix(".pub")))
    # The host program takes each in turn: the second pass is newer, not a replay.
    for cut in prepared:
        [outcome] = activate(host, signers, cut)
        assert (outcome["outcome"], outcome["cut_id"]) == ("activated", cut.manifest.cut_id)
    # And the first pass's 01:50 after the second pass's 01:20 is one.
    [replayed] = activate(host, signers, prepared[3])
    assert replayed["outcome"] == "rejected" and replayed["reason"] == "replay"
    status = json.loads((host / "status" / "status.json").read_text())
    assert status["cut_id"] == "20181028_0120b"
    assert datetime.fromisoformat(status["cut_time"]).astimezone(UTC) == datetime(
        2018, 10, 28, 7, 20, tzinfo=UTC
    )


def activate(host: Path, signers: Path, cut: PreparedCut) -> list[dict[str, object]]:
    """Upload ``cut`` as a push does (a patch against the live manifest) and run the
    host program as its path unit would."""
    live = host / "status" / "manifest.json"
    payload = cut.upload_for(live.read_bytes() if live.is_file() else None)
    part = host / "incoming" / f"{cut.manifest.cut_id}.part"
    part.mkdir()
    (part / BUNDLE_NAME).write_bytes(payload.bundle)
    (part / PATCH_NAME).write_bytes(payload.patch)
    (part / f"{MANIFEST_NAME}.sig").write_bytes(cut.signature)
    part.rename(host / "incoming" / cut.manifest.cut_id)
    return run_host(host, signers, host.parent)


def test_the_period_clock_orders_the_repeated_hour_by_instant(
    election: Election, registry: Registry, tmp_path: Path
) -> None:
    at = datetime(2018, 10, 28, 6, 55, tzinfo=UTC)  # 01:55 CDT; five minutes later it is 01:00 CST
    clock = PeriodClock(election, clock=lambda: at)
    current = clock.current()
    assert current is not None and current.cut_id == "20181028_0150"
    assert current.start <= clock.now() < current.end  # on the wall clock: 01:50 <= 01:55, 01:00
    assert clock.next_boundary() == current.end
    # A restart at 01:55 CDT records the periods it missed, not the one still under way.
    with Store(tmp_path / "state.sqlite3") as store:
        strikes.start_run(store, registry, election, 1, clock.now())
        assert [p.start for p in store.periods()] == [
            p.start for p in clock.periods(election.window_start, current.start)
        ]
        assert store.period(current.start) is None
