"""The workflow after the grab: the transition table and each rule, as plain function calls."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace

import pytest

from dispatcher.core.catalog import Level, load_catalog
from dispatcher.core.lifecycle import (
    EVENT_LABELS,
    TRANSITIONS,
    Action,
    Actor,
    ActorKind,
    Fee,
    OrderState,
    Params,
    Policy,
    State,
)
from dispatcher.core.orders import Scope, is_overdue
from dispatcher.core.points import Rating
from dispatcher.core.refusals import (
    IllegalTransition,
    InvalidParams,
    NotDue,
    Refusal,
    UnknownMaterial,
    WrongActor,
)
from dispatcher.core.workdays import CHINA, load_calendar
from dispatcher.core.workflow import Decision, classify, decide, next_deadline

S, A, K = State, Action, ActorKind
HOUR = 3_600_000
DAY = 24 * HOUR
T0 = int(dt.datetime(2026, 3, 2, 9, 0, tzinfo=CHINA).timestamp()) * 1000  # a Monday, 09:00
NOW = T0 + 30 * DAY  # every clock deadline of the orders below has passed
POLICY = Policy(load_calendar())
HOLDER, OTHER, NEW = 7, 8, 9
ACTORS = {
    K.AGENT: Actor(K.AGENT, HOLDER),
    K.APPLICANT: Actor(K.APPLICANT),
    K.OPERATOR: Actor(K.OPERATOR, 1),
    K.SYSTEM: Actor(K.SYSTEM),
}
ID, HK = "居民身份证", "居民户口簿"
# Enough for every action, with all materials received: each allowed action succeeds.
EVERYTHING = Params(
    received=(ID, HK),
    note="已将材料送乡镇派出所",
    result="已办结，新户口簿已送达",
    rating=Rating.SATISFIED,
    reason="申请人已自行办理",
    agent_id=NEW,
)

# The table as documented for the integrator; a change to TRANSITIONS must change this too.
DOCUMENTED = """
claimed             accept    agent      accepted awaiting_materials
awaiting_materials  supply    agent      accepted awaiting_materials
accepted            supply    agent      accepted
accepted            progress  agent      accepted
awaiting_materials  progress  agent      awaiting_materials
accepted            reply     agent      replied
claimed             release   agent      offered
replied             rate      applicant  closed
offered             cancel    applicant  cancelled
widened             cancel    applicant  cancelled
claimed             cancel    applicant  cancelled
escalated           cancel    applicant  cancelled
offered             cancel    operator   cancelled
widened             cancel    operator   cancelled
claimed             cancel    operator   cancelled
accepted            cancel    operator   cancelled
awaiting_materials  cancel    operator   cancelled
escalated           cancel    operator   cancelled
claimed             reassign  operator   claimed
escalated           reassign  operator   claimed
accepted            reassign  operator   accepted
awaiting_materials  reassign  operator   awaiting_materials
escalated           assign    operator   claimed
offered             escalate  system     escalated
widened             escalate  system     escalated
replied             close     system     closed
"""


def order_in(state: State, **kw: object) -> OrderState:
    """A typical order in ``state``, filed at T0 for an item needing an ID card and 户口簿."""
    base = OrderState(
        status=state,
        scope=Scope.ALL if state is S.WIDENED else Scope.GRID,
        widen_at=T0 + 600_000,
        escalate_at=T0 + DAY,
        required=(ID, HK),
        time_limit_days=5,
    )
    held = state not in (S.OFFERED, S.WIDENED, S.ESCALATED, S.CANCELLED)
    if held:
        base = replace(base, claimed_by=HOLDER, claimed_at=T0 + HOUR)
    if state in (S.ACCEPTED, S.AWAITING_MATERIALS):  # the 户口簿 is still to come
        base = replace(base, missing=(HK,), supply_by=T0 + 3 * DAY)
    if state is S.REPLIED:
        base = replace(base, replied_at=T0 + 2 * DAY, close_at=T0 + 9 * DAY)
    if state is S.CLOSED:
        base = replace(base, rating=Rating.SATISFIED)
    return replace(base, **kw)  # type: ignore[arg-type]


def decided(result: Decision | Refusal) -> Decision:
    assert isinstance(result, Decision), result
    return result


def refused(result: Decision | Refusal, kind: type[Refusal]) -> Refusal:
    assert isinstance(result, kind), result
    return result


# --- the table ----------------------------------------------------------------------------


def test_the_table_is_the_documented_one() -> None:
    rows = [line.split() for line in DOCUMENTED.strip().splitlines()]
    documented = {(S(s), A(a), K(k)): tuple(State(n) for n in nxt) for s, a, k, *nxt in rows}
    assert documented == dict(TRANSITIONS)


@pytest.mark.parametrize(
    ("state", "action", "kind"), list(itertools.product(State, Action, ActorKind))
)
def test_every_state_action_actor_follows_the_table(
    state: State, action: Action, kind: ActorKind
) -> None:
    """Allowed: the first listed next state (all materials at hand).  Otherwise: WrongActor when
    this kind never may do the action, or it is an agent and the order is not its own (no
    holder: offered, widened, escalated), else IllegalTransition naming the current state."""
    order = order_in(state)
    result = decide(order, action, ACTORS[kind], NOW, POLICY, EVERYTHING)
    allowed = TRANSITIONS.get((state, action, kind))
    if allowed is not None:
        assert decided(result).order.status is allowed[0]
    elif not any(a is action and k is kind for (_, a, k) in TRANSITIONS):
        refused(result, WrongActor)
    elif kind is K.AGENT and order.claimed_by != HOLDER:
        refused(result, WrongActor)
    else:
        illegal = refused(result, IllegalTransition)
        assert isinstance(illegal, IllegalTransition) and illegal.current_state is state


@pytest.mark.parametrize("key", [k for k in TRANSITIONS if k[2] is K.AGENT])
def test_only_the_claiming_agent_may_act_as_agent(key: tuple[State, Action, ActorKind]) -> None:
    state, action, _ = key
    result = decide(order_in(state), action, Actor(K.AGENT, OTHER), NOW, POLICY, EVERYTHING)
    refusal = refused(result, WrongActor)
    assert (refusal.status, refusal.code) == (403, "forbidden")


AGENT_ACTIONS = sorted({a for (_, a, k) in TRANSITIONS if k is K.AGENT}, key=str)


@pytest.mark.parametrize(("state", "action"), list(itertools.product(State, AGENT_ACTIONS)))
def test_actor_before_state_a_non_holder_learns_nothing(state: State, action: Action) -> None:
    """Another agent (or one the order was never offered to) is refused 403 in every state,
    before the state is checked: the refusal never carries ``current_state``."""
    for stranger in (Actor(K.AGENT, OTHER), Actor(K.AGENT, 10_000)):
        result = decide(order_in(state), action, stranger, NOW, POLICY, EVERYTHING)
        refusal = refused(result, WrongActor)
        assert (refusal.status, refusal.code) == (403, "forbidden")
        assert "current_state" not in refusal.details()
        assert state.value not in refusal.message


@pytest.mark.parametrize("state", list(State))
def test_actor_before_state_in_classify(state: State) -> None:
    item = next(iter(load_catalog().values()))
    result = classify(order_in(state), item, Actor(K.AGENT, OTHER), NOW)
    refusal = refused(result, WrongActor)
    assert "current_state" not in refusal.details()


def test_every_decision_bumps_the_version_once_and_reports_it_as_changed() -> None:
    for (state, action, kind), _ in TRANSITIONS.items():
        d = decided(decide(order_in(state), action, ACTORS[kind], NOW, POLICY, EVERYTHING))
        before = order_in(state)
        assert d.order.version == 2 and d.changes["version"] == 2
        for name in OrderState.__dataclass_fields__:
            changed = getattr(d.order, name) != getattr(before, name)
            assert (name in d.changes) is changed
        assert d.event.label == EVENT_LABELS[d.event.kind] and d.event.at == NOW


def test_illegal_transition_names_the_current_state_in_the_refusal() -> None:
    result = decide(order_in(S.CLOSED), A.RATE, ACTORS[K.APPLICANT], NOW, POLICY, EVERYTHING)
    refusal = refused(result, IllegalTransition)
    assert (refusal.status, refusal.code) == (409, "illegal_transition")
    assert refusal.details() == {"current_state": "closed", "action": "rate"}
    assert "closed" in refusal.message


def test_wrong_kind_of_actor_is_forbidden_whatever_the_state() -> None:
    result = decide(order_in(S.CLAIMED), A.ACCEPT, ACTORS[K.APPLICANT], NOW, POLICY)
    assert refused(result, WrongActor).status == 403
    result = decide(order_in(S.REPLIED), A.RATE, ACTORS[K.AGENT], NOW, POLICY, EVERYTHING)
    assert refused(result, WrongActor).message == "this agent may not rate this order"


def test_event_labels_are_chinese_sentences_for_the_applicant() -> None:
    for kind, label in EVENT_LABELS.items():
        assert kind.isascii() and label and not label.isascii()
    assert EVENT_LABELS["accepted"] == "代办员已受理您的申请"


def test_an_agent_actor_needs_an_id() -> None:
    with pytest.raises(ValueError):
        Actor(K.AGENT)


# --- accept, awaiting materials, supply ---------------------------------------------------


def test_accept_with_all_materials_is_due_after_the_items_working_days() -> None:
    d = decided(decide(order_in(S.CLAIMED), A.ACCEPT, ACTORS[K.AGENT], T0, POLICY, EVERYTHING))
    due = dt.datetime(2026, 3, 9, 23, 59, 59, 999_000, tzinfo=CHINA)  # Monday + 5 working days
    assert d.order.status is S.ACCEPTED and d.order.due_at == int(due.timestamp() * 1000)
    expected = {"status": S.ACCEPTED, "accepted_at": T0, "due_at": d.order.due_at, "version": 2}
    assert d.changes == expected
    assert d.event.kind == "accepted" and d.event.details["missing"] == []


def test_accept_of_a_free_text_order_has_no_due_date() -> None:
    o = order_in(S.CLAIMED, required=(), time_limit_days=None)
    d = decided(decide(o, A.ACCEPT, ACTORS[K.AGENT], T0, POLICY))
    assert d.order.status is S.ACCEPTED and d.order.due_at is None


def test_accept_with_missing_materials_needs_a_supply_by_date_or_a_green_card() -> None:
    agent, o = ACTORS[K.AGENT], order_in(S.CLAIMED)
    only_id = Params(received=(ID,))
    bad = refused(decide(o, A.ACCEPT, agent, T0, POLICY, only_id), InvalidParams)
    assert isinstance(bad, InvalidParams) and bad.field == "supply_by"
    past = replace(only_id, supply_by=T0 - 1)
    assert isinstance(decide(o, A.ACCEPT, agent, T0, POLICY, past), InvalidParams)

    waiting = decided(decide(o, A.ACCEPT, agent, T0, POLICY, replace(only_id, supply_by=T0 + DAY)))
    assert waiting.order.status is S.AWAITING_MATERIALS and waiting.order.missing == (HK,)
    assert waiting.order.due_at is None and waiting.event.kind == "awaiting_materials"

    green = decided(decide(o, A.ACCEPT, agent, T0, POLICY, replace(only_id, green_card=True)))
    assert green.order.status is S.ACCEPTED and green.order.missing == (HK,)
    assert green.event.kind == "accepted_green_card" and green.order.due_at is not None


def test_supply_completes_materials_and_starts_the_clock_then() -> None:
    agent = ACTORS[K.AGENT]
    o = order_in(S.AWAITING_MATERIALS, required=(ID, HK, "结婚证"), missing=(HK, "结婚证"))
    part = decided(decide(o, A.SUPPLY, agent, T0, POLICY, Params(received=(HK,))))
    assert part.order.status is S.AWAITING_MATERIALS and part.order.missing == ("结婚证",)
    later = T0 + 2 * DAY
    done = decided(decide(part.order, A.SUPPLY, agent, later, POLICY, Params(received=("结婚证",))))
    assert done.order.status is S.ACCEPTED and done.order.accepted_at == later
    assert done.order.due_at == POLICY.calendar.add_working_days(later, 5)
    assert done.order.missing == () and done.order.supply_by is None


def test_supply_after_a_green_card_accept_keeps_the_order_accepted() -> None:
    d = decided(decide(order_in(S.ACCEPTED), A.SUPPLY, ACTORS[K.AGENT], NOW, POLICY, EVERYTHING))
    assert d.order.status is S.ACCEPTED and d.order.missing == ()
    assert "due_at" not in d.changes  # the clock started at the accept


def test_supply_of_nothing_missing_is_refused() -> None:
    agent = ACTORS[K.AGENT]
    wrong = decide(order_in(S.AWAITING_MATERIALS), A.SUPPLY, agent, NOW, POLICY, Params((ID,)))
    assert isinstance(wrong, InvalidParams) and wrong.field == "received"
    nothing = decide(order_in(S.ACCEPTED, missing=()), A.SUPPLY, agent, NOW, POLICY, EVERYTHING)
    assert isinstance(nothing, InvalidParams)


# --- progress, reply, rate, close ----------------------------------------------------------


def test_progress_adds_a_note_and_keeps_the_state() -> None:
    o = order_in(S.ACCEPTED)
    d = decided(decide(o, A.PROGRESS, ACTORS[K.AGENT], NOW, POLICY, Params(note=" 已送县民政局 ")))
    assert d.order == replace(o, version=2) and d.changes == {"version": 2}
    assert d.event.details == {"note": "已送县民政局"}
    assert isinstance(decide(o, A.PROGRESS, ACTORS[K.AGENT], NOW, POLICY), InvalidParams)


def test_reply_records_result_references_and_fees_in_fen() -> None:
    params = Params(
        result="户口已迁入",
        references=("受理号2026-001",),
        fees=(Fee("工本费", 500), Fee("快递", 1200)),
    )
    d = decided(decide(order_in(S.ACCEPTED), A.REPLY, ACTORS[K.AGENT], NOW, POLICY, params))
    assert d.order.status is S.REPLIED and d.order.close_at == NOW + POLICY.close_after_ms
    assert d.event.details["fees_total_fen"] == 1700
    assert d.event.details["fees"][0] == {"item": "工本费", "amount_fen": 500}


@pytest.mark.parametrize("amount", [0, -5, 1.5, True, 10_000_001])
def test_reply_refuses_fees_that_are_not_positive_whole_fen(amount: int) -> None:
    params = Params(result="已办结", fees=(Fee("工本费", amount),))
    bad = decide(order_in(S.ACCEPTED), A.REPLY, ACTORS[K.AGENT], NOW, POLICY, params)
    assert isinstance(bad, InvalidParams) and bad.field == "fees"


def test_rating_closes_the_order_once_only() -> None:
    applicant = ACTORS[K.APPLICANT]
    params = Params(rating=Rating.VERY_SATISFIED, comment="很方便")
    d = decided(decide(order_in(S.REPLIED), A.RATE, applicant, NOW, POLICY, params))
    assert d.order.status is S.CLOSED and d.order.rating is Rating.VERY_SATISFIED
    assert d.event.details["rating_label"] == "非常满意"
    again = decide(d.order, A.RATE, applicant, NOW, POLICY, params)
    assert isinstance(again, IllegalTransition) and again.current_state is S.CLOSED
    assert isinstance(decide(order_in(S.REPLIED), A.RATE, applicant, NOW, POLICY), InvalidParams)


def test_unrated_reply_closes_after_the_rating_period_and_then_cannot_be_rated() -> None:
    o = order_in(S.REPLIED, close_at=T0 + 9 * DAY)
    early = decide(o, A.CLOSE, ACTORS[K.SYSTEM], T0 + 9 * DAY - 1, POLICY)
    assert isinstance(early, NotDue) and early.due_at == T0 + 9 * DAY
    assert early.code == "not_due"
    d = decided(decide(o, A.CLOSE, ACTORS[K.SYSTEM], T0 + 9 * DAY, POLICY))
    assert d.order.status is S.CLOSED and d.order.rating is None
    assert d.event.kind == "closed_unrated"
    late = decide(d.order, A.RATE, ACTORS[K.APPLICANT], NOW, POLICY, EVERYTHING)
    assert isinstance(late, IllegalTransition)


# --- release, cancel, reassign, escalate, assign -------------------------------------------


def test_release_offers_again_to_everyone_but_the_releasing_agent() -> None:
    o = order_in(S.CLAIMED, excluded=frozenset({3}))
    d = decided(decide(o, A.RELEASE, ACTORS[K.AGENT], NOW, POLICY, Params(reason="临时外出")))
    after = d.order
    assert after.status is S.OFFERED and after.scope is Scope.GRID and after.claimed_by is None
    assert after.excluded == {3, HOLDER}
    assert after.widen_at == NOW + POLICY.widen_after_ms
    assert after.escalate_at == NOW + POLICY.escalate_after_ms
    assert d.event.details == {"agent_id": HOLDER, "reason": "临时外出"}


def test_release_is_only_before_accept() -> None:
    result = decide(order_in(S.ACCEPTED), A.RELEASE, ACTORS[K.AGENT], NOW, POLICY)
    assert isinstance(result, IllegalTransition) and result.current_state is S.ACCEPTED


@pytest.mark.parametrize("state", [S.OFFERED, S.WIDENED, S.CLAIMED, S.ESCALATED])
def test_applicant_cancels_until_accepted(state: State) -> None:
    params = Params(reason="不需要了")
    d = decided(decide(order_in(state), A.CANCEL, ACTORS[K.APPLICANT], NOW, POLICY, params))
    assert d.order.status is S.CANCELLED
    assert d.event.details == {"reason": "不需要了", "by": "applicant"}


def test_after_accept_only_the_operator_cancels_and_nobody_after_reply() -> None:
    applicant, operator = ACTORS[K.APPLICANT], ACTORS[K.OPERATOR]
    for state in (S.ACCEPTED, S.AWAITING_MATERIALS):
        late = decide(order_in(state), A.CANCEL, applicant, NOW, POLICY, EVERYTHING)
        assert isinstance(late, IllegalTransition) and late.current_state is state
        assert decided(decide(order_in(state), A.CANCEL, operator, NOW, POLICY, EVERYTHING))
    replied = decide(order_in(S.REPLIED), A.CANCEL, operator, NOW, POLICY, EVERYTHING)
    assert isinstance(replied, IllegalTransition) and replied.current_state is S.REPLIED


def test_cancel_needs_a_reason() -> None:
    result = decide(order_in(S.OFFERED), A.CANCEL, ACTORS[K.APPLICANT], NOW, POLICY, Params())
    assert isinstance(result, InvalidParams) and result.field == "reason"


def test_reassign_before_accept_is_a_new_claim() -> None:
    params = Params(agent_id=NEW, reason="原代办员生病")
    d = decided(decide(order_in(S.CLAIMED), A.REASSIGN, ACTORS[K.OPERATOR], NOW, POLICY, params))
    assert (d.order.status, d.order.claimed_by, d.order.claimed_at) == (S.CLAIMED, NEW, NOW)
    assert d.event.details == {"from": HOLDER, "to": NEW, "reason": "原代办员生病"}


def test_reassign_after_accept_keeps_state_and_due_date() -> None:
    o = order_in(S.ACCEPTED, accepted_at=T0, due_at=T0 + 7 * DAY)
    d = decided(decide(o, A.REASSIGN, ACTORS[K.OPERATOR], NOW, POLICY, Params(agent_id=NEW)))
    assert (d.order.status, d.order.claimed_by, d.order.due_at) == (S.ACCEPTED, NEW, T0 + 7 * DAY)


@pytest.mark.parametrize("agent_id", [None, HOLDER, 0, True])
def test_reassign_needs_another_agent(agent_id: int | None) -> None:
    params = Params(agent_id=agent_id)
    result = decide(order_in(S.CLAIMED), A.REASSIGN, ACTORS[K.OPERATOR], NOW, POLICY, params)
    assert isinstance(result, InvalidParams) and result.field == "agent_id"


def test_unclaimed_order_escalates_after_a_day_and_an_operator_assigns_it() -> None:
    o = order_in(S.WIDENED)
    assert next_deadline(o) == (A.ESCALATE, T0 + DAY)
    early = decide(o, A.ESCALATE, ACTORS[K.SYSTEM], T0 + DAY - 1, POLICY)
    assert isinstance(early, NotDue)
    up = decided(decide(o, A.ESCALATE, ACTORS[K.SYSTEM], T0 + DAY, POLICY))
    assert up.order.status is S.ESCALATED and next_deadline(up.order) is None
    d = decided(decide(up.order, A.ASSIGN, ACTORS[K.OPERATOR], NOW, POLICY, Params(agent_id=NEW)))
    assert (d.order.status, d.order.claimed_by) == (S.CLAIMED, NEW)
    assert d.event.kind == "assigned" and d.event.label == "政务专员已为您指派代办员"


def test_deadlines_and_overdue() -> None:
    replied = order_in(S.REPLIED)
    assert next_deadline(replied) == (A.CLOSE, replied.close_at)
    assert next_deadline(order_in(S.ACCEPTED)) is None
    accepted = order_in(S.ACCEPTED, due_at=T0 + DAY)
    assert not is_overdue(accepted, T0 + DAY) and is_overdue(accepted, T0 + DAY + 1)
    waiting = order_in(S.AWAITING_MATERIALS)
    assert is_overdue(waiting, waiting.supply_by + 1)  # type: ignore[operator]
    assert not is_overdue(order_in(S.CLOSED), NOW)


def test_event_to_wire() -> None:
    d = decided(decide(order_in(S.CLAIMED), A.ACCEPT, ACTORS[K.AGENT], T0, POLICY, EVERYTHING))
    wire = d.event.to_wire()
    assert wire["kind"] == "accepted" and wire["label"] == "代办员已受理您的申请"
    assert wire["actor"] == {"kind": "agent", "id": HOLDER} and wire["at"] == T0


# --- classify (not a transition) -------------------------------------------------------------


def test_classify_gives_a_free_text_order_its_item_before_acceptance() -> None:
    item = load_catalog()["HJ-002"]
    free = order_in(S.CLAIMED, required=(), time_limit_days=None)
    d = decided(classify(free, item, ACTORS[K.AGENT], NOW))
    assert d.order.required == item.materials and d.order.time_limit_days == 3
    assert d.changes["item"] == "HJ-002" and d.changes["item_class"] == 1
    assert d.event.kind == "classified" and d.event.label == EVENT_LABELS["classified"]
    operator = decided(classify(order_in(S.ESCALATED, required=()), item, ACTORS[K.OPERATOR], NOW))
    assert operator.order.status is S.ESCALATED
    late = classify(order_in(S.ACCEPTED), item, ACTORS[K.AGENT], NOW)
    assert isinstance(late, IllegalTransition) and late.current_state is S.ACCEPTED
    other = classify(free, item, Actor(K.AGENT, OTHER), NOW)
    assert isinstance(other, WrongActor)
    assert isinstance(classify(free, item, ACTORS[K.APPLICANT], NOW), WrongActor)


def test_materials_must_be_the_items_own() -> None:
    params = Params(received=(ID, "村委会证明"))
    bad = decide(order_in(S.CLAIMED), A.ACCEPT, ACTORS[K.AGENT], T0, POLICY, params)
    assert isinstance(bad, UnknownMaterial) and bad.field == "received"
    assert bad.code == "unknown_material" and bad.status == 422
    free = order_in(S.CLAIMED, required=(), time_limit_days=None)
    assert decided(decide(free, A.ACCEPT, ACTORS[K.AGENT], T0, POLICY, params))


def test_progress_may_say_which_desk_has_it() -> None:
    params = Params(note="已转县民政局", desk=Level.COUNTY)
    d = decided(decide(order_in(S.ACCEPTED), A.PROGRESS, ACTORS[K.AGENT], NOW, POLICY, params))
    assert d.event.details == {"note": "已转县民政局", "desk": "county", "desk_label": "县级办理"}
