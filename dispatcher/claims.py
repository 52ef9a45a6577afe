"""The claim flow: Redis decides who may record a claim, Postgres records the one winner.

1. CLAIM (Lua, atomic) answers at once for everyone but one claimant, who gets a *hold*.
2. The holder's claim is recorded in Postgres by a conditional update that can never record a
   second winner, even if Redis had lost its data.
3. Only then is the holder told ``won``; Redis is synced and the change published, so every
   other agent who was shown the order gets ``withdrawn``.

An agent holds at most ``BANGBAN_MAX_HELD`` orders.  The agent's count lives under its own
key (another cluster slot than the order's), so before step 1 the claim reserves a place there
(RESERVE, atomic on the agent's key); the place becomes a holding once Postgres recorded the
win, and is given back otherwise.  An agent with no place left still runs CLAIM, told so: it
answers ``limit_reached`` only where the claim could have been won (never ``taken`` turned
into ``limit_reached``), and ``won`` to the agent that already holds the order.

If Postgres is unreachable the hold is dropped and the claimant gets ``unavailable``: nothing
is half-recorded.  If Redis is unreachable the claimant gets ``unavailable`` too.  If the
process dies while holding, the hold expires (``hold_ms``) and the next claimant takes over;
whatever Postgres recorded meanwhile wins.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from dispatcher import redis_scripts as rs
from dispatcher.context import Context
from dispatcher.exceptions import RedisUnavailableError, StoreUnavailableError
from dispatcher.lifecycle import trail_entry
from dispatcher.orders import ClaimOutcome, decide_claim, withdrawn_reason
from dispatcher.roster import Agent

log = logging.getLogger("bangban.claims")

HOLD_MS = 10_000
"""A hold older than this is presumed dead (longer than Postgres's 5 s command timeout)."""


def answer_field(agent_id: int, request_id: Any) -> str:
    return f"{agent_id}:{type(request_id).__name__[0]}:{request_id}"


async def claim(ctx: Context, agent: Agent, order_id: int, request_id: Any) -> ClaimOutcome:
    """Try to claim ``order_id`` for ``agent``.  Never raises for an expected outcome.

    Repeating a ``request_id`` gets the first answer again (except ``unavailable``, which is
    never remembered: the client should retry).
    """
    field = answer_field(agent.id, request_id)
    started = time.perf_counter()
    try:
        outcome = await _claim(ctx, agent, order_id, field)
    except (RedisUnavailableError, StoreUnavailableError) as exc:
        log.warning("claim unavailable order_id=%s agent_id=%s error=%s", order_id, agent.id, exc)
        failed = ctx.metrics.redis_errors if isinstance(exc, RedisUnavailableError) else None
        (failed or ctx.metrics.postgres_errors).inc()
        outcome = ClaimOutcome.UNAVAILABLE
    ctx.metrics.claims.labels(outcome.value).inc()
    ctx.metrics.claim_seconds.observe(time.perf_counter() - started)
    return outcome


async def _claim(ctx: Context, agent: Agent, order_id: int, field: str) -> ClaimOutcome:
    now = ctx.clock()
    place = await ctx.board.reserve(agent.id, order_id, now, ctx.settings.max_held)
    recorded = False
    try:
        outcome, recorded = await _decide(ctx, agent, order_id, field, now, place == "full")
    finally:
        if place == "ok" and not recorded:
            # Give the place back; if Redis fails here the reservation lapses by itself.
            with contextlib.suppress(RedisUnavailableError):
                await ctx.board.set_held(agent.id, order_id, None, now=now, only_pending=True)
    return outcome


async def _decide(
    ctx: Context, agent: Agent, order_id: int, field: str, now: int, full: bool
) -> tuple[ClaimOutcome, bool]:
    """The claim's outcome, and whether this call recorded a new win in Postgres."""
    result = await ctx.board.claim(order_id, agent.id, field, agent.grids, now, at_limit=full)
    if result == ClaimOutcome.UNKNOWN_ORDER:
        # Redis may have lost or expired the order: Postgres remembers.
        stored = await ctx.store.get_order(order_id)
        if stored is None:
            return ClaimOutcome.UNKNOWN_ORDER, False
        await ctx.board.sync(stored)
        result = await ctx.board.claim(order_id, agent.id, field, agent.grids, now, at_limit=full)
    if result == rs.BUSY:
        return ClaimOutcome.UNAVAILABLE, False
    if result != rs.HOLD:
        return ClaimOutcome(result), False

    try:
        won = await ctx.store.claim_order(order_id, agent.id, now)
    except StoreUnavailableError:
        # Nothing recorded: let others try.  If Redis is down too, the hold simply expires.
        try:
            await ctx.board.release_hold(order_id, agent.id, now)
        except RedisUnavailableError:
            pass
        raise
    if won is not None:
        log.debug("claim won order_id=%s agent_id=%s", order_id, agent.id)
        try:
            held = await ctx.board.set_held(agent.id, order_id, now, now=now)
            await ctx.board.announce(
                won,
                reason=withdrawn_reason(won),
                answer_field=field,
                answer=ClaimOutcome.WON,
                event=trail_entry("claimed", now),
                held={agent.id: held},
            )
        except RedisUnavailableError:
            # The win is durable; the reconciler brings Redis and the other agents up to date.
            log.warning("claim announce failed order_id=%s; reconciler will repair", order_id)
        return ClaimOutcome.WON, True

    # Postgres says the order is no longer open to this agent: Redis was behind (lost data, a
    # holder that died after recording, a change not yet synced).  Postgres is right; bring
    # Redis up to date and answer.
    current = await ctx.store.get_order(order_id)
    if current is None:
        return ClaimOutcome.UNKNOWN_ORDER, False
    outcome = decide_claim(current, agent.id, agent.grids, at_limit=full)
    answer = "" if outcome is ClaimOutcome.LIMIT_REACHED else outcome.value
    await ctx.board.announce(
        current,
        reason=withdrawn_reason(current),
        answer_field=field if answer else "",
        answer=answer,
    )
    return outcome, False
