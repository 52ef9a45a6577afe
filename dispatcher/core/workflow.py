"""The handling of an order after the grab: a pure core, like :mod:`dispatcher.core.orders`.

The seeds' workflow is 委托 → 受理 → 代办 → 回复 → 上报 → 回访.  Here the applicant entrusts
(files) the order and an agent claims it (:mod:`dispatcher.core.orders`); the claiming agent then
accepts it, checking the materials against the catalogue item (受理), handles it with progress
notes (代办), replies with the result (回复), and the applicant rates it (回访, 一事一评).
Reporting (上报) is the trail itself: every decision appends one :class:`Event`.

:data:`TRANSITIONS` (in :mod:`dispatcher.core.lifecycle`, with the rest of the vocabulary) is
the one table of who may do what when: (state, action, actor kind) → the states the action can lead
to.  "agent" rows are for the claiming agent only.  The clock's rows (``escalate``, ``close``)
are refused with :class:`NotDue` before their deadline.  What each action does is in
:mod:`dispatcher.core.effects`; why one is refused, in :mod:`dispatcher.core.refusals`.

Refusals are checked in this order: WrongActor, IllegalTransition, NotDue, InvalidParams.
The actor comes before the state, the holder check too: an agent that does not hold the order
(another agent's, one never offered to it, one it released) is refused 403 and learns nothing
of its state; only its holder learns that the order moved on (say, was cancelled).
Widening (offered → widened) and the claim itself stay in :mod:`dispatcher.core.orders`.
Classifying a free-text order (giving it its catalogue item) is not a transition:
:func:`classify` decides it.

The shell (:mod:`dispatcher.flows.handling`) stores a decision's ``changes`` only where the stored
version is still the one decided on, appends its event in the same statement, then announces.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from dispatcher.core import effects
from dispatcher.core.catalog import Item
from dispatcher.core.lifecycle import (
    CLASSIFIABLE,
    EVENT_LABELS,
    KINDS,
    NO_PARAMS,
    TRANSITIONS,
    Action,
    Actor,
    ActorKind,
    Event,
    OrderState,
    Params,
    Policy,
    State,
)
from dispatcher.core.orders import Order
from dispatcher.core.refusals import (
    IllegalTransition,
    Invalid,
    NotDue,
    Refusal,
    WrongActor,
)

S, A, K = State, Action, ActorKind
CLASSIFY = "classify"
"""Named in refusals of :func:`classify` (not an :class:`Action`: it is not a transition)."""
NEVER = 2**62
"""The escalation deadline of an order that has none (filed before escalation existed)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The caller must store ``changes`` (field → new value, ``version`` included) only if the
    stored version is still ``order.version - 1``, append ``event``, then tell the watchers."""

    order: OrderState
    changes: dict[str, Any]
    event: Event


def state_of(order: Order) -> OrderState:
    """The workflow's view of a stored order."""
    return OrderState(
        **{
            f.name: getattr(order, f.name)
            for f in fields(OrderState)
            if f.name not in ("escalate_at",)
        },
        escalate_at=NEVER if order.escalate_at is None else order.escalate_at,
    )


def decide(
    order: OrderState,
    action: Action,
    actor: Actor,
    now: int,
    policy: Policy,
    params: Params = NO_PARAMS,
) -> Decision | Refusal:
    """What ``actor`` doing ``action`` to ``order`` at ``now`` leads to, or why it is refused.

    Nothing is changed: the caller stores the :class:`Decision` (see there) or turns the
    :class:`Refusal` into an error with :meth:`Refusal.as_error`.
    """
    if actor.kind not in KINDS[action]:
        return WrongActor(action, actor.kind)
    if actor.kind is K.AGENT and actor.id != order.claimed_by:
        return WrongActor(action, actor.kind)  # before the state: it is not its order
    outcomes = TRANSITIONS.get((order.status, action, actor.kind))
    if outcomes is None:
        return IllegalTransition(order.status, action)
    deadline = next_deadline(order)
    if deadline is not None and deadline[0] is action and now < deadline[1]:
        return NotDue(action, deadline[1])
    try:
        after, kind, details = effects.apply(order, action, actor, now, params, policy)
    except Invalid as e:
        return e.refusal(e.field, e.reason)
    assert after.status in outcomes, (order.status, action, after.status)
    return _decision(order, replace(after, version=order.version + 1), kind, actor, now, details)


def classify(order: OrderState, item: Item, actor: Actor, now: int) -> Decision | Refusal:
    """Give an order its catalogue item (a free-text one, or correct a wrong one): the claiming
    agent before accepting it, or an operator before anyone has.  The caller has checked that
    ``item`` is live.  The decision's ``changes`` also carry the order's ``item``, ``item_name``
    and ``item_class`` (fields beyond :class:`OrderState`)."""
    states = CLASSIFIABLE.get(actor.kind)
    if states is None:
        return WrongActor(CLASSIFY, actor.kind)
    if actor.kind is K.AGENT and actor.id != order.claimed_by:
        return WrongActor(CLASSIFY, actor.kind)  # before the state: it is not its order
    if order.status not in states:
        return IllegalTransition(order.status, CLASSIFY)
    after = replace(
        order,
        required=item.materials,
        time_limit_days=item.time_limit_days,
        version=order.version + 1,
    )
    details = {"item": item.code, "item_name": item.name, "item_class": item.item_class}
    decision = _decision(order, after, "classified", actor, now, details)
    decision.changes.update(item=item.code, item_name=item.name, item_class=item.item_class)
    return decision


def _decision(
    before: OrderState, after: OrderState, kind: str, actor: Actor, now: int, details: Any
) -> Decision:
    changes = {
        f.name: getattr(after, f.name)
        for f in fields(after)
        if getattr(after, f.name) != getattr(before, f.name)
    }
    return Decision(after, changes, Event(kind, EVENT_LABELS[kind], actor, now, details))


def next_deadline(order: OrderState) -> tuple[Action, int] | None:
    """The clock action the sweeper owes ``order`` and from when, if any."""
    if order.status in (S.OFFERED, S.WIDENED):
        return A.ESCALATE, order.escalate_at
    if order.status is S.REPLIED and order.close_at is not None:
        return A.CLOSE, order.close_at
    return None
