"""The working-day calendar: weekends, holidays, make-up working days, due dates."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from dispatcher.core.workdays import CHINA, DEFAULT_PATH, load_calendar, parse_calendar
from dispatcher.exceptions import CalendarError, ConfigError

CAL = load_calendar()
D = dt.date


def at(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> int:
    """Epoch ms of a Beijing local time."""
    return int(dt.datetime(y, m, d, hh, mm, tzinfo=CHINA).timestamp()) * 1000


def end_of(y: int, m: int, d: int, tz: dt.tzinfo = CHINA) -> int:
    return int(dt.datetime(y, m, d, 23, 59, 59, 999_000, tzinfo=tz).timestamp() * 1000)


def test_weekdays_work_and_weekends_rest() -> None:
    assert CAL.is_working_day(D(2026, 3, 6))  # Friday
    assert not CAL.is_working_day(D(2026, 3, 7)) and not CAL.is_working_day(D(2026, 3, 8))


def test_public_holidays_rest_even_on_weekdays() -> None:
    assert not CAL.is_working_day(D(2026, 2, 16))  # Monday of 春节
    assert not CAL.is_working_day(D(2026, 10, 1))  # 国庆
    assert not CAL.is_working_day(D(2025, 10, 8))  # 国庆、中秋 2025, a Wednesday
    assert CAL.holidays[D(2026, 6, 19)] == "端午节"


def test_make_up_weekend_days_are_working_days() -> None:
    assert CAL.is_working_day(D(2026, 2, 14))  # Saturday before 春节
    assert CAL.is_working_day(D(2026, 1, 4))  # Sunday after 元旦
    assert CAL.is_working_day(D(2025, 1, 26))
    assert CAL.workdays[D(2026, 9, 20)] == "国庆节调休"


def test_working_days_per_year_of_the_shipped_file() -> None:
    """365 days - 104 weekend days - weekday holidays + make-up days (counted by hand)."""
    for year, expected in ((2025, 365 - 104 - 18 + 5), (2026, 365 - 104 - 19 + 6)):
        days = (D(year, 1, 1) + dt.timedelta(days=i) for i in range(365))
        assert sum(CAL.is_working_day(day) for day in days) == expected


def test_due_is_end_of_the_nth_working_day_after_the_accept_day() -> None:
    assert CAL.add_working_days(at(2026, 3, 6, 16), 1) == end_of(2026, 3, 9)  # Fri → Mon
    assert CAL.add_working_days(at(2026, 3, 2), 5) == end_of(2026, 3, 9)  # Mon → next Mon
    assert CAL.add_working_days(at(2026, 3, 7), 1) == end_of(2026, 3, 9)  # accepted on Saturday


def test_zero_days_is_the_end_of_the_accept_day() -> None:
    assert CAL.add_working_days(at(2026, 3, 7, 8), 0) == end_of(2026, 3, 7)


def test_due_skips_holidays_and_counts_make_up_days() -> None:
    assert CAL.add_working_days(at(2026, 2, 13), 1) == end_of(2026, 2, 14)  # 调休 Saturday
    assert CAL.add_working_days(at(2026, 2, 13), 2) == end_of(2026, 2, 24)  # after 春节
    assert CAL.add_working_days(at(2025, 9, 30), 1) == end_of(2025, 10, 9)
    assert CAL.add_working_days(at(2025, 9, 30), 3) == end_of(2025, 10, 11)  # 调休 Saturday


def test_due_across_the_new_year() -> None:
    # 2026-01-01..03 are 元旦 and Sunday 01-04 is worked instead.
    assert CAL.add_working_days(at(2025, 12, 31), 1) == end_of(2026, 1, 4)
    assert CAL.add_working_days(at(2025, 12, 30), 3) == end_of(2026, 1, 5)


def test_the_accept_day_is_taken_in_local_time() -> None:
    start = at(2026, 3, 6, 0, 30)  # Friday 00:30 in Beijing, still Thursday in UTC
    assert CAL.add_working_days(start, 1) == end_of(2026, 3, 9)
    assert CAL.add_working_days(start, 1, tz=dt.UTC) == end_of(2026, 3, 6, dt.UTC)


def test_years_not_listed_count_weekends_only() -> None:
    assert not CAL.covers(D(2027, 1, 1)) and CAL.covers(D(2026, 12, 31))
    assert CAL.is_working_day(D(2027, 10, 1))  # nobody has published 2027 yet
    assert CAL.add_working_days(at(2027, 1, 1), 1) == end_of(2027, 1, 4)  # Fri → Mon


def test_n_out_of_range_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        CAL.add_working_days(at(2026, 3, 6), -1)


def test_operators_load_their_own_file(tmp_path: Path) -> None:
    doc = {
        "years": [2030],
        "holidays": [{"name": "县庆", "start": "2030-05-06", "end": "2030-05-06"}],
    }
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    cal = load_calendar(path)
    assert not cal.is_working_day(D(2030, 5, 6)) and cal.tz == CHINA


def _shipped() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    return data


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target: Any = doc
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    target[int(last) if last.isdigit() else last] = value


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("colour", "red", "colour"),
        ("timezone", "Mars/Olympus", "timezone"),
        ("weekend", [1, 2, 3, 4, 5, 6, 7], "weekend"),
        ("weekend", [0], "weekend"),
        ("years", "2026", "years"),
        ("holidays", {}, "holidays"),
        ("holidays.0", "元旦", "holidays[0]"),
        ("holidays.0.name", "", "holidays[0].name"),
        ("holidays.0.start", "2025/01/01", "holidays[0].start"),
        ("holidays.1.end", "2025-01-27", "holidays[1].end"),  # before its start
        ("holidays.1.end", "2025-03-30", "holidays[1].end"),  # longer than a month
        ("holidays.0.start", "2024-12-31", "holidays[0].start"),  # a year not listed
        ("workdays.0.date", "2025-01-27", "workdays[0].date"),  # a Monday
        ("workdays.0.date", "2025-02-01", "workdays[0].date"),  # a Saturday of 春节
    ],
)
def test_malformed_files_are_refused_naming_the_field(path: str, value: Any, field: str) -> None:
    doc = copy.deepcopy(_shipped())
    _set(doc, path, value)
    with pytest.raises(CalendarError) as caught:
        parse_calendar(doc)
    assert caught.value.field == field and isinstance(caught.value, ConfigError)


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calendar.json"
    path.write_text("{'years': [2026]}", encoding="utf-8")
    with pytest.raises(CalendarError, match="not valid JSON"):
        load_calendar(path)
    with pytest.raises(CalendarError):
        parse_calendar([2026])
