"""A claim's win told, and the truth after a claim's write lost its answer (part of the
claim flow, :mod:`dispatcher.flows.claims`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from dispatcher.context import Context
from dispatcher.core.lifecycle import trail_entry
from dispatcher.core.orders import ClaimOutcome, Order, decide_claim, withdrawn_reason
from dispatcher.core.roster import Agent
from dispatcher.exceptions import RedisUnavailableError, StoreUnavailableError

log = logging.getLogger("bangban.claims")


async def announce_win(ctx: Context, agent: Agent, won: Order, field: str, now: int) -> None:
    """Postgres recorded ``agent`` as the winner: hold it, tell everyone."""
    log.debug("claim won order_id=%s agent_id=%s", won.id, agent.id)
    try:
        await ctx.board.announce(
            won,
            reason=withdrawn_reason(won),
            answer_field=field,
            answer=ClaimOutcome.WON,
            event=trail_entry("claimed", now),
            holder=(agent.id, now),  # the place becomes a holding; the event has the count
        )
    except RedisUnavailableError:
        # The win is durable; the repairs (or the reconciler) bring Redis and the other
        # agents up to date.
        log.warning("claim announce failed order_id=%s; repaired later", won.id)
        ctx.repairs.note(won.id)


# --- the truth after an ambiguous write ------------------------------------------------------

SETTLE_WAIT_S = 1.0
"""How long a claim whose write lost its answer tries to find out before answering
``pending`` (on top of the write's own timeout)."""
SETTLE_GIVE_UP_S = 600.0
"""How long a ``pending`` claim keeps trying to find out in the background; after that the
client's retry with the same ``request_id`` finds out (docs/PROTOCOL.md)."""


async def ambiguous(
    ctx: Context,
    agent: Agent,
    order_id: int,
    field: str,
    now: int,
    backend: int,
    reserved: bool,
) -> ClaimOutcome:
    """The claim's write was sent and its answer lost (a timeout, a lost connection): it may
    have committed, or may still.  Find out what Postgres recorded and answer that: ``won``
    if the claim committed; ``taken``, ``not_offered`` or ``unavailable`` (nothing recorded:
    retry) if it did not.  If Postgres does not answer within :data:`SETTLE_WAIT_S`, answer
    ``pending`` and go on finding out in the background (:attr:`Context.settling`); the
    agent's socket gets the final answer as another ``claim_result``.

    The hold stays in Redis meanwhile (it lapses after ``HOLD_MS``; Postgres never records a
    second winner whatever Redis says), and so does the reserved place, which the resolution
    turns into a holding or gives back."""
    ctx.metrics.postgres_errors.inc()
    deadline = time.monotonic() + SETTLE_WAIT_S
    while True:
        try:
            return await _resolve(ctx, agent, order_id, field, now, backend, reserved)
        except StoreUnavailableError:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
    task = asyncio.create_task(
        _settle_later(ctx, agent, order_id, field, now, backend, reserved),
        name=f"settle-claim-{order_id}",
    )
    ctx.settling[field] = task
    task.add_done_callback(lambda _t: ctx.settling.pop(field, None))
    return ClaimOutcome.PENDING


async def _resolve(
    ctx: Context,
    agent: Agent,
    order_id: int,
    field: str,
    now: int,
    backend: int,
    reserved: bool,
) -> ClaimOutcome:
    """Once the backend that ran the write has ended, read what it recorded and act on it.
    Raises StoreUnavailableError while Postgres cannot tell."""
    await ctx.store.settle_backend(backend)
    current = await ctx.store.get_order(order_id)
    if current is None:
        return ClaimOutcome.UNKNOWN_ORDER
    if current.claimed_by == agent.id and not current.is_open:
        log.warning("claim found recorded after all order_id=%s agent_id=%s", order_id, agent.id)
        await announce_win(ctx, agent, current, field, now)
        return ClaimOutcome.WON
    # Not recorded: let others try, give the place back, and say what is true now.
    ctx.hub.claimed.forget(order_id)
    with contextlib.suppress(RedisUnavailableError):
        await ctx.board.release_hold(order_id, agent.id, now)
        if reserved:
            await ctx.board.set_held(agent.id, order_id, None, now=now, only_pending=True)
    outcome = decide_claim(current, agent.id, agent.grids)
    if outcome in (ClaimOutcome.TAKEN, ClaimOutcome.NOT_OFFERED):
        return outcome
    return ClaimOutcome.UNAVAILABLE  # open to the agent, nothing recorded: retry


async def _settle_later(
    ctx: Context,
    agent: Agent,
    order_id: int,
    field: str,
    now: int,
    backend: int,
    reserved: bool,
) -> ClaimOutcome:
    delay = 0.1
    give_up = time.monotonic() + SETTLE_GIVE_UP_S
    while True:
        try:
            outcome = await _resolve(ctx, agent, order_id, field, now, backend, reserved)
        except StoreUnavailableError:
            if time.monotonic() >= give_up:
                log.error("claim still pending order_id=%s: left to retries", order_id)
                return ClaimOutcome.PENDING
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        ctx.metrics.claims.labels(outcome.value).inc()
        log.info("pending claim settled order_id=%s outcome=%s", order_id, outcome.value)
        return outcome
