"""Points per the 蓝山县 rules (seed 002): per order, per agent and month, paid per quarter."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from dispatcher.core.points import (
    PointsRecord,
    Rating,
    month_of,
    monthly_totals,
    order_points,
    quarter_of,
    quarterly_payouts,
    yuan,
)
from dispatcher.core.workdays import CHINA

R = Rating


@pytest.mark.parametrize(
    ("item_class", "rating", "points"),
    [
        (1, None, "1.5"),  # closed unrated: the base points
        (2, None, "2"),
        (1, R.SATISFIED, "2.5"),  # 满意 adds 1
        (2, R.VERY_SATISFIED, "3"),  # 非常满意 too
        (1, R.FAIR, "1.5"),  # 一般 adds nothing
        (2, R.FAIR, "2"),
        (1, R.UNSATISFIED, "0"),  # 不满意: the whole order is worth 0
        (2, R.UNSATISFIED, "0"),
    ],
)
def test_order_points_follow_the_seed(item_class: int, rating: Rating | None, points: str) -> None:
    assert order_points(item_class, rating) == Decimal(points)


@pytest.mark.parametrize("item_class", [0, 3])
def test_only_class_1_and_2_earn_points(item_class: int) -> None:
    with pytest.raises(ValueError):
        order_points(item_class, None)


def test_one_point_is_ten_yuan() -> None:
    assert yuan(Decimal(1)) == Decimal(10)
    assert yuan(order_points(1, R.SATISFIED)) == Decimal(25)


def test_ratings_read_codes_and_chinese_labels() -> None:
    assert [r.label for r in Rating] == ["非常满意", "满意", "一般", "不满意"]
    assert Rating.parse("满意") is R.SATISFIED and Rating.parse("fair") is R.FAIR
    with pytest.raises(ValueError):
        Rating.parse("还行")


def test_monthly_totals_per_agent_are_exact_decimals() -> None:
    records = [
        PointsRecord(1, "2026-04", 1, R.SATISFIED),  # 2.5
        PointsRecord(1, "2026-04", 2, R.UNSATISFIED),  # 0
        PointsRecord(1, "2026-04", 2, R.FAIR),  # 2
        PointsRecord(1, "2026-05", 1, None),  # 1.5
        PointsRecord(1, "2026-05", 1, None),  # 1.5
        PointsRecord(1, "2026-05", 1, None),  # 1.5
        PointsRecord(2, "2026-04", 1, R.UNSATISFIED),  # 0, but listed
    ]
    assert monthly_totals(records) == {
        (1, "2026-04"): Decimal("4.5"),
        (1, "2026-05"): Decimal("4.5"),
        (2, "2026-04"): Decimal(0),
    }


def test_quarter_of_month() -> None:
    assert [quarter_of(f"2026-{m:02}") for m in (1, 3, 4, 6, 7, 9, 10, 12)] == [
        "2026-Q1", "2026-Q1", "2026-Q2", "2026-Q2", "2026-Q3", "2026-Q3", "2026-Q4", "2026-Q4",
    ]  # fmt: skip


@pytest.mark.parametrize("month", ["2026-13", "2026-4", "202604", "2026-00"])
def test_malformed_months_are_refused(month: str) -> None:
    with pytest.raises(ValueError):
        quarter_of(month)
    with pytest.raises(ValueError):
        monthly_totals([PointsRecord(1, month, 1, None)])


def test_quarterly_payout_sums_the_months_of_each_quarter_in_yuan() -> None:
    monthly = {
        (1, "2026-04"): Decimal("4.5"),
        (1, "2026-06"): Decimal("3"),
        (1, "2026-07"): Decimal("2"),
        (2, "2026-05"): Decimal("0"),
    }
    assert quarterly_payouts(monthly) == {
        (1, "2026-Q2"): Decimal("75"),
        (1, "2026-Q3"): Decimal("20"),
        (2, "2026-Q2"): Decimal("0"),
    }


def test_the_month_of_an_order_is_taken_in_beijing_time() -> None:
    late = dt.datetime(2026, 3, 31, 23, 30, tzinfo=CHINA)
    after_midnight = dt.datetime(2026, 4, 1, 0, 30, tzinfo=CHINA)  # still March 31 in UTC
    assert month_of(int(late.timestamp() * 1000)) == "2026-03"
    assert month_of(int(after_midnight.timestamp() * 1000)) == "2026-04"
    assert month_of(int(after_midnight.timestamp() * 1000), dt.UTC) == "2026-03"
