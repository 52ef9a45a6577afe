"""Revocation: a token revoked, an agent deactivated or reactivated, effective everywhere.

Postgres records it first (``tokens.revoked_at``, ``agents.active``), so every later lookup
refuses the token; then it is published on Redis (``bb:auth``), and every process's hub
drops the cached principal and closes that principal's websockets with 4401 (this process's
too: it hears its own publication).  If Redis is down the publication is lost, and the
change takes effect as the auth cache entries expire (30 s).
"""

from __future__ import annotations

import logging
from typing import Any

from dispatcher.context import Context
from dispatcher.core.roster import Agent
from dispatcher.exceptions import RedisUnavailableError

log = logging.getLogger("bangban.revocation")


async def _publish(
    ctx: Context, *, token_id: int | None = None, agent_id: int | None = None
) -> None:
    try:
        await ctx.board.publish_revocation(token_id=token_id, agent_id=agent_id)
    except RedisUnavailableError as exc:
        # Recorded in Postgres; here at least, at once.
        log.warning(
            "revocation not published token_id=%s agent_id=%s error=%s", token_id, agent_id, exc
        )
        ctx.hub.revoked(token_id, agent_id)


async def revoke_token(ctx: Context, token_id: int) -> dict[str, Any] | None:
    """Revoke token ``token_id``: its metadata, or None if there is no such token."""
    revoked = await ctx.store.revoke_token(token_id)
    if revoked is not None:
        log.info("token revoked token_id=%s kind=%s", token_id, revoked["kind"])
        await _publish(ctx, token_id=token_id)
    return revoked


async def set_agent_active(ctx: Context, agent_id: int, active: bool) -> Agent | None:
    """Deactivate (its tokens stop working, its connections close) or reactivate an agent."""
    agent = await ctx.store.set_agent_active(agent_id, active)
    if agent is not None:
        log.info("agent %s agent_id=%s", "reactivated" if active else "deactivated", agent_id)
        await _publish(ctx, agent_id=agent_id)  # a reactivation drops cached refusals: none
    return agent
