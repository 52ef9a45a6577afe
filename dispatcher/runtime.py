"""The running server: everything a process opens, starts, and closes on exit.

:func:`running` opens the Postgres pool (applying pending migrations) and the Redis clients,
makes sure an admin token exists, seeds the catalogue, starts the background tasks (pub/sub
listener, sweeper, reconciler, GC policy, loop-lag sampler), reconciles and sweeps once before
the first request, and yields the :class:`~dispatcher.context.Context`.  On exit it cancels and
awaits every task and closes every pool.  The web layer's lifespan (:mod:`dispatcher.web.app`)
is a thin wrapper around it; nothing here is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from dispatcher import auth
from dispatcher.auth import Authenticator
from dispatcher.board import scripts as rs
from dispatcher.board.board import Board
from dispatcher.board.checks import redis_warnings
from dispatcher.board.connect import cluster_client, is_cluster
from dispatcher.board.presence import Presence
from dispatcher.context import Clock, Context
from dispatcher.core.catalog import Item
from dispatcher.core.lifecycle import Policy
from dispatcher.core.roster import TokenKind
from dispatcher.exceptions import ConfigError, RedisUnavailableError
from dispatcher.flows import (
    fairplay,
    presence,
    reconciler,
    repairs,
    sms_sender,
    sweeper,
)
from dispatcher.flows.claims import HOLD_MS
from dispatcher.live import gc_policy
from dispatcher.live.hub import Hub
from dispatcher.live.outbox import Payload
from dispatcher.live.wire import Offer, StatusChange
from dispatcher.metrics import Metrics
from dispatcher.settings import Settings
from dispatcher.store.store import Store

log = logging.getLogger("bangban.app")


@dataclass
class Started:
    """What the lifespan reports once it is serving (the CLI prints it)."""

    generated_admin_token: str | None = None


async def ensure_admin_token(store: Store, settings: Settings) -> str | None:
    """Store the configured admin token; if none is configured and none exists, make one.

    Returns a newly generated token (to print once), else None.
    """
    if settings.admin_token:
        await store.add_token(auth.digest(settings.admin_token), TokenKind.ADMIN, "env")
        return None
    if await store.has_token_of_kind(TokenKind.ADMIN):
        return None
    token = auth.new_token(TokenKind.ADMIN)
    await store.add_token(auth.digest(token), TokenKind.ADMIN, "generated")
    return token


async def resync(ctx: Context) -> None:
    """Resend every local connection its snapshot (after pub/sub missed events)."""
    for link in list(ctx.hub.agents):
        at_limit = ctx.hub.at_limit(link.agent_id)
        for order in await ctx.store.open_orders_for(sorted(link.grids), link.agent_id):
            ctx.hub.fairplay.offered(link, order.id, order.grid, ctx.clock())
            link.outbox.push(Payload.of(Offer(order.to_wire(), at_limit=at_limit)))
    for order_id, trackers in list(ctx.hub.trackers.items()):
        current = await ctx.store.get_order(order_id)
        if current is not None:
            for tracker in trackers:
                tracker.outbox.push(Payload.of(StatusChange(current.to_wire(ctx.clock()))))


OFFER_WAIT_S = 2.0
"""At shutdown, how long the offers of orders already answered 201 may take."""


async def _stop(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel the background tasks and wait for them to end.

    A cancellation can be lost on Python 3.11: ``asyncio.wait_for`` (which redis-py uses for
    socket timeouts) returns the inner result when it completes as the cancel arrives, and the
    loop then sleeps on as if nothing happened.  So a task still running after a moment is
    cancelled again, until it ends.
    """
    for task in tasks:
        task.cancel()
    pending = set(tasks)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=0.5)
        for task in pending:
            task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def check_redis(board: Board, *, strict: bool) -> None:
    """Warn (refuse with ``BANGBAN_STRICT``) about an unsafe Redis: :mod:`.board.checks`."""
    for warning in redis_warnings(await board.config()):
        if strict:
            raise ConfigError(f"BANGBAN_STRICT: {warning}")
        log.warning("UNSAFE REDIS: %s (BANGBAN_STRICT=true refuses to start)", warning)


async def _wait_for_redis(board: Board, attempts: int = 40) -> None:
    for _ in range(attempts):
        try:
            await board.probe()
            return
        except RedisUnavailableError:
            await asyncio.sleep(0.25)
    await board.probe()


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    *,
    clock: Clock,
    policy: Policy,
    items: Mapping[str, Item],
    on_started: Callable[[Started], None] | None = None,
) -> AsyncIterator[Context]:
    """Open, start and yield the context; close everything on exit (see the module doc).
    ``settings`` must name Redis and Postgres."""
    redis_url, database_url = settings.redis_url, settings.database_url
    if not redis_url or not database_url:
        raise ConfigError("the server needs redis_url and database_url")
    store = await Store.connect(database_url, max_size=settings.pg_pool_size)
    closed_ttl_ms = int(settings.claim_memory * 1000)
    board = Board.from_url(
        redis_url,
        hold_ms=HOLD_MS,
        closed_ttl_ms=closed_ttl_ms,
        namespace=settings.key_namespace,
    )
    # Pub/sub gets its own client: a subscribed connection cannot run commands, and it
    # must not time out while the channel is quiet.
    listener: Any = (
        cluster_client(redis_url, health_check_interval=5, socket_connect_timeout=5)
        if is_cluster(redis_url)
        else aioredis.Redis.from_url(redis_url, health_check_interval=5, socket_connect_timeout=5)
    )
    tasks: list[asyncio.Task[None]] = []
    ctx: Context | None = None
    metrics = Metrics()
    metrics.watch_gc()
    try:
        applied = await store.migrate()
        if applied:
            log.info("migrations applied names=%s", ",".join(applied))
        await _wait_for_redis(board)
        if is_cluster(redis_url):
            await listener.initialize()  # (a cluster's pub/sub needs its slot map first)
        await check_redis(board, strict=settings.strict)
        log.info("redis namespace=%s channel=%s", settings.key_namespace, board.keys.events)
        generated = await ensure_admin_token(store, settings)
        seeded = await store.seed_catalog(items.values())
        if seeded:
            log.info("catalogue seeded items=%d", seeded)
        hub = Hub(
            listener,
            channel=board.keys.events,
            auth_channel=board.keys.of(rs.AUTH_CHANNEL),
            metrics=metrics,
            max_held=settings.max_held,
            clock=clock,
        )
        hub.beat = board.publish_beat
        metrics.watch_hub(lambda: hub.by_grid, lambda: len(hub.agents))
        ctx = Context(
            settings,
            store,
            board,
            hub,
            Authenticator(store, tracking_ttl=settings.tracking_ttl),
            clock,
            metrics=metrics,
            policy=policy,
        )
        # SMS (issue 13): who is connected, for texting those who are not.
        ctx.presence = Presence(
            board.redis,
            f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}",
            board.keys,
        )
        hub.resync = lambda: resync(ctx)
        hub.on_revoked = ctx.auth.invalidate
        await ctx.reload_grids(force=True)
        tasks.append(asyncio.create_task(metrics.sample_loop_lag(), name="loop-lag"))
        tasks.append(asyncio.create_task(hub.run(), name="pubsub"))
        tasks.append(asyncio.create_task(hub.beat_loop(), name="heartbeat"))
        await asyncio.wait_for(hub.ready.wait(), 10)
        # Before the first request: repair Redis from Postgres and widen what fell due
        # while no process was running.
        await reconciler.reconcile(ctx)
        await sweeper.sweep(ctx)
        tasks.append(asyncio.create_task(sweeper.run(ctx), name="sweeper"))
        tasks.append(asyncio.create_task(reconciler.run(ctx), name="reconciler"))
        tasks.append(asyncio.create_task(repairs.run(ctx), name="repairs"))
        tasks.append(asyncio.create_task(fairplay.run_flusher(ctx), name="fairplay"))
        tasks.append(asyncio.create_task(presence.run(ctx), name="presence"))
        tasks.append(asyncio.create_task(sms_sender.run(ctx), name="sms-sender"))
        if settings.gc_freeze_interval:
            gc_policy.freeze_round(full=False)  # what start-up built lives as long as we do
            tasks.append(
                asyncio.create_task(
                    gc_policy.run(settings.gc_freeze_interval, settings.gc_full_every),
                    name="gc",
                )
            )

        if on_started is not None:
            on_started(Started(generated))
        elif generated:
            log.warning("admin token generated (shown once) token=%s", generated)
        yield ctx
    finally:
        metrics.unwatch_gc()
        if ctx is not None and ctx.offering:  # filed orders' offers, after their 201s
            await asyncio.wait(set(ctx.offering), timeout=OFFER_WAIT_S)
        await _stop(tasks)
        if ctx is not None:
            await _stop(list(ctx.offering))  # (not offered yet: the reconciler offers them)
            await _stop(list(ctx.settling.values()))  # claims finding out what was recorded
        if ctx is not None:
            await fairplay.final_flush(ctx)  # claim timings not yet written

        await listener.aclose()
        await board.close()
        await store.close()
