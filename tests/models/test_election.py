"""Election presets and custom election files."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from prep_iac.models import ConfigError, Election
from prep_iac.orchestrate.schedule import PeriodClock
from prep_iac.presets import election_presets, load_election

UTC = ZoneInfo("UTC")


def write_variant(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load(Path(str(_preset_file("coahuila-2018"))).read_text())
    data.update(changes)
    path = tmp_path / "election.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def _preset_file(name: str) -> Path:
    import prep_iac.presets

    return Path(prep_iac.presets.__file__).parent / "elections" / f"{name}.yaml"


def test_both_calls_ship_as_presets() -> None:
    assert election_presets() == ["coahuila-2017", "coahuila-2018"]


def test_coahuila_2017_follows_its_call() -> None:
    e = load_election("coahuila-2017")
    assert e.update_period_minutes == 15
    assert e.publication_start == datetime(2017, 6, 4, 18, 0)
    assert e.publication_end == datetime(2017, 6, 7, 23, 59)
    assert [c.code for c in e.contests] == ["GOB", "DIP_LOC", "AYUN"]
    assert (e.strike_limit, e.transfer_budget_seconds, e.transport) == (3, 180, "sftp")
    assert e.call.document == "IEC/CG/153/2017"


def test_coahuila_2018_follows_its_call() -> None:
    e = load_election("coahuila-2018")
    assert e.update_period_minutes == 10
    assert e.publication_start == datetime(2018, 7, 1, 18, 0)
    assert e.publication_end == datetime(2018, 7, 10, 23, 59)
    assert e.timezone == "America/Monterrey"
    assert e.package_size_mb == (30.0, 35.0)


def test_cuts_fall_on_the_period_grid_of_the_local_clock() -> None:
    e = load_election("coahuila-2018")
    cuts = list(e.cut_times())
    assert e.cut_id(cuts[0]) == "20180701_1800"
    assert e.cut_id(cuts[1]) == "20180701_1810"
    assert e.cut_id(cuts[-1]) == "20180710_2350"
    assert all(b - a == timedelta(minutes=10) for a, b in itertools.pairwise(cuts))
    assert e.download_zip_name(cuts[12]) == "20180701_2000_PREP_AYUN_COAH.zip"
    assert e.results_csv_name() == "COAH_AYUN_2018.csv"


def test_a_moment_belongs_to_the_period_on_the_grid_before_it() -> None:
    e = load_election("coahuila-2018")
    clock = PeriodClock(e)
    period = clock.period_at(datetime(2018, 7, 1, 20, 7, 30, tzinfo=e.tz))
    assert period is not None and period.cut_id == "20180701_2000"
    assert clock.period_at(datetime(2018, 7, 1, 17, 59, tzinfo=e.tz)) is None


def test_daylight_saving_end_neither_loses_nor_repeats_a_cut(tmp_path: Path) -> None:
    # Monterrey left daylight saving on 2018-10-28 at 02:00 local (back to 01:00).
    path = write_variant(
        tmp_path,
        id="dst-test",
        election_day="2018-10-27",
        publication_start="2018-10-27T18:00:00",
        publication_end="2018-10-28T06:00:00",
    )
    e = load_election(path)
    cuts = list(e.cut_times())
    # 12 wall-clock hours plus the repeated hour: 13 h of 10-minute periods, plus the last.
    assert len(cuts) == 13 * 6 + 1
    ids = [e.cut_id(c) for c in cuts]
    assert len(set(ids)) == len(ids)
    assert "20181028_0110" in ids and "20181028_0110b" in ids
    # The second 01:05 belongs to the second 01:00 period, not to the first one.
    clock = PeriodClock(e)
    second_0105 = datetime(2018, 10, 28, 1, 5, tzinfo=e.tz, fold=1)
    assert getattr(clock.period_at(second_0105), "cut_id", None) == "20181028_0100b"
    assert getattr(clock.period_at(second_0105.replace(fold=0)), "cut_id", None) == "20181028_0100"
    instants = [c.astimezone(UTC) for c in cuts]
    assert all(b - a == timedelta(minutes=10) for a, b in itertools.pairwise(instants))


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        (
            {"publication_end": "2018-07-01T12:00:00"},
            "publication_end",
            "a time after publication_start",
        ),
        ({"update_period_minutes": 0}, "update_period_minutes", "greater than 0"),
        ({"update_period_minutes": 7}, "update_period_minutes", "divides 1440 minutes"),
        ({"timezone": "America/Saltillo"}, "timezone", "IANA time zone"),
        (
            {"transfer_budget_seconds": 900},
            "transfer_budget_seconds",
            "less than the update period",
        ),
        ({"transport": "ftp"}, "transport", "'sftp'"),
        (
            {"publication_start": "2018-07-01T18:00:00-05:00"},
            "publication_start",
            "local wall-clock",
        ),
    ],
)
def test_bad_election_names_file_field_value_and_expectation(
    tmp_path: Path, changes: dict[str, object], field: str, expected: str
) -> None:
    path = write_variant(tmp_path, **changes)
    with pytest.raises(ConfigError) as info:
        load_election(path)
    [problem] = info.value.problems
    assert problem.source == str(path)
    assert problem.field == field
    assert expected in problem.expected
    assert problem.line is not None
    assert path.read_text().splitlines()[problem.line - 1].startswith(field)
    assert str(path) in str(info.value)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write_variant(tmp_path, update_period_minutes=0, timezone="Mars/Olympus", strike_limit=0)
    with pytest.raises(ConfigError) as info:
        load_election(path)
    assert sorted(p.field for p in info.value.problems) == [
        "strike_limit",
        "timezone",
        "update_period_minutes",
    ]


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="coahuila-2017, coahuila-2018"):
        load_election("coahuila-2099")


def test_invalid_yaml_points_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\nname: [unclosed\nbody: y\n")
    with pytest.raises(ConfigError) as info:
        load_election(path)
    [problem] = info.value.problems
    assert problem.line == 3
    assert "invalid YAML" in problem.value


def test_election_round_trips_through_json() -> None:
    e = load_election("coahuila-2017")
    assert Election.model_validate_json(e.model_dump_json()) == e
