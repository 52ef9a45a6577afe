"""Graceful drain: what a process does on SIGTERM before it exits.

1. It stops taking connections: new websockets are closed with 1012 at once, and
   ``/v1/healthz`` answers 503 ``draining`` so that a load balancer stops sending it traffic
   (uvicorn then stops listening when the process exits the drain).
2. Claims in flight finish and their answers are written.
3. Every agent's and tracker's socket is closed with **1012** (service restart): clients
   reconnect, to another process, and get their snapshot there.
4. The caller then shuts uvicorn down (requests in flight finish) and the lifespan closes
   the pools.
"""

from __future__ import annotations

import asyncio
import logging
import time

from dispatcher.context import Context

log = logging.getLogger("bangban.drain")

DRAIN_S = 10.0
"""At most this long for claims in flight to finish and sockets to close."""


async def drain(ctx: Context, timeout: float = DRAIN_S) -> bool:
    """Drain this process (see the module docstring).  Returns True when every socket
    closed within ``timeout``."""
    ctx.draining.set()
    for closer in list(ctx.on_drain):  # a socket registering from now on sees draining set
        closer()
    agents, trackers = len(ctx.hub.agents), sum(len(t) for t in ctx.hub.trackers.values())
    log.warning("draining agents=%d trackers=%d", agents, trackers)
    deadline = time.monotonic() + timeout
    while ctx.hub.agents or ctx.hub.trackers:
        if time.monotonic() >= deadline:
            log.error("drain timed out agents=%d left", len(ctx.hub.agents))
            return False
        await asyncio.sleep(0.02)
    log.warning("drained")
    return True
