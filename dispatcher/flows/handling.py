"""The workflow after the grab, made so: decide in the core, record in Postgres, announce.

Every action (an agent accepting, an applicant rating, an operator reassigning, the clock
escalating) goes through :func:`act`:

1. read the order from Postgres and ask :func:`dispatcher.core.workflow.decide` (or ``classify``);
   a refusal becomes its HTTP error and nothing is changed;
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
first one just reassigned), 409 ``conflict`` with the current state, to look and retry.

If Redis fails after Postgres recorded the change, the change stands and the reconciler
repairs Redis and the held counts within ``BANGBAN_RECONCILE_INTERVAL``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from dispatcher.context import Context
from dispatcher.core.lifecycle import trail_entry
from dispatcher.core.orders import HELD_STATUSES, Order, reoffered, withdrawn_reason
from dispatcher.core.workflow import (
    NO_PARAMS,
    Action,
    Actor,
    Decision,
    OrderState,
    Params,
    Refusal,
    decide,
    state_of,
)
from dispatcher.exceptions import ConflictError, NotFoundError, RedisUnavailableError, RequestError

log = logging.getLogger("bangban.handling")

ATTEMPTS = 3
"""How often an action is decided again when a change of the same phase came in between."""

Decider = Callable[[OrderState, int], Decision | Refusal]


async def act(
    ctx: Context,
    order_id: int,
    action: Action,
    actor: Actor,
    name: str,
    params: Params = NO_PARAMS,
    *,
    version: int | None = None,
) -> tuple[Order, Decision]:
    """``actor`` (named ``name`` in the trail) does ``action`` to the order.  Returns the order
    as recorded and the decision.  Raises RequestError (404, the refusal, 409 ``conflict`` or
    ``limit_reached``, 422) or StoreUnavailableError / RedisUnavailableError (503: nothing
    recorded)."""

    def decider(state: OrderState, now: int) -> Decision | Refusal:
        return decide(state, action, actor, now, ctx.policy, params)

    return await apply(ctx, order_id, decider, name, action=action, version=version)


async def apply(
    ctx: Context,
    order_id: int,
    decider: Decider,
    name: str,
    *,
    action: Action | None = None,
    version: int | None = None,
) -> tuple[Order, Decision]:
    """Decide with ``decider`` and record it, as :func:`act` describes.  With ``version``,
    only if the order is still at that version (409 ``conflict`` otherwise)."""
    order = await ctx.store.get_order(order_id)
    for _ in range(ATTEMPTS):
        if order is None:
            raise NotFoundError("no such order")
        if version is not None and order.version != version:
            raise _conflict(order)
        now = ctx.clock()
        decision = decider(state_of(order), now)
        if isinstance(decision, Refusal):
            raise decision.as_error()
        changes = dict(decision.changes)
        if action is Action.RELEASE:
            changes.update(reoffered(order, now))  # a fresh ladder from now
        taker = decision.order.claimed_by if decision.order.status in HELD_STATUSES else None
        giver = order.claimed_by if order.is_held else None
        reserved = taker is not None and taker != giver and await _reserve(ctx, taker, order, now)
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
            return recorded, decision
        fresh = await ctx.store.get_order(order_id)
        if fresh is None or _phase(fresh) != _phase(order):
            _explain(fresh, decider, ctx.clock())
        order = fresh
    raise ConflictError("the order keeps changing; retry", code="conflict")


def _phase(order: Order) -> tuple[str, int | None]:
    """What an action was decided on, as far as a concurrent change can matter to it."""
    return ("open" if order.is_open else order.status.value, order.claimed_by)


def _explain(fresh: Order | None, decider: Decider, now: int) -> None:
    """Raise what the action meets now that the order moved to another phase."""
    if fresh is None:
        raise NotFoundError("no such order")
    again = decider(state_of(fresh), now)
    if isinstance(again, Refusal):
        raise again.as_error()
    raise _conflict(fresh)


def _conflict(order: Order) -> ConflictError:
    return ConflictError(
        f"the order changed meanwhile: it is {order.status.value} now (version"
        f" {order.version}); look and retry",
        code="conflict",
        details={"current_state": order.status.value, "version": order.version},
    )


async def _reserve(ctx: Context, agent_id: int, order: Order, now: int) -> bool:
    """Reserve a place for an order an operator gives to ``agent_id``.  Raises 409
    ``limit_reached`` when the agent holds as many as allowed.  True when reserved."""
    place = await ctx.board.reserve(agent_id, order.id, now, ctx.settings.max_held)
    if place == "full":
        raise RequestError(
            f"agent {agent_id} holds {ctx.settings.max_held} orders already",
            code="limit_reached",
            status=409,
            details={"agent_id": agent_id, "limit": ctx.settings.max_held},
        )
    return place == "ok"


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
        log.warning("order %s recorded but not announced (reconciler repairs): %s", after.id, exc)
    log.info(
        "order changed order_id=%s event=%s status=%s actor=%s",
        after.id,
        event.kind,
        after.status.value,
        event.actor.kind.value,
    )
