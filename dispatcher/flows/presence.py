"""The presence loop: this process tells Redis which agents are connected to it.

It republishes within ``REFRESH`` seconds of a change (an agent connecting or leaving), and
every third of ``BANGBAN_PRESENCE_TTL`` regardless, so the list outlives a dead process by at
most the TTL (:mod:`dispatcher.board.presence`).  On a clean stop the list is withdrawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from dispatcher.context import Context
from dispatcher.exceptions import RedisUnavailableError

log = logging.getLogger("bangban.presence")

REFRESH = 0.25


async def online(ctx: Context) -> dict[int, list[str]]:
    """Agent id → the processes it is connected to, now.  Raises RedisUnavailableError."""
    assert ctx.presence is not None
    return await ctx.presence.online(ctx.clock())


async def connected(ctx: Context, agents: Sequence[int]) -> set[int]:
    """Which of ``agents`` are connected now.  Raises RedisUnavailableError."""
    assert ctx.presence is not None
    return await ctx.presence.connected(agents, ctx.clock())


async def run(ctx: Context) -> None:
    presence = ctx.presence
    assert presence is not None
    ttl_ms = round(ctx.settings.presence_ttl * 1000)
    every = ctx.settings.presence_ttl / 3
    published: frozenset[int] | None = None
    at = 0.0
    try:
        while True:
            current = frozenset(ctx.hub.by_agent)
            if current != published or time.monotonic() - at >= every:
                try:
                    await presence.publish(current, ctx.clock(), ttl_ms)
                    published, at = current, time.monotonic()
                except RedisUnavailableError as exc:
                    log.warning("presence not published error=%s", exc)
            await asyncio.sleep(REFRESH)
    finally:
        with contextlib.suppress(RedisUnavailableError):
            await asyncio.shield(presence.withdraw())
