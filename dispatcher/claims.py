"""The claim flow: Redis decides who may record a claim, Postgres records the one winner.

1. CLAIM (Lua, atomic) answers at once for everyone but one claimant, who gets a *hold*.
2. The holder's claim is recorded in Postgres by a conditional update that can never record a
   second winner, even if Redis had lost its data.
3. Only then is the holder told ``won``; Redis is synced and the change published, so every
   other agent who was shown the order gets ``withdrawn``.

If Postgres is unreachable the hold is dropped and the claimant gets ``unavailable``: nothing
is half-recorded.  If Redis is unreachable the claimant gets ``unavailable`` too.  If the
process dies while holding, the hold expires (``hold_ms``) and the next claimant takes over;
whatever Postgres recorded meanwhile wins.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dispatcher import redis_scripts as rs
from dispatcher.context import Context
from dispatcher.exceptions import RedisUnavailableError, StoreUnavailableError
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
    result = await ctx.board.claim(order_id, agent.id, field, agent.grids, now)
    if result == ClaimOutcome.UNKNOWN_ORDER:
        # Redis may have lost or expired the order: Postgres remembers.
        stored = await ctx.store.get_order(order_id)
        if stored is None:
            return ClaimOutcome.UNKNOWN_ORDER
        await ctx.board.sync(stored)
        result = await ctx.board.claim(order_id, agent.id, field, agent.grids, now)
    if result == rs.BUSY:
        return ClaimOutcome.UNAVAILABLE
    if result != rs.HOLD:
        return ClaimOutcome(result)

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
            await ctx.board.announce(
                won, reason=withdrawn_reason(won), answer_field=field, answer=ClaimOutcome.WON
            )
        except RedisUnavailableError:
            # The win is durable; the reconciler brings Redis and the other agents up to date.
            log.warning("claim announce failed order_id=%s; reconciler will repair", order_id)
        return ClaimOutcome.WON

    # Postgres says the order is no longer open: Redis was behind (lost data, or a holder
    # that died after recording).  Postgres is right; bring Redis up to date and answer.
    current = await ctx.store.get_order(order_id)
    if current is None:
        return ClaimOutcome.UNKNOWN_ORDER
    outcome = decide_claim(current, agent.id, agent.grids)
    await ctx.board.announce(
        current, reason=withdrawn_reason(current), answer_field=field, answer=outcome.value
    )
    return outcome
