"""The pure order core: plain function calls, no services."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dispatcher.orders import (
    ClaimOutcome,
    Order,
    Reach,
    Scope,
    Status,
    Step,
    advanced,
    claimed,
    decide_claim,
    default_schedule,
    is_offered_to,
    new_order,
    parse_schedule,
    widen_deadline,
    widened,
    withdrawn_reason,
)

T0 = 1_700_000_000_000


def order(**kw: object) -> Order:
    base = new_order(
        order_id=1,
        grid="g1",
        item=None,
        text="我要办证",
        item_class=None,
        created_at=T0,
        schedule=default_schedule(600),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_widen_deadline_is_ten_minutes_by_default_and_takes_fractions() -> None:
    assert widen_deadline(T0, 600) == T0 + 600_000
    assert widen_deadline(T0, 0.25) == T0 + 250


def test_offered_to_own_grid_only_until_widened() -> None:
    o = order()
    assert is_offered_to(o, {"g1"})
    assert not is_offered_to(o, {"g2"})
    w = widened(o, o.widen_at)
    assert w is not None and is_offered_to(w, {"g2"}) and is_offered_to(w, set())


def test_closed_orders_are_offered_to_nobody() -> None:
    for status in (Status.CLAIMED, Status.CANCELLED):
        assert not is_offered_to(order(status=status, claimed_by=7, scope=Scope.ALL), {"g1"})


def test_widen_never_before_the_deadline() -> None:
    o = order()
    assert widened(o, o.widen_at - 1) is None


def test_widen_happens_once() -> None:
    """A second sweep (or a second process) gets None: the order is no longer 'offered'."""
    o = order()
    w = widened(o, o.widen_at + 5)
    assert w is not None
    assert (w.status, w.scope, w.version) == (Status.WIDENED, Scope.ALL, 2)
    assert widened(w, w.widen_at + 10) is None


def test_claimed_or_cancelled_orders_never_widen() -> None:
    o = claimed(order(), 7, T0 + 1)
    assert widened(o, o.widen_at + 1) is None
    assert widened(order(status=Status.CANCELLED), T0 + 10**9) is None


@pytest.mark.parametrize(
    ("state", "agent", "grids", "expected"),
    [
        ({}, 7, {"g1"}, ClaimOutcome.WON),
        ({}, 7, {"g2"}, ClaimOutcome.NOT_OFFERED),
        ({"status": Status.WIDENED, "scope": Scope.ALL}, 7, {"g2"}, ClaimOutcome.WON),
        ({"status": Status.CLAIMED, "claimed_by": 9}, 7, {"g1"}, ClaimOutcome.TAKEN),
        ({"status": Status.CLAIMED, "claimed_by": 7}, 7, {"g1"}, ClaimOutcome.WON),
        ({"status": Status.CANCELLED}, 7, {"g1"}, ClaimOutcome.NOT_OFFERED),
    ],
)
def test_decide_claim(
    state: dict[str, object], agent: int, grids: set[str], expected: ClaimOutcome
) -> None:
    assert decide_claim(order(**state), agent, grids) is expected


def test_decide_claim_unknown_order() -> None:
    assert decide_claim(None, 7, {"g1"}) is ClaimOutcome.UNKNOWN_ORDER


def test_claimed_records_winner_and_bumps_version() -> None:
    c = claimed(order(), 7, T0 + 42)
    assert (c.status, c.claimed_by, c.claimed_at, c.version) == (Status.CLAIMED, 7, T0 + 42, 2)
    with pytest.raises(ValueError):
        claimed(c, 8, T0 + 43)


def test_withdrawn_reason() -> None:
    assert withdrawn_reason(order()) is None
    assert withdrawn_reason(order(status=Status.CLAIMED, claimed_by=1)) == "claimed"
    assert withdrawn_reason(order(status=Status.CANCELLED)) == "cancelled"


def test_wire_order_has_every_protocol_field() -> None:
    """v1 fields are all there; additions (reach, offered_grids, next_step_at) come on top."""
    assert set(order().to_wire()) >= {
        "id",
        "status",
        "grid",
        "item",
        "text",
        "item_class",
        "created_at",
        "widen_at",
        "scope",
        "claimed_by",
        "claimed_at",
        "version",
    }


LADDER = parse_schedule("grid@0,neighbours@300,all@600")


def neighbours(reach: Reach, grid: str) -> list[str]:
    return {Reach.NEIGHBOURS: ["g2", "g3"], Reach.PARENT: ["g2", "g3", "g4"]}.get(reach, [])


def test_parse_schedule_and_its_errors() -> None:
    assert LADDER == (Step(Reach.GRID, 0), Step(Reach.NEIGHBOURS, 300), Step(Reach.ALL, 600))
    assert default_schedule(600) == parse_schedule("grid@0,all@600")
    for bad in (
        "",
        "grid@0",
        "all@600",
        "grid@5,all@600",
        "grid@0,all@x",
        "grid@0,moon@5,all@9",
        "grid@0,all@300,neighbours@600",
        "grid@0,neighbours@300,all@300",
        "grid@0,neighbours@30",
    ):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_three_step_ladder_moves_one_rung_at_a_time() -> None:
    o = new_order(
        order_id=1, grid="g1", item=None, text="x", item_class=None, created_at=T0, schedule=LADDER
    )
    assert (o.reach_grids, o.next_step_at, o.widen_at) == (("g1",), T0 + 300_000, T0 + 600_000)
    assert advanced(o, T0 + 299_999, neighbours) is None
    n = advanced(o, T0 + 300_000, neighbours)
    assert n is not None
    assert (n.status, n.scope, n.reach, n.reach_grids) == (
        Status.OFFERED,
        Scope.GRID,
        Reach.NEIGHBOURS,
        ("g1", "g2", "g3"),
    )
    assert n.next_step_at == T0 + 600_000 and n.version == 2
    assert is_offered_to(n, {"g3"}) and not is_offered_to(n, {"g9"})
    assert advanced(n, T0 + 300_001, neighbours) is None  # not twice
    a = advanced(n, T0 + 600_000, neighbours)
    assert a is not None
    assert (a.status, a.scope, a.next_step_at, a.version) == (Status.WIDENED, Scope.ALL, None, 3)
    assert advanced(a, T0 + 10**9, neighbours) is None
    assert is_offered_to(a, {"g9"})
