"""The workflow after the grab, made so: decide in the core, record in Postgres, announce.

Every action (an agent accepting, an applicant rating, an operator reassigning, the clock
escalating) goes through :func:`act`:

1. read the order from Postgres and ask :func:`dispatcher.core.workflow.decide` (or
   ``classify``); a refusal is returned as it is and nothing is changed;
2. store the decision with :meth:`~dispatcher.store.store.Store.record`, conditional on the version
   decided on, with its trail event in the same statement;
3. keep the agents' held counts (``BANGBAN_MAX_HELD``) and Redis in step, and publish the
   change (offers, withdrawals, the agent's ``update``, the applicant's ``status``).

Races are settled by step 2.  Of two people acting on the same version exactly one is
recorded; the other reads the order again.  If the order is still in the same phase (the same
state and agent: a widening or a progress note came in between) the action is decided again
on what is there now.  Otherwise the other learns what happened: the refusal the new state
gives (``illegal_transition`` naming it, e.g. a second rating), or, where the action would
still be allowed but means something else now (a second operator reassigning an order the
first one just reassigned), :class:`~dispatcher.core.refusals.Changed` with the current state.

Every outcome is a value (:data:`Outcome`): :class:`Recorded` or a refusal.  Only the web layer
turns refusals into HTTP errors; the clock's sweeps just look at them.

If Redis fails after Postgres recorded the change, the change stands and the reconciler
repairs Redis and the held counts within ``BANGBAN_RECONCILE_INTERVAL``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from dispatcher.context import Context
from dispatcher.core.lifecycle import NO_PARAMS, Action, Actor, OrderState, Params, trail_entry
from dispatcher.core.orders import HELD_STATUSES, Order, reoffered, withdrawn_reason
from dispatcher.core.refusals import Changed, LimitReached, NoSuchOrder, Refusal
from dispatcher.core.workflow import Decision, decide, state_of
from dispatcher.exceptions import RedisUnavailableError

log = logging.getLogger("bangban.handling")

ATTEMPTS = 3
"""How often an action is decided again when a change of the same phase came in between."""

Decider = Callable[[OrderState, int], Decision | Refusal]


@dataclass(frozen=True, slots=True)
class Recorded:
    """The action was recorded: the order as stored, and the decision with its event."""

    order: Order
    decision: Decision


Outcome = Recorded | Refusal
"""What :func:`act` and :func:`perform` return: the recorded change, or why nothing changed."""


async def act(
    ctx: Context,
    order_id: int,
    action: Action,
    actor: Actor,
    name: str,
    params: Params = NO_PARAMS,
    *,
    version: int | None = None,
) -> Outcome:
    """``actor`` (named ``name`` in the trail) does ``action`` to the order.  Returns
    :class:`Recorded`, or the refusal (the core's, :class:`NoSuchOrder`, :class:`Changed`,
    :class:`LimitReached`) with nothing changed.  Raises StoreUnavailableError /
    RedisUnavailableError (503: nothing recorded)."""

    def decider(state: OrderState, now: int) -> Decision | Refusal:
        return decide(state, action, actor, now, ctx.policy, params)

    return await perform(ctx, order_id, decider, name, action=action, version=version)


async def perform(
    ctx: Context,
    order_id: int,
    decider: Decider,
    name: str,
    *,
    action: Action | None = None,
    version: int | None = None,
) -> Outcome:
    """Decide with ``decider`` and record it, as :func:`act` describes.  With ``version``,
    only if the order is still at that version (:class:`Changed` otherwise)."""
    order = await ctx.store.get_order(order_id)
    for _ in range(ATTEMPTS):
        if order is None:
            return NoSuchOrder()
        if version is not None and order.version != version:
            return _changed(order)
        now = ctx.clock()
        decision = decider(state_of(order), now)
        if isinstance(decision, Refusal):
            return decision
        changes = dict(decision.changes)
        if action is Action.RELEASE:
            changes.update(reoffered(order, now))  # a fresh ladder from now
        taker = decision.order.claimed_by if decision.order.status in HELD_STATUSES else None
        giver = order.claimed_by if order.is_held else None
        reserved = False
        if taker is not None and taker != giver:
            place = await ctx.board.reserve(taker, order.id, now, ctx.settings.max_held)
            if place == "full":
                return LimitReached(taker, ctx.settings.max_held)
            reserved = place == "ok"
        recorded: Order | None = None
        try:
            event = decision.event
            recorded = await ctx.store.record(
                order, changes, kind=event.kind, at=now, actor=name, details=event.details
            )
        finally:
            if reserved and recorded is None and taker is not None:
                # Give the place back (if Redis fails here, the reservation lapses by itself).
                with contextlib.suppress(RedisUnavailableError):
                    await ctx.board.set_held(taker, order.id, None, now=now, only_pending=True)
        if recorded is not None:
            await _announce(ctx, order, recorded, decision, giver, taker, now)
            return Recorded(recorded, decision)
        fresh = await ctx.store.get_order(order_id)
        if fresh is None:
            return NoSuchOrder()
        if _phase(fresh) != _phase(order):
            return _explain(fresh, decider, ctx.clock())
        order = fresh
    return _changed(order) if order is not None else NoSuchOrder()


def _phase(order: Order) -> tuple[str, int | None]:
    """What an action was decided on, as far as a concurrent change can matter to it."""
    return ("open" if order.is_open else order.status.value, order.claimed_by)


def _explain(fresh: Order, decider: Decider, now: int) -> Refusal:
    """What the action meets now that the order moved to another phase."""
    again = decider(state_of(fresh), now)
    return again if isinstance(again, Refusal) else _changed(fresh)


def _changed(order: Order) -> Changed:
    return Changed(order.status.value, order.version)


async def _announce(
    ctx: Context,
    before: Order,
    after: Order,
    decision: Decision,
    giver: int | None,
    taker: int | None,
    now: int,
) -> None:
    """Bring the held counts and Redis in step with a recorded change, and publish it."""
    event = decision.event
    ctx.metrics.workflow.labels(event.kind).inc()
    trail = trail_entry(event.kind, event.at, event.details)
    try:
        held: dict[int, int] = {}
        if giver is not None and giver != taker:
            held[giver] = await ctx.board.set_held(giver, after.id, None, now=now)
        if taker is not None and taker != giver:
            held[taker] = await ctx.board.set_held(taker, after.id, now, now=now)
        await ctx.board.announce(
            after,
            reason=withdrawn_reason(after) if before.is_open else None,
            event=trail,
            notify=[a for a in (giver, taker, after.claimed_by) if a is not None],
            held=held,
        )
    except RedisUnavailableError as exc:
        log.warning("order %s recorded but not announced (repaired later): %s", after.id, exc)
        ctx.repairs.note(after.id)
    log.info(
        "order changed order_id=%s event=%s status=%s actor=%s",
        after.id,
        event.kind,
        after.status.value,
        event.actor.kind.value,
    )
