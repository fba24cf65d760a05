"""An election's publication rules: window, update period, budgets and naming.

Times in config files are local wall-clock times in the election's time zone,
as the calls state them ("18:00 horas (hora local)"). Internally every instant
is time-zone aware; periods are stepped in absolute time from the window start,
so a daylight-saving change never creates or loses a period.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prep_iac.models.loading import Loc, fail_fields

MINUTES_PER_DAY = 24 * 60
UTC = ZoneInfo("UTC")


class Entity(BaseModel):
    """The federal entity (state) whose electoral body runs the PREP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Official name, e.g. 'Coahuila de Zaragoza'.")
    code: str = Field(pattern=r"^[A-Z]{2,6}$", description="Short code used in file names: COAH.")
    id: int = Field(ge=1, le=32, description="INE entity number (Coahuila is 5).")
    municipalities: int = Field(ge=1, description="Municipalities (ayuntamientos) in the entity.")
    local_districts: int = Field(ge=1, description="Local electoral districts.")


class Contest(BaseModel):
    """One contest on the ballot (ayuntamientos, gubernatura, diputaciones locales)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Literal["AYUN", "GOB", "DIP_LOC"] = Field(description="Code used in PREP file names.")
    name: str = Field(description="Name as the CSV preamble states it, e.g. 'AYUNTAMIENTOS'.")


class CallReference(BaseModel):
    """Where an election's rules come from, so reports can cite them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    document: str = Field(description="The call, e.g. 'IEC/CG/153/2017'.")
    clauses: dict[str, str] = Field(
        default_factory=dict, description="Rule name to the clause stating it, e.g. period: 'III'."
    )


class Election(BaseModel):
    """A PREP publication: what the IEC promises difusores, and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Preset name, e.g. coahuila-2018.")
    name: str = Field(description="Human name of the electoral process.")
    body: str = Field(description="The electoral body running the PREP.")
    entity: Entity
    contests: list[Contest] = Field(min_length=1)
    year: int = Field(ge=2000, le=2100, description="Election year, used in CSV names.")
    timezone: str = Field(description="IANA time zone of the entity, e.g. America/Monterrey.")
    election_day: date
    publication_start: datetime = Field(description="Local wall-clock start of publication.")
    publication_end: datetime = Field(
        description="Local wall-clock end, at least as the call says."
    )
    update_period_minutes: int = Field(
        gt=0,
        description="Minutes between cuts; must divide a day so cuts fall on the same clock times.",
    )
    transfer_budget_seconds: int = Field(
        default=180, gt=0, description="Longest a push may take (clause II.b.2: 3 minutes)."
    )
    strike_limit: int = Field(
        default=3,
        ge=1,
        description="Consecutive failed periods before a difusor is disabled (III).",
    )
    package_size_mb: tuple[float, float] = Field(
        default=(30.0, 35.0), description="Expected size range of one cut, in MB (II.b.2)."
    )
    link_mbps: float = Field(default=10.0, gt=0, description="Minimum symmetric link (II.b.1).")
    transport: Literal["sftp"] = Field(
        default="sftp",
        description="Only SFTP: plain FTP (allowed in 2017) sends credentials and cuts in clear.",
    )
    csv_offset_label: str = Field(
        default="UTC-6",
        pattern=r"^UTC[+-]\d{1,2}$",
        description="Offset label the PREP CSV states next to local times.",
    )
    call: CallReference

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "an IANA time zone name such as 'America/Monterrey'"
                f" ({len(available_timezones())} known here)"
            ) from None
        return value

    @field_validator("publication_start", "publication_end")
    @classmethod
    def _local_wall_clock(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError(
                "a local wall-clock time without offset (the zone comes from 'timezone')"
            )
        return value

    @field_validator("update_period_minutes")
    @classmethod
    def _period_divides_day(cls, value: int) -> int:
        if MINUTES_PER_DAY % value:
            raise ValueError(
                f"a period that divides 1440 minutes evenly (5, 10, 15, 20, 30, 60...), not {value}"
            )
        return value

    @field_validator("package_size_mb")
    @classmethod
    def _size_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high:
            raise ValueError("a range [low, high] with 0 < low <= high")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Election:
        problems: list[tuple[Loc, object, str]] = []
        if self.publication_end <= self.publication_start:
            problems.append(
                (
                    ("publication_end",),
                    self.publication_end,
                    f"a time after publication_start ({self.publication_start})",
                )
            )
        if self.publication_start.date() < self.election_day:
            problems.append(
                (
                    ("publication_start",),
                    self.publication_start,
                    f"a time on or after election_day ({self.election_day})",
                )
            )
        if self.transfer_budget_seconds >= self.update_period_minutes * 60:
            problems.append(
                (
                    ("transfer_budget_seconds",),
                    self.transfer_budget_seconds,
                    f"less than the update period ({self.update_period_minutes * 60} s)",
                )
            )
        fail_fields(type(self).__name__, problems)
        return self

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def period(self) -> timedelta:
        return timedelta(minutes=self.update_period_minutes)

    @property
    def transfer_budget(self) -> timedelta:
        return timedelta(seconds=self.transfer_budget_seconds)

    @property
    def window_start(self) -> datetime:
        return self.publication_start.replace(tzinfo=self.tz)

    @property
    def window_end(self) -> datetime:
        return self.publication_end.replace(tzinfo=self.tz)

    @property
    def primary_contest(self) -> Contest:
        return self.contests[0]

    def cut_times(self, count: int | None = None) -> Iterator[datetime]:
        """Cut instants from the window start, one per period, inside the window."""
        utc_start = self.window_start.astimezone(UTC)
        index = 0
        while count is None or index < count:
            at = (utc_start + index * self.period).astimezone(self.tz)
            if at > self.window_end:
                return
            yield at
            index += 1

    def stated_instant(
        self, local: datetime, offset_label: str, after: datetime | None = None
    ) -> datetime:
        """The instant a cut's CSV means by the wall-clock ``local`` and ``(offset_label)``.

        The zone decides alone except in the hour a fall-back repeats, where
        one wall-clock time names two instants (the first pass, ``fold=0``, and
        the second, ``fold=1``, whose cut id takes the ``b`` suffix):

        + offset_label: picks one of the two when it states that one's real
          offset and is not the election's ``csv_offset_label`` (the PREP may
          write that label all year, so it says nothing about daylight saving)
        + after: otherwise the previous cut's instant: the first of the two at
          or after it (a cut is never older than the one before it); the first
          pass when there is none

        A wall-clock time the zone skips (spring forward) or a label that is
        neither ``csv_offset_label`` nor an offset the zone has at that time is
        refused (``ValueError``).

        **Example:** in America/Monterrey on 29 Oct 2017, ``01:10 (UTC-6)``
        after the cut of ``01:50`` CDT is 01:10 CST, cut ``20171029_0110b``.
        """
        if local.tzinfo is not None:
            raise ValueError(f"{local.isoformat()}: expected a wall-clock time without offset")
        first, second = (local.replace(tzinfo=self.tz, fold=fold) for fold in (0, 1))
        if first.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None) != local:
            raise ValueError(f"{local:%d/%m/%Y %H:%M} does not exist in {self.timezone}")
        stated = _label_offset(offset_label)
        real = {first.utcoffset(), second.utcoffset()}
        if offset_label != self.csv_offset_label and stated not in real:
            offsets = ", ".join(sorted(_offset_label(o) for o in real if o is not None))
            raise ValueError(
                f"{local:%d/%m/%Y %H:%M} ({offset_label}): expected ({self.csv_offset_label})"
                f" or the offset {self.timezone} has then ({offsets})"
            )
        if first.utcoffset() == second.utcoffset():
            return first
        if offset_label != self.csv_offset_label:
            return first if stated == first.utcoffset() else second
        if after is None or first.astimezone(UTC) >= after.astimezone(UTC):
            return first
        return second

    def cut_id(self, when: datetime) -> str:
        """Cut id from the local wall clock, ``YYYYMMDD_HHMM``.

        In the repeated hour when daylight saving ends, the second occurrence
        gets a ``b`` suffix so ids stay unique; they are not in time order there
        (``0100b`` comes after ``0150``), so order cuts by their time, never by id.
        """
        local = when.astimezone(self.tz)
        suffix = "b" if local.fold else ""
        return local.strftime("%Y%m%d_%H%M") + suffix

    def download_zip_name(self, when: datetime, contest: Contest | None = None) -> str:
        """``YYYYMMDD_HHMM_PREP_AYUN_COAH.zip`` for a cut at ``when``."""
        code = (contest or self.primary_contest).code
        return f"{self.cut_id(when)}_PREP_{code}_{self.entity.code}.zip"

    def results_csv_name(self, contest: Contest | None = None) -> str:
        """``COAH_AYUN_2018.csv``."""
        code = (contest or self.primary_contest).code
        return f"{self.entity.code}_{code}_{self.year}.csv"


def _label_offset(label: str) -> timedelta | None:
    """``UTC-6`` as an offset; None for a label that is not of that form."""
    match = re.fullmatch(r"UTC([+-])(\d{1,2})", label)
    if match is None:
        return None
    hours = timedelta(hours=int(match[2]))
    return -hours if match[1] == "-" else hours


def _offset_label(offset: timedelta) -> str:
    hours = int(offset.total_seconds() // 3600)
    return f"UTC{hours:+d}"
