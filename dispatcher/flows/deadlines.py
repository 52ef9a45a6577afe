"""The workflow's clock: escalating orders nobody claimed, closing replies nobody rated.

Like widening (:mod:`dispatcher.flows.widening`), these deadlines are data: ``orders.escalate_at``
and ``orders.close_at`` in Postgres, and the ``c:<id>`` members of the ``bb:due`` sorted set
in Redis that :meth:`~dispatcher.board.board.Board.announce` keeps in step.  Every process
sweeps the set with the widening sweep (:mod:`dispatcher.flows.sweeper`, every
``BANGBAN_SWEEP_INTERVAL``) and at start-up; the reconciler sweeps what
Postgres says is due, in case Redis lost the set.  The action itself goes through
:func:`dispatcher.flows.handling.act` as the ``system`` actor: the core refuses it before its
deadline (``not_due``) and Postgres records it only on the version decided on, so however many
processes sweep the same order it escalates or closes exactly once, and an order whose
deadline passed while every process was stopped is handled at the next start.
"""

from __future__ import annotations

import logging

from dispatcher.board import scripts as rs
from dispatcher.context import Context
from dispatcher.core.lifecycle import Actor, ActorKind
from dispatcher.core.workflow import NEVER, next_deadline, state_of
from dispatcher.flows import handling

log = logging.getLogger("bangban.deadlines")

SYSTEM = Actor(ActorKind.SYSTEM)


async def handle(ctx: Context, order_ids: list[int]) -> int:
    """Take the clock action each order is due for; returns how many this call took.

    Orders with nothing due any more leave the Redis schedule; orders not due yet (a stale
    score) are put back at their deadline.
    """
    done: list[int] = []
    taken = 0
    for order_id in order_ids:
        order = await ctx.store.get_order(order_id)
        deadline = None if order is None else next_deadline(state_of(order))
        if order is None or deadline is None or deadline[1] >= NEVER:
            done.append(order_id)
            continue
        action, due = deadline
        if due > ctx.clock():
            await ctx.board.reschedule(order_id, due, kind=rs.CLOCK)
            continue
        outcome = await handling.act(ctx, order_id, action, SYSTEM, "system")
        if not isinstance(outcome, handling.Recorded):
            # Not due after all, or someone acted meanwhile (their announce reschedules it).
            log.info("clock action skipped order_id=%s code=%s", order_id, outcome.code)
            continue
        after = outcome.order
        taken += 1
        lateness = ctx.clock() - due
        log.info(
            "order %s by the clock order_id=%s late_ms=%d", after.status.value, order_id, lateness
        )
    await ctx.board.unschedule(done, kind=rs.CLOCK)
    return taken


async def backstop(ctx: Context) -> int:
    """What Postgres says is due (for the reconciler: Redis may have lost its schedule)."""
    due = await ctx.store.due_deadlines(ctx.clock())
    return await handle(ctx, due) if due else 0
