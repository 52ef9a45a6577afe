"""Working days (工作日): weekends, public holidays and make-up working days (调休).

A catalogue item promises completion within so many *working* days (限时办结).  Which days
are working days in China changes every year: the State Council publishes the holidays and the
weekend days worked in their place each November.  They live in a data file that operators
edit (``dispatcher/core/data/calendar.json``), not in code::

    {"timezone": "Asia/Shanghai", "weekend": [6, 7], "years": [2025, 2026],
     "holidays": [{"name": "春节", "start": "2026-02-15", "end": "2026-02-23"}, ...],
     "workdays": [{"name": "春节调休", "date": "2026-02-14"}, ...]}

``weekend`` holds ISO weekdays (6 = Saturday).  A ``workdays`` date must be a weekend day and a
holiday date must not be one of them.  Outside the ``years`` listed only weekends count, so a
file nobody updated degrades gracefully; :meth:`Calendar.covers` tells the shell when to warn.

Everything here is pure: :func:`load_calendar` reads the file once at start-up and the
:class:`Calendar` it returns answers from memory.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dispatcher.exceptions import CalendarError

DEFAULT_PATH = Path(__file__).parent / "data" / "calendar.json"
CHINA = ZoneInfo("Asia/Shanghai")
MAX_HOLIDAY_DAYS = 31  # one holiday entry; anything longer is surely a typo
MAX_WORKING_DAYS = 366  # the largest n add_working_days accepts
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Calendar:
    """Which local dates are working days.  Build with :func:`load_calendar`."""

    tz: ZoneInfo
    weekend: frozenset[int]
    years: frozenset[int]
    holidays: Mapping[dt.date, str]  # date -> holiday name
    workdays: Mapping[dt.date, str]  # weekend date worked instead (调休) -> name

    def covers(self, day: dt.date) -> bool:
        """Does the file list the holidays of ``day``'s year?  If not, only weekends count."""
        return day.year in self.years

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        return day not in self.holidays and day.isoweekday() not in self.weekend

    def add_working_days(self, start_ms: int, n: int, tz: dt.tzinfo | None = None) -> int:
        """The end of the ``n``-th working day after the local date of ``start_ms`` (epoch ms).

        The day of ``start_ms`` itself never counts, whatever its kind: accepted on a Friday
        with a limit of 1, an order is due at the end of Monday (if Monday is a working day).
        ``n == 0`` means the end of the start day itself (即办件, done on the spot).  "End" is
        the last millisecond, 23:59:59.999 local time: an order is overdue once ``now`` is
        greater than the result.  ``tz`` defaults to the calendar's time zone.
        """
        if not 0 <= n <= MAX_WORKING_DAYS:
            raise ValueError(f"n must be between 0 and {MAX_WORKING_DAYS}, got {n}")
        zone = tz or self.tz
        day = dt.datetime.fromtimestamp(start_ms // 1000, zone).date()
        counted = 0
        while counted < n:
            day += _DAY
            counted += self.is_working_day(day)
        midnight = dt.datetime.combine(day + _DAY, dt.time(), tzinfo=zone)
        return int(midnight.timestamp()) * 1000 - 1


def load_calendar(path: str | Path | None = None) -> Calendar:
    """Read and check a calendar file (default: the one shipped with the package).

    Raises :class:`CalendarError` when the content is malformed and ``OSError`` when the file
    cannot be read.
    """
    text = Path(path or DEFAULT_PATH).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CalendarError("$", f"not valid JSON ({e})") from None
    return parse_calendar(data)


def parse_calendar(data: Any) -> Calendar:
    """Check a decoded calendar document and build the :class:`Calendar`."""
    if not isinstance(data, dict):
        raise CalendarError("$", "must be an object")
    unknown = sorted(set(data) - {"note", "timezone", "weekend", "years", "holidays", "workdays"})
    if unknown:
        raise CalendarError(unknown[0], "unknown field")
    try:
        tz = ZoneInfo(_str(data.get("timezone", "Asia/Shanghai"), "timezone"))
    except (ValueError, LookupError):
        raise CalendarError("timezone", "unknown time zone") from None
    weekend = _ints(data.get("weekend", [6, 7]), "weekend", 1, 7)
    if len(weekend) > 6:
        raise CalendarError("weekend", "at least one day of the week must be a working day")
    years = _ints(data.get("years"), "years", 2000, 2100)
    holidays: dict[dt.date, str] = {}
    for i, entry in enumerate(_list(data.get("holidays", []), "holidays")):
        where = f"holidays[{i}]"
        name = _name(entry, where)
        start, end = _date(entry, "start", where, years), _date(entry, "end", where, years)
        if not start <= end <= start + dt.timedelta(days=MAX_HOLIDAY_DAYS - 1):
            raise CalendarError(
                f"{where}.end", f"must be 0 to {MAX_HOLIDAY_DAYS - 1} days after start"
            )
        while start <= end:
            holidays[start] = name
            start += _DAY
    workdays: dict[dt.date, str] = {}
    for i, entry in enumerate(_list(data.get("workdays", []), "workdays")):
        where = f"workdays[{i}]"
        name, day = _name(entry, where), _date(entry, "date", where, years)
        if day.isoweekday() not in weekend:
            raise CalendarError(
                f"{where}.date", f"{day} is not a weekend day; only those are made up"
            )
        if day in holidays:
            raise CalendarError(f"{where}.date", f"{day} is also a holiday ({holidays[day]})")
        workdays[day] = name
    return Calendar(tz, weekend, years, holidays, workdays)


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise CalendarError(field, "must be a list")
    return value


def _str(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CalendarError(field, "must be a non-empty string")
    return value.strip()


def _ints(value: Any, field: str, lo: int, hi: int) -> frozenset[int]:
    items = _list(value, field)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise CalendarError(field, f"must hold whole numbers from {lo} to {hi}")
    return frozenset(items)


def _name(entry: Any, where: str) -> str:
    if not isinstance(entry, dict):
        raise CalendarError(where, "must be an object")
    return _str(entry.get("name"), f"{where}.name")


def _date(entry: dict[str, Any], key: str, where: str, years: frozenset[int]) -> dt.date:
    raw = _str(entry.get(key), f"{where}.{key}")
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise CalendarError(f"{where}.{key}", f"{raw!r} is not a date (YYYY-MM-DD)") from None
    if day.year not in years:
        raise CalendarError(f"{where}.{key}", f"{day} is outside the years listed")
    return day
