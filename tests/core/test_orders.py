"""The pure order core: plain function calls, no services."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dispatcher.core.orders import (
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
    is_overdue,
    new_order,
    parse_schedule,
    reoffered,
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


def test_an_order_is_never_offered_to_an_agent_who_released_it() -> None:
    o = order(excluded=frozenset({7}))
    assert is_offered_to(o, {"g1"}) and is_offered_to(o, {"g1"}, 8)
    assert not is_offered_to(o, {"g1"}, 7)
    assert decide_claim(o, 7, {"g1"}) is ClaimOutcome.NOT_OFFERED
    assert decide_claim(o, 8, {"g1"}) is ClaimOutcome.WON


def test_after_the_grab_an_order_is_taken_except_for_its_agent() -> None:
    for status in (Status.ACCEPTED, Status.AWAITING_MATERIALS, Status.REPLIED, Status.CLOSED):
        o = order(status=status, claimed_by=7)
        assert decide_claim(o, 7, {"g1"}) is ClaimOutcome.WON
        assert decide_claim(o, 8, {"g1"}) is ClaimOutcome.TAKEN
    assert decide_claim(order(status=Status.ESCALATED), 7, {"g1"}) is ClaimOutcome.NOT_OFFERED
    cancelled = order(status=Status.CANCELLED, claimed_by=7)
    assert decide_claim(cancelled, 7, {"g1"}) is ClaimOutcome.NOT_OFFERED


def test_at_the_limit_only_a_claim_that_could_win_is_refused() -> None:
    assert decide_claim(order(), 7, {"g1"}, at_limit=True) is ClaimOutcome.LIMIT_REACHED
    assert decide_claim(order(), 7, {"g2"}, at_limit=True) is ClaimOutcome.NOT_OFFERED
    mine = order(status=Status.CLAIMED, claimed_by=7)
    assert decide_claim(mine, 7, {"g1"}, at_limit=True) is ClaimOutcome.WON


def test_escalation_withdraws_with_reason_expired() -> None:
    assert withdrawn_reason(order(status=Status.ESCALATED)) == "expired"
    assert withdrawn_reason(order(status=Status.ACCEPTED, claimed_by=7)) is None


def test_a_released_order_climbs_its_ladder_again_from_the_release() -> None:
    o = new_order(
        order_id=1,
        grid="g1",
        item=None,
        text="x",
        item_class=None,
        created_at=T0,
        schedule=LADDER,
        escalate_after_s=86400,
    )
    assert o.escalate_at == T0 + 86_400_000 and o.offered_at == T0
    wide = advanced(advanced(o, T0 + 300_000, neighbours) or o, T0 + 600_000, neighbours)
    assert wide is not None and wide.scope is Scope.ALL
    later = T0 + 3_600_000
    fresh = reoffered(wide, later)
    assert fresh == {
        "offered_at": later,
        "step": 0,
        "reach_grids": ("g1",),
        "next_step_at": later + 300_000,
        "widen_at": later + 600_000,
    }
    again = replace(wide, status=Status.OFFERED, scope=Scope.GRID, **fresh)
    assert advanced(again, later + 299_999, neighbours) is None
    step = advanced(again, later + 300_000, neighbours)
    assert step is not None and step.next_step_at == later + 600_000


def test_overdue_only_while_being_handled() -> None:
    accepted = order(status=Status.ACCEPTED, claimed_by=7, due_at=T0)
    assert not is_overdue(accepted, T0) and is_overdue(accepted, T0 + 1)
    waiting = order(status=Status.AWAITING_MATERIALS, claimed_by=7, supply_by=T0)
    assert is_overdue(waiting, T0 + 1)
    assert not is_overdue(order(status=Status.REPLIED, claimed_by=7, due_at=T0), T0 + 1)
    assert accepted.to_wire(T0 + 1)["overdue"] is True and "overdue" not in accepted.to_wire()
