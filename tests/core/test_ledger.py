"""The points ledger: the rule per (class, rating), local-time months and quarters,
adjustments, and approval freezing a quarter."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from dispatcher.core import ledger as L
from dispatcher.core.ledger import Adjustment, Approval, OrderRecord
from dispatcher.core.points import Rating
from dispatcher.core.workdays import CHINA

R = Rating


def at(y: int, mo: int, d: int, h: int = 12, mi: int = 0) -> int:
    """Epoch ms of a Shanghai wall-clock time."""
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=CHINA).timestamp() * 1000)


def closed(
    oid: int,
    agent: int = 1,
    when: int | None = None,
    item_class: int | None = 1,
    rating: Rating | None = None,
    status: str = "closed",
    classified_at: int | None = None,
) -> OrderRecord:
    return OrderRecord(
        oid,
        agent,
        status,
        at(2026, 11, 10) if when is None and status == "closed" else when,
        item_class,
        rating,
        classified_at=classified_at,
    )


CASES = [
    (1, None, "1.5"),
    (1, R.VERY_SATISFIED, "2.5"),
    (1, R.SATISFIED, "2.5"),
    (1, R.FAIR, "1.5"),
    (1, R.UNSATISFIED, "0"),
    (2, None, "2"),
    (2, R.VERY_SATISFIED, "3"),
    (2, R.SATISFIED, "3"),
    (2, R.FAIR, "2"),
    (2, R.UNSATISFIED, "0"),
]


@pytest.mark.parametrize(("item_class", "rating", "points"), CASES)
def test_every_class_and_rating_earns_what_the_seed_says(
    item_class: int, rating: Rating | None, points: str
) -> None:
    line = L.order_line(closed(1, item_class=item_class, rating=rating))
    assert line is not None and line.points == Decimal(points) and line.month == "2026-11"


@pytest.mark.parametrize("rating", [None, *Rating])
def test_an_order_without_a_class_earns_nothing_and_needs_one(rating: Rating | None) -> None:
    order = closed(1, item_class=None, rating=rating)
    assert L.order_line(order) is None
    assert L.needs_class(order)


@pytest.mark.parametrize("status", ["cancelled", "offered", "claimed", "accepted", "replied"])
def test_only_closed_orders_earn(status: str) -> None:
    order = closed(1, status=status, when=None, rating=R.SATISFIED)
    assert L.order_line(order) is None and not L.needs_class(order)


def test_an_order_without_an_agent_earns_nothing() -> None:
    assert L.order_line(OrderRecord(1, None, "closed", at(2026, 11, 1), 1, None)) is None


@pytest.mark.parametrize(
    ("when", "month"),
    [
        (at(2026, 11, 30, 23, 30), "2026-11"),  # 15:30 UTC
        (at(2026, 12, 1, 0, 10), "2026-12"),  # still 30 November in UTC
        (at(2026, 12, 1, 0, 0), "2026-12"),  # the first instant of December
        (at(2026, 12, 1, 0, 0) - 1, "2026-11"),  # the last millisecond of November
        (at(2027, 1, 1, 0, 5), "2027-01"),
    ],
)
def test_an_order_earns_in_the_local_month_it_closed(when: int, month: str) -> None:
    line = L.order_line(closed(1, when=when))
    assert line is not None and line.month == month


def test_month_and_quarter_keys_and_bounds() -> None:
    assert L.month_key(at(2026, 11, 30, 23, 30)) == "2026-11"
    assert L.month_key(at(2026, 12, 1, 0, 10)) == "2026-12"
    assert [L.quarter_key(f"2026-{m:02}") for m in (1, 3, 4, 9, 10, 12)] == [
        "2026-Q1", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4", "2026-Q4",
    ]  # fmt: skip
    assert L.quarter_months("2026-Q4") == ("2026-10", "2026-11", "2026-12")
    assert L.month_bounds("2026-11") == (at(2026, 11, 1, 0), at(2026, 12, 1, 0))
    assert L.quarter_bounds("2026-Q4") == (at(2026, 10, 1, 0), at(2027, 1, 1, 0))
    # Shanghai midnight is 16:00 UTC the day before.
    start = dt.datetime.fromtimestamp(L.month_bounds("2026-12")[0] / 1000, dt.UTC)
    assert (start.day, start.hour) == (30, 16)
    assert not L.quarter_is_over("2026-Q4", at(2026, 12, 31, 23, 59))
    assert L.quarter_is_over("2026-Q4", at(2027, 1, 1, 0, 0))


@pytest.mark.parametrize("bad", ["2026-13", "2026-00", "26-11", "2026-1", "2026-11-01", ""])
def test_bad_months_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        L.parse_month(bad)


@pytest.mark.parametrize("bad", ["2026-Q0", "2026-Q5", "2026Q1", "2026-q1", "2026-Q12"])
def test_bad_quarters_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        L.parse_quarter(bad)


def test_monthly_totals_count_orders_unsatisfied_unrated_and_adjustments() -> None:
    orders = [
        closed(1, 1, item_class=1, rating=R.SATISFIED),  # 2.5
        closed(2, 1, item_class=2, rating=R.UNSATISFIED),  # 0
        closed(3, 1, item_class=2, rating=None),  # 2
        closed(4, 2, item_class=1, rating=R.FAIR),  # 1.5
        closed(5, 2, item_class=1, when=at(2026, 10, 31, 23, 59)),  # October
        closed(6, 2, status="cancelled", when=None),
    ]
    adj = [Adjustment(1, 2, "2026-11", Decimal("-0.5"), "迟报", "admin", at(2026, 11, 20))]
    lines = L.ledger(orders, adj)
    nov = L.monthly(lines, "2026-11")
    assert (nov[1].orders, nov[1].points, nov[1].unsatisfied, nov[1].unrated) == (
        3, Decimal("4.5"), 1, 1,
    )  # fmt: skip
    assert (nov[2].orders, nov[2].points, nov[2].adjustments) == (1, Decimal(1), Decimal("-0.5"))
    assert nov[1].yuan == Decimal(45) and nov[2].yuan == Decimal(10)
    assert L.monthly(lines, "2026-10")[2].points == Decimal("1.5")
    q = L.quarterly(lines, "2026-Q4")
    assert q[2].points == Decimal("2.5") and q[2].orders == 2


def test_an_adjustment_counts_in_its_month_while_the_quarter_is_open() -> None:
    adj = Adjustment(1, 1, "2026-11", Decimal("2.25"), "补录", "admin", at(2027, 1, 3))
    line = L.adjustment_line(adj, [Approval("2026-Q3", at(2026, 10, 5), "admin")])
    assert (line.month, line.moved_from) == ("2026-11", None)


def test_approval_freezes_the_quarter_and_later_changes_land_in_the_next_open_month() -> None:
    approved = Approval("2026-Q3", at(2026, 10, 5), "admin")
    before = Adjustment(1, 1, "2026-09", Decimal(1), "奖励", "admin", at(2026, 10, 2))
    after = Adjustment(2, 1, "2026-09", Decimal(-1), "更正", "admin", at(2026, 10, 8))
    late_class = closed(7, 1, when=at(2026, 9, 30, 23, 0), item_class=None)
    classified = closed(8, 1, when=at(2026, 9, 29), item_class=2, classified_at=at(2026, 11, 2))
    in_time = closed(9, 1, when=at(2026, 9, 28), item_class=1, classified_at=at(2026, 10, 1))
    lines = L.ledger([late_class, classified, in_time], [before, after], [approved])
    by_ref = {(ln.kind, ln.ref): ln for ln in lines}
    assert (by_ref["adjustment", 1].month, by_ref["adjustment", 1].moved_from) == ("2026-09", None)
    assert (by_ref["adjustment", 2].month, by_ref["adjustment", 2].moved_from) == (
        "2026-10", "2026-09",
    )  # fmt: skip
    assert (by_ref["order", 8].month, by_ref["order", 8].natural_month) == ("2026-11", "2026-09")
    assert by_ref["order", 8].moved_from == "2026-09"
    assert (by_ref["order", 9].month, by_ref["order", 9].moved_from) == ("2026-09", None)
    assert ("order", 7) not in by_ref  # no class yet
    # The frozen quarter's sum does not move; the changes are in Q4.
    assert L.quarterly(lines, "2026-Q3")[1].points == Decimal("2.5")  # 1.5 + 1
    assert L.quarterly(lines, "2026-Q4")[1].points == Decimal(1)  # -1 + 2


def test_what_the_approval_saw_equals_the_frozen_quarter_afterwards() -> None:
    """Approving computes the quarter at that time; nothing added later changes that sum."""
    orders = [closed(i, 1 + i % 2, when=at(2026, 8, i), item_class=1 + i % 2) for i in (1, 2, 3)]
    approval = Approval("2026-Q3", at(2026, 10, 1, 9), "admin")
    at_approval = L.quarterly(L.ledger(orders, [], []), "2026-Q3")
    later = [
        *orders,
        closed(10, 1, when=at(2026, 9, 3), item_class=None),
        closed(11, 1, when=at(2026, 9, 3), item_class=1, classified_at=at(2026, 10, 2)),
    ]
    adj = [Adjustment(1, 2, "2026-08", Decimal("5"), "补", "admin", at(2026, 10, 2))]
    after = L.quarterly(L.ledger(later, adj, [approval]), "2026-Q3")
    assert {a: t.points for a, t in after.items()} == {a: t.points for a, t in at_approval.items()}


def test_approval_needs_the_quarter_over_and_only_once() -> None:
    early = L.can_approve("2026-Q4", at(2026, 12, 31, 23), [])
    assert early == L.QuarterNotOver("2026-Q4")
    assert early.message == "2026-Q4 is not over yet (local time)" and early.status == 409
    assert L.can_approve("2026-Q4", at(2027, 1, 1, 0, 1), []) is None
    done = [Approval("2026-Q4", at(2027, 1, 2), "admin")]
    refusal = L.can_approve("2026-Q4", at(2027, 2, 1), done)
    assert refusal is not None and refusal.code == "already_approved"


@pytest.mark.parametrize(
    ("raw", "value"), [("1.5", "1.5"), ("-2", "-2"), ("0.25", "0.25"), ("10000", "10000")]
)
def test_adjustment_points_are_exact_decimals(raw: str, value: str) -> None:
    assert L.check_adjustment_points(raw) == Decimal(value)


@pytest.mark.parametrize("raw", ["0", "abc", "NaN", "Infinity", "0.001", "10000.01", "1e9"])
def test_bad_adjustment_points_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        L.check_adjustment_points(raw)


@pytest.mark.parametrize(
    ("value", "text"),
    [("3.5", "3.5"), ("3.50", "3.5"), ("0", "0"), ("0.0", "0"), ("100", "100"), ("1E+2", "100"),
     ("-1.25", "-1.25"), ("35.0", "35")],
)  # fmt: skip
def test_points_on_the_wire_are_plain_decimal_strings(value: str, text: str) -> None:
    assert L.points_text(Decimal(value)) == text


def test_subtotals_per_group() -> None:
    lines = L.ledger([closed(1, 1), closed(2, 2), closed(3, 3, item_class=2)])
    per = L.monthly(lines, "2026-11")
    assert L.subtotals(per, {1: "t1", 2: "t1"}) == {"": Decimal(2), "t1": Decimal(3)}
