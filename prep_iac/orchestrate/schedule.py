"""The period clock: which update period it is, when the next begins, and drills.

Periods are stepped in absolute time (UTC) from the window start. Because the
window starts on the wall clock (18:00) and the period divides a day, every
period also starts on a wall-clock multiple (18:00, 18:10...) on both sides of
a daylight-saving change: the fall-back hour simply has its periods twice
(cut ids ``..._0100`` then ``..._0100b``) and the spring-forward hour has none.
Arithmetic is done in UTC on purpose: Python adds and subtracts aware times
that share a zone on the wall clock, which is an hour off across a change.
For the same reason the clock hands out local times with a fixed UTC offset
(``local``): two times of one ``ZoneInfo`` zone also *compare* on the wall
clock, ignoring ``fold``, so 01:55 CDT would come after 01:00 CST (the end of
its own period) in the fall-back hour; times with fixed offsets compare as the
instants they are.

Periods live in the publication window ``[start, end)``; the last one is cut
short at the window's end, and nothing is scheduled outside the window.

A drill maps a real clock onto election time ``speed`` times faster (a
10-minute period in 10 seconds), so a whole night can be rehearsed in minutes
with the same code; tests inject the real clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from prep_iac.models.election import Election

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def local(instant: datetime, zone: tzinfo) -> datetime:
    """``instant`` on ``zone``'s wall clock, with that moment's offset as a fixed one."""
    wall = instant.astimezone(zone)
    offset, name = wall.utcoffset(), wall.tzname()
    assert offset is not None and name is not None  # an aware time in a real zone
    return wall.replace(tzinfo=timezone(offset, name), fold=0)


@dataclass(frozen=True)
class Period:
    """One update period of the election (times in the election's zone, ``local``)."""

    index: int
    start: datetime
    end: datetime
    cut_id: str

    @property
    def duration(self) -> timedelta:
        return self.end.astimezone(UTC) - self.start.astimezone(UTC)


@dataclass(frozen=True)
class Drill:
    """Election time running ``speed`` times faster than the real clock.

    + real_start: the real instant the drill began
    + election_start: the election instant it stands for (usually the window start)
    + speed: election seconds per real second

    **Example:** ``Drill.compress(election, utc_now(), period_seconds=10)``
    runs a 10-minute period in 10 real seconds.
    """

    real_start: datetime
    election_start: datetime
    speed: float

    @classmethod
    def compress(
        cls,
        election: Election,
        real_start: datetime,
        period_seconds: float,
        election_start: datetime | None = None,
    ) -> Drill:
        speed = election.period.total_seconds() / period_seconds
        return cls(real_start, election_start or election.window_start, speed)

    def to_election(self, real: datetime) -> datetime:
        elapsed = real.astimezone(UTC) - self.real_start.astimezone(UTC)
        return self.election_start.astimezone(UTC) + elapsed * self.speed

    def to_real(self, election_time: datetime) -> datetime:
        elapsed = election_time.astimezone(UTC) - self.election_start.astimezone(UTC)
        return self.real_start.astimezone(UTC) + elapsed / self.speed


class PeriodClock:
    """Periods of one election as seen from a (possibly drilled) clock.

    + election: the window, period and time zone
    + clock: the real clock (``utc_now``; tests pass their own)
    + drill: map the real clock onto election time, or None for the real night
    """

    def __init__(self, election: Election, clock: Clock = utc_now, drill: Drill | None = None):
        self.election = election
        self.clock = clock
        self.drill = drill
        self._start = election.window_start.astimezone(UTC)
        self._end = election.window_end.astimezone(UTC)

    def real_seconds(self, election_span: timedelta) -> float:
        """How long ``election_span`` of election time lasts on the real clock."""
        return election_span.total_seconds() / (self.drill.speed if self.drill else 1.0)

    def now(self) -> datetime:
        """Election time now, in the election's zone (``local``)."""
        real = self.clock()
        when = self.drill.to_election(real) if self.drill else real
        return local(when, self.election.tz)

    def period(self, index: int) -> Period | None:
        """The ``index``-th period of the window (0 is the first), or None outside it."""
        start = self._start + index * self.election.period
        if index < 0 or start >= self._end:
            return None
        end = min(start + self.election.period, self._end)
        tz = self.election.tz
        return Period(index, local(start, tz), local(end, tz), self.election.cut_id(start))

    def period_at(self, when: datetime) -> Period | None:
        """The period containing ``when`` (aware), or None outside the window."""
        instant = when.astimezone(UTC)
        if not self._start <= instant < self._end:
            return None
        return self.period((instant - self._start) // self.election.period)

    def current(self) -> Period | None:
        return self.period_at(self.now())

    def next_boundary(self, when: datetime | None = None) -> datetime | None:
        """The next period start after ``when`` (default: now); None once the window is over."""
        instant = (when or self.now()).astimezone(UTC)
        if instant < self._start:
            return local(self._start, self.election.tz)
        following = self.period((instant - self._start) // self.election.period + 1)
        return None if following is None else following.start

    def periods(self, since: datetime, until: datetime) -> Iterator[Period]:
        """Periods that start in ``[since, until)``."""
        elapsed = since.astimezone(UTC) - self._start
        index = max(0, -(-elapsed // self.election.period))  # the first start at or after since
        while (period := self.period(index)) is not None and period.start < until:
            if period.start >= since:
                yield period
            index += 1

    def real_seconds_until(self, when: datetime) -> float:
        """Real seconds to wait until election time ``when`` (0 when it has passed)."""
        target = self.drill.to_real(when) if self.drill else when.astimezone(UTC)
        return max(0.0, (target - self.clock().astimezone(UTC)).total_seconds())
