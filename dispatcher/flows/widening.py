"""Widening: offering an open order further along its ladder when its deadline passes.

The widening deadline is data: ``orders.widen_at`` in Postgres and the ``w:<id>`` members of
the ``bb:due`` sorted set in Redis.  Every process sweeps the sorted set every
``sweep_interval`` (≤ 1 s) and at start-up; the widening itself is a conditional update in
Postgres, so however many processes sweep the same order, exactly one widens it and announces
it.  No in-process timer and no key-expiry event is involved, so an order whose deadline passed
while every process was stopped widens at the next start.

The loop that sweeps it, with the workflow's clock, is :mod:`dispatcher.flows.sweeper`; the
reconciler (:mod:`dispatcher.flows.reconciler`) widens what the Redis schedule lost.
"""

from __future__ import annotations

import logging

from dispatcher.context import Context
from dispatcher.core.lifecycle import trail_entry
from dispatcher.core.orders import Order, Reach, Status, advanced
from dispatcher.exceptions import RedisUnavailableError

log = logging.getLogger("bangban.widening")


async def _climb(ctx: Context, current: Order) -> tuple[Order | None, int]:
    """Move ``current`` up its ladder as far as is due.

    Returns (the order as this process last saw it, steps taken), or (None, steps) when another
    process moved it first: that process announces it, which also reschedules it.
    """
    steps = 0
    while True:
        now = ctx.clock()
        upcoming = current.step + 1
        if upcoming < len(current.schedule) and current.schedule[upcoming].reach in (
            Reach.NEIGHBOURS,
            Reach.PARENT,
        ):
            # Neighbours come from this process's copy of the grids: make sure it is the
            # newest generation (an import through another process may be seconds old).
            await ctx.reload_grids()
        nxt = advanced(current, now, ctx.audience)

        if nxt is None:
            return current, steps
        moved = await ctx.store.advance_order(current, nxt, now)
        if moved is None:
            return None, steps
        steps += 1
        ctx.metrics.widen_lateness.observe(max(0, now - (current.next_step_at or now)) / 1000)
        log.info(
            "order widened order_id=%s grid=%s reach=%s late_ms=%d",
            moved.id,
            moved.grid,
            moved.reach.value,
            now - (current.next_step_at or now),
        )
        details = {"step": moved.step, "reach": moved.reach.value}
        try:
            await ctx.board.announce(moved, event=trail_entry("widened", now, details))
        except RedisUnavailableError:
            ctx.repairs.note(moved.id)  # widened in Postgres: Redis must hear it (repairs)
            raise
        current = moved


async def widen(ctx: Context, order_ids: list[int]) -> int:
    """Move each due order up its ladder; returns how many steps this call took.

    Of several processes sweeping the same order, the conditional update lets exactly one move
    it per step.  Only orders this process has seen closed leave the schedule.
    """
    steps = 0
    done: list[int] = []
    for order_id in order_ids:
        stored = await ctx.store.get_order(order_id)
        if stored is None:
            done.append(order_id)
            continue
        current, taken = await _climb(ctx, stored)
        steps += taken
        if current is None:
            continue
        if current.status is not Status.OFFERED:
            done.append(order_id)
        elif current.next_step_at is not None and current.next_step_at > ctx.clock():
            await ctx.board.reschedule(order_id, current.next_step_at)  # the score was stale
    await ctx.board.unschedule(done)
    return steps
