"""Fair play around the claim flow: time each claim against its offer, apply the optional
minimum-reaction rule, and write what the connections noted to Postgres in the background.

The claim path gains two dict look-ups and a list append (no I/O); :func:`run_flusher`, owned
by the app's lifespan, writes the noted offers and claims every ``BANGBAN_FAIRPLAY_FLUSH``
seconds in one transaction, and once more on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from dispatcher.context import Context
from dispatcher.core.fairplay import ClaimRow, ignored
from dispatcher.core.orders import ClaimOutcome
from dispatcher.core.roster import Agent
from dispatcher.exceptions import StoreError, StoreUnavailableError
from dispatcher.flows import claims
from dispatcher.live.hub import AgentLink

log = logging.getLogger("bangban.fairplay")

TOO_FAST_MESSAGE = "claim ignored: faster than the minimum reaction time"


async def timed_claim(
    ctx: Context, agent: Agent, order_id: int, request_id: Any, links: Iterable[AgentLink]
) -> ClaimOutcome | None:
    """:func:`dispatcher.flows.claims.claim`, timed from the offer's delivery to ``links`` (the
    claiming connection; for an HTTP claim, the agent's connections in this process).

    Returns None, without claiming, when the minimum-reaction rule ignores the claim
    (``BANGBAN_MIN_REACTION_MS``): the caller answers ``too_fast``."""
    received = ctx.clock()
    delivered = ctx.hub.fairplay.delivered_at(links, order_id)
    reaction = None if delivered is None else max(0, received - delivered)
    if ignored(reaction, ctx.settings.min_reaction_ms):
        ctx.hub.fairplay.claimed(ClaimRow(agent.id, order_id, delivered, received, "", True))
        log.info(
            "claim ignored order_id=%s agent_id=%s reaction_ms=%s", order_id, agent.id, reaction
        )
        return None
    outcome = await claims.claim(ctx, agent, order_id, request_id)
    if outcome is not ClaimOutcome.UNAVAILABLE:  # a retry will come: count that one
        row = ClaimRow(agent.id, order_id, delivered, received, outcome.value, False)
        ctx.hub.fairplay.claimed(row)
    return outcome


async def flush(ctx: Context) -> int:
    """Write what was noted since the last flush.  Returns the claims written.  When Postgres
    is unavailable, puts it all back for the next flush and raises StoreUnavailableError; when
    it refuses the batch, logs and drops it (never raises anything else)."""
    offers, rows = ctx.hub.fairplay.take()
    if not offers and not rows:
        return 0
    try:
        await ctx.store.record_fairplay(offers, rows, ctx.clock())
    except StoreUnavailableError:
        ctx.hub.fairplay.put_back(offers, rows)
        raise
    except StoreError as exc:  # refused, not unavailable: retrying would refuse it again
        log.error("fairplay figures dropped claims=%d error=%s", len(rows), exc)
        return 0
    return len(rows)


async def run_flusher(ctx: Context) -> None:
    """Flush every ``BANGBAN_FAIRPLAY_FLUSH`` seconds until cancelled.  The lifespan flushes
    once more after stopping the tasks, before it closes the pool (:func:`final_flush`)."""
    while True:
        await asyncio.sleep(ctx.settings.fairplay_flush)
        try:
            await flush(ctx)
        except StoreUnavailableError as exc:
            log.warning("fairplay flush postponed error=%s", exc)


async def final_flush(ctx: Context) -> None:
    try:
        await flush(ctx)
    except StoreUnavailableError:
        log.warning("fairplay figures of the last moments not written")
