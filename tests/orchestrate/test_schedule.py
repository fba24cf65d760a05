"""The period clock: wall-clock alignment through DST changes, window edges, drills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from prep_iac.models.election import Election
from prep_iac.orchestrate.schedule import Drill, PeriodClock

MTY = ZoneInfo("America/Monterrey")


def night(election: Election, start: datetime, end: datetime) -> Election:
    """The coahuila-2018 rules over another window (Monterrey still had DST in 2018)."""
    return Election.model_validate(
        {
            **election.model_dump(),
            "election_day": start.date(),
            "publication_start": start,
            "publication_end": end,
        }
    )


def test_fall_back_hour_has_its_periods_twice_on_the_wall_clock(election: Election) -> None:
    e = night(election, datetime(2018, 10, 27, 18, 0), datetime(2018, 10, 28, 6, 0))
    clock = PeriodClock(e)
    periods = list(
        clock.periods(
            datetime(2018, 10, 28, 0, 0, tzinfo=MTY), datetime(2018, 10, 28, 3, 0, tzinfo=MTY)
        )
    )
    # Three wall-clock hours, four real ones: 24 periods of exactly 10 minutes.
    assert len(periods) == 24
    assert all(p.duration == timedelta(minutes=10) for p in periods)
    assert all(p.start.minute % 10 == 0 for p in periods)
    ids = [p.cut_id for p in periods]
    assert len(set(ids)) == 24
    starts = [p.start.astimezone(UTC) for p in periods]
    assert starts == sorted(starts)
    assert ids[6:13] == [
        "20181028_0100", "20181028_0110", "20181028_0120", "20181028_0130",
        "20181028_0140", "20181028_0150", "20181028_0100b",
    ]  # fmt: skip
    second_pass = datetime(2018, 10, 28, 1, 5, fold=1, tzinfo=MTY)
    current = clock.period_at(second_pass)
    assert current is not None
    assert current.cut_id == "20181028_0100b"
    assert current.start.astimezone(UTC) == datetime(2018, 10, 28, 7, 0, tzinfo=UTC)


def test_spring_forward_hour_has_no_periods(election: Election) -> None:
    e = night(election, datetime(2018, 3, 31, 18, 0), datetime(2018, 4, 1, 6, 0))
    clock = PeriodClock(e)
    at = datetime(2018, 4, 1, 1, 55, tzinfo=MTY)
    boundary = clock.next_boundary(at)
    assert boundary is not None
    assert (boundary.hour, boundary.minute) == (3, 0)
    assert boundary.astimezone(UTC) - at.astimezone(UTC) == timedelta(minutes=5)
    periods = list(
        clock.periods(
            datetime(2018, 4, 1, 1, 0, tzinfo=MTY), datetime(2018, 4, 1, 4, 0, tzinfo=MTY)
        )
    )
    assert len(periods) == 12
    assert not any(p.start.hour == 2 for p in periods)


def test_nothing_is_scheduled_outside_the_publication_window(election: Election) -> None:
    clock = PeriodClock(election)
    before = election.window_start - timedelta(seconds=1)
    assert clock.period_at(before) is None
    assert clock.next_boundary(before) == election.window_start
    first = clock.period_at(election.window_start)
    assert first is not None
    assert (first.index, first.cut_id) == (0, "20180701_1800")
    last = clock.period_at(election.window_end - timedelta(microseconds=1))
    assert last is not None
    assert last.cut_id == "20180710_2350"
    assert last.end == election.window_end  # cut short at 23:59, not 00:00
    assert last.duration == timedelta(minutes=9)
    assert clock.next_boundary(last.start) is None
    assert clock.period_at(election.window_end) is None
    assert clock.period(last.index + 1) is None


def test_current_period_follows_the_injected_clock(election: Election) -> None:
    at = datetime(2018, 7, 1, 18, 25, 30, tzinfo=MTY)
    clock = PeriodClock(election, clock=lambda: at.astimezone(UTC))
    current = clock.current()
    assert current is not None
    assert current.cut_id == "20180701_1820"
    assert clock.next_boundary() == datetime(2018, 7, 1, 18, 30, tzinfo=MTY)
    assert clock.real_seconds_until(datetime(2018, 7, 1, 18, 30, tzinfo=MTY)) == 270


def test_drill_runs_a_ten_minute_period_in_ten_seconds(election: Election) -> None:
    real_start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    real_now = [real_start]
    drill = Drill.compress(election, real_start, period_seconds=10)
    clock = PeriodClock(election, clock=lambda: real_now[0], drill=drill)
    assert clock.now() == election.window_start
    real_now[0] = real_start + timedelta(seconds=25)
    current = clock.current()
    assert current is not None
    assert (current.index, current.cut_id) == (2, "20180701_1820")
    boundary = clock.next_boundary()
    assert boundary == datetime(2018, 7, 1, 18, 30, tzinfo=MTY)
    assert clock.real_seconds_until(boundary) == pytest.approx(5.0)
