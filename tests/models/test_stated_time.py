"""Placing a CSV's wall-clock cut time in the election's zone (``Election.stated_instant``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from prep_iac.models.election import Election
from prep_iac.presets import load_election

FIRST_PASS_0150 = datetime(2018, 10, 28, 6, 50, tzinfo=UTC)  # 01:50 CDT, before the fall-back


@pytest.fixture
def election() -> Election:
    return load_election("coahuila-2018")  # America/Monterrey, label UTC-6 all year


def utc(when: datetime) -> datetime:
    return when.astimezone(UTC)


def test_repeated_hour_is_the_first_pass_until_the_previous_cut_is_past_it(
    election: Election,
) -> None:
    one_ten = datetime(2018, 10, 28, 1, 10)
    assert utc(election.stated_instant(one_ten, "UTC-6")) == datetime(
        2018, 10, 28, 6, 10, tzinfo=UTC
    )
    second = election.stated_instant(one_ten, "UTC-6", after=FIRST_PASS_0150)
    assert utc(second) == datetime(2018, 10, 28, 7, 10, tzinfo=UTC)
    assert election.cut_id(second) == "20181028_0110b"
    # The same cut read again (a copy of the previous one) is not pushed into the second pass.
    again = election.stated_instant(datetime(2018, 10, 28, 1, 50), "UTC-6", after=FIRST_PASS_0150)
    assert utc(again) == FIRST_PASS_0150


def test_a_real_offset_in_the_label_decides_the_pass(election: Election) -> None:
    one_ten = datetime(2018, 10, 28, 1, 10)
    assert election.cut_id(election.stated_instant(one_ten, "UTC-5", FIRST_PASS_0150)) == (
        "20181028_0110"
    )
    custom = election.model_copy(update={"csv_offset_label": "UTC-0"})
    assert custom.cut_id(custom.stated_instant(one_ten, "UTC-6")) == "20181028_0110b"


def test_outside_a_fall_back_the_zone_decides_whatever_the_fixed_label(
    election: Election,
) -> None:
    july = election.stated_instant(datetime(2018, 7, 1, 20, 0), "UTC-6")
    assert utc(july) == datetime(2018, 7, 2, 1, 0, tzinfo=UTC)  # CDT, UTC-5
    assert election.stated_instant(datetime(2018, 7, 1, 20, 0), "UTC-5") == july


def test_a_time_the_zone_skips_or_an_offset_it_does_not_have_is_refused(
    election: Election,
) -> None:
    with pytest.raises(ValueError, match=r"01/04/2018 02:30 does not exist in America/Monterrey"):
        election.stated_instant(datetime(2018, 4, 1, 2, 30), "UTC-6")
    with pytest.raises(
        ValueError, match=r"\(UTC-7\): expected \(UTC-6\) or the offset .* \(UTC-5\)"
    ):
        election.stated_instant(datetime(2018, 7, 1, 20, 0), "UTC-7")
