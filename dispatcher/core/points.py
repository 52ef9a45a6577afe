"""Ratings and points (积分): what an order earns its agent, per the 蓝山县 rules (seed 002).

- A class-1 order (一类事项) earns 1.5 points, a class-2 order (二类事项) 2 points.
- A satisfied rating (非常满意 or 满意) adds 1 point; 一般 adds nothing; 不满意 makes the whole
  order worth 0.  An order closed unrated (the applicant never rated it) earns its base points.
- 1 point = 10 yuan.  Points are totalled per agent per month, from the records of orders closed
  that month (local time), and paid out per quarter.

Only closed orders earn points; a cancelled order earns nothing and is not a record.  All
arithmetic is :class:`~decimal.Decimal`, so 1.5 + 1.5 is exactly 3.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from dispatcher.core.workdays import CHINA

CLASS_POINTS: dict[int, Decimal] = {1: Decimal("1.5"), 2: Decimal("2")}
SATISFIED_BONUS = Decimal("1")
YUAN_PER_POINT = Decimal("10")
_MONTH_RE = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


class Rating(enum.StrEnum):
    """The one-order-one-rating scale (一事一评).  Codes on the wire; ``label`` for people."""

    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    FAIR = "fair"
    UNSATISFIED = "unsatisfied"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def is_satisfied(self) -> bool:
        return self in (Rating.VERY_SATISFIED, Rating.SATISFIED)

    @classmethod
    def parse(cls, value: str) -> Rating:
        """A rating from its code or its Chinese label (``满意``).  Raises ``ValueError``."""
        for rating in cls:
            if value in (rating.value, rating.label):
                return rating
        raise ValueError(f"unknown rating {value!r}")


_LABELS = {
    Rating.VERY_SATISFIED: "非常满意",
    Rating.SATISFIED: "满意",
    Rating.FAIR: "一般",
    Rating.UNSATISFIED: "不满意",
}


@dataclass(frozen=True, slots=True)
class PointsRecord:
    """One closed order as points see it: ``month`` (``YYYY-MM``) is when it closed."""

    agent_id: int
    month: str
    item_class: int
    rating: Rating | None  # None: closed unrated


def order_points(item_class: int, rating: Rating | None) -> Decimal:
    """The points one closed order earns.  Raises ``ValueError`` for a class other than 1 or 2."""
    if item_class not in CLASS_POINTS:
        raise ValueError(f"item_class must be 1 or 2, got {item_class!r}")
    if rating is Rating.UNSATISFIED:
        return Decimal(0)
    bonus = SATISFIED_BONUS if rating is not None and rating.is_satisfied else Decimal(0)
    return CLASS_POINTS[item_class] + bonus


def yuan(points: Decimal) -> Decimal:
    """The money ``points`` are worth (1 point = 10 yuan)."""
    return points * YUAN_PER_POINT


def month_of(at_ms: int, tz: dt.tzinfo = CHINA) -> str:
    """The local ``YYYY-MM`` of an epoch-millisecond time (an order closed at 23:30 on the 31st
    belongs to that month, even though it is already the 1st in UTC)."""
    return dt.datetime.fromtimestamp(at_ms // 1000, tz).strftime("%Y-%m")


def quarter_of(month: str) -> str:
    """``'2026-05'`` → ``'2026-Q2'``.  Raises ``ValueError`` for anything but ``YYYY-MM``."""
    m = _MONTH_RE.match(month)
    if m is None:
        raise ValueError(f"month must be YYYY-MM, got {month!r}")
    return f"{m.group(1)}-Q{(int(m.group(2)) - 1) // 3 + 1}"


def monthly_totals(records: Iterable[PointsRecord]) -> dict[tuple[int, str], Decimal]:
    """Points per (agent id, month).  An agent whose orders all earned 0 is listed with 0.

    Raises ``ValueError`` for a malformed month or class (the records are the payroll's input:
    better to stop than to pay a wrong sum).
    """
    totals: dict[tuple[int, str], Decimal] = {}
    for r in records:
        quarter_of(r.month)  # checks the month
        key = (r.agent_id, r.month)
        totals[key] = totals.get(key, Decimal(0)) + order_points(r.item_class, r.rating)
    return totals


def quarterly_payouts(monthly: Mapping[tuple[int, str], Decimal]) -> dict[tuple[int, str], Decimal]:
    """Yuan to pay per (agent id, ``YYYY-Qn``), from :func:`monthly_totals`."""
    payouts: dict[tuple[int, str], Decimal] = {}
    for (agent_id, month), points in monthly.items():
        key = (agent_id, quarter_of(month))
        payouts[key] = payouts.get(key, Decimal(0)) + yuan(points)
    return payouts
