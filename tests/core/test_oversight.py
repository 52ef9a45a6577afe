"""Oversight figures per group, the inactive list and the ranking (pure)."""

from __future__ import annotations

from decimal import Decimal

from dispatcher.core import oversight as O
from dispatcher.core.oversight import Activity, OrderFacts
from dispatcher.core.points import Rating

MIN = 60_000


def facts(oid: int, grid: str = "g1", **kw: object) -> OrderFacts:
    base: dict[str, object] = dict(
        status="closed", created_at=0, first_claim_at=None, widened=False, escalated=False,
        due_at=None, replied_at=None, rating=None,
    )  # fmt: skip
    base.update(kw)
    return OrderFacts(oid, grid, **base)  # type: ignore[arg-type]


def test_figures_of_a_group() -> None:
    orders = [
        facts(1, first_claim_at=2 * MIN, due_at=100, replied_at=90, rating=Rating.SATISFIED),
        facts(2, first_claim_at=12 * MIN, widened=True, due_at=100, replied_at=120,
              rating=Rating.UNSATISFIED),
        facts(3, first_claim_at=4 * MIN, rating=None),
        facts(4, status="escalated", widened=True, escalated=True),
    ]  # fmt: skip
    f = O.figures(orders, 10 * MIN)
    assert f["filed"] == 4 and f["claimed"] == 3
    assert f["claimed_in_time"] == Decimal("0.5")
    assert f["widened"] == Decimal("0.5") and f["escalated"] == Decimal("0.25")
    assert f["median_claim_ms"] == 4 * MIN
    assert f["on_time"] == Decimal("0.5")
    assert (f["closed"], f["rated"]) == (3, 2)
    assert f["satisfaction"] == Decimal("0.5")
    assert f["participation"] == Decimal("0.6667")


def test_nothing_counted_gives_none() -> None:
    f = O.figures([], 10 * MIN)
    assert f["filed"] == 0 and f["satisfaction"] is None and f["median_claim_ms"] is None


def test_ancestors_and_groups() -> None:
    grids = {"g1": ("grid", "t1"), "t1": ("township", "c1"), "c1": ("county", None)}
    assert O.ancestor("g1", "township", grids) == "t1"
    assert O.ancestor("g1", "county", grids) == "c1"
    assert O.ancestor("x", "county", grids) == ""
    loop = {"a": ("grid", "b"), "b": ("grid", "a")}
    assert O.ancestor("a", "county", loop) == ""
    got = O.grouped([facts(1, "g1"), facts(2, "g2")], {"g1": "t1"}, 10 * MIN)
    assert list(got) == ["", "t1"]


def test_inactive_agents_longest_idle_first() -> None:
    day = O.DAY_MS
    agents = [
        Activity(1, "a", ("g1",), 100 * day),
        Activity(2, "b", ("g1",), None),
        Activity(3, "c", ("g1",), 50 * day),
        Activity(4, "d", ("g1",), 70 * day),
    ]
    listed = O.inactive(agents, 100 * day, 30)
    assert [a["agent_id"] for a in listed] == [2, 3]
    assert listed[1]["idle_days"] == 50


def test_ranking_shares_ranks_on_ties() -> None:
    ranked = O.ranking({1: (5, Decimal(10)), 2: (7, Decimal(9)), 3: (5, Decimal(10))}, 10)
    assert ranked == [(2, 1), (1, 2), (3, 2)]
    assert O.ranking({1: (1, Decimal(1)), 2: (2, Decimal(1))}, 1) == [(2, 1)]
