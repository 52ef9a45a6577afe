"""The Starlette application: ``create_app(settings)`` and the lifespan that owns everything.

The lifespan opens the Postgres pool (applying pending migrations) and the Redis clients,
makes sure an admin token exists, starts the background tasks (pub/sub listener, widening
sweeper, reconciler), reconciles and sweeps once before the first request, and on exit
cancels and awaits every task and closes every pool.  There are no module globals: the
:class:`~dispatcher.context.Context` hangs on ``app.state.ctx``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from starlette.applications import Starlette

from dispatcher import auth
from dispatcher.auth import Authenticator
from dispatcher.board.board import Board
from dispatcher.context import Clock, Context, make_policy, wall_clock
from dispatcher.core.catalog import load_catalog
from dispatcher.core.roster import TokenKind
from dispatcher.exceptions import ConfigError, RedisUnavailableError
from dispatcher.flows import deadlines, reconciler, sweeper, widening
from dispatcher.flows.claims import HOLD_MS
from dispatcher.live import gc_policy, sockets
from dispatcher.live.asgi import Message, Receive, Send
from dispatcher.live.hub import Hub, Payload
from dispatcher.live.wire import Offer, StatusChange
from dispatcher.metrics import Metrics
from dispatcher.settings import Settings
from dispatcher.store.store import Store
from dispatcher.web import admin, catalog, open311, openapi, order_actions, orders

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
            link.outbox.push(Payload.of(Offer(order.to_wire(), at_limit=at_limit)))
    for order_id, trackers in list(ctx.hub.trackers.items()):
        current = await ctx.store.get_order(order_id)
        if current is not None:
            for tracker in trackers:
                tracker.outbox.push(Payload.of(StatusChange(current.to_wire(ctx.clock()))))


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
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


async def _wait_for_redis(board: Board, attempts: int = 40) -> None:
    for _ in range(attempts):
        try:
            await board.probe()
            return
        except RedisUnavailableError:
            await asyncio.sleep(0.25)
    await board.probe()


class App(Starlette):
    """Starlette, but the websocket endpoints are served straight from ASGI
    (:func:`dispatcher.live.sockets.serve`; :mod:`dispatcher.live.asgi` says why)."""

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            ctx: Context = self.state.ctx
            if await sockets.serve(ctx, scope, receive, send):
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    clock: Clock = wall_clock,
    on_started: Callable[[Started], None] | None = None,
) -> Starlette:
    """Build the app.  ``settings`` must name Redis and Postgres (the CLI starts embedded
    ones when the environment does not)."""
    if not settings.redis_url or not settings.database_url:
        raise ConfigError("create_app needs redis_url and database_url")
    redis_url, database_url = settings.redis_url, settings.database_url
    policy = make_policy(settings)  # a bad calendar file fails here, before anything starts
    items = load_catalog(settings.catalog_path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await Store.connect(database_url, max_size=settings.pg_pool_size)
        closed_ttl_ms = int(settings.claim_memory * 1000)
        board = Board.from_url(redis_url, hold_ms=HOLD_MS, closed_ttl_ms=closed_ttl_ms)
        # Pub/sub gets its own client: a subscribed connection cannot run commands, and it
        # must not time out while the channel is quiet.
        listener = aioredis.Redis.from_url(
            redis_url, health_check_interval=5, socket_connect_timeout=5
        )
        tasks: list[asyncio.Task[None]] = []
        metrics = Metrics()
        metrics.watch_gc()
        try:
            applied = await store.migrate()
            if applied:
                log.info("migrations applied names=%s", ",".join(applied))
            await _wait_for_redis(board)
            generated = await ensure_admin_token(store, settings)
            seeded = await store.seed_catalog(items.values())
            if seeded:
                log.info("catalogue seeded items=%d", seeded)
            hub = Hub(listener, metrics=metrics, max_held=settings.max_held)
            metrics.watch_hub(lambda: hub.by_grid, lambda: len(hub.agents))
            ctx = Context(
                settings,
                store,
                board,
                hub,
                Authenticator(store),
                clock,
                metrics=metrics,
                policy=policy,
            )
            hub.resync = lambda: resync(ctx)
            app.state.ctx = ctx
            await ctx.reload_grids(force=True)
            tasks.append(asyncio.create_task(metrics.sample_loop_lag(), name="loop-lag"))
            tasks.append(asyncio.create_task(hub.run(), name="pubsub"))
            await asyncio.wait_for(hub.ready.wait(), 10)
            # Before the first request: repair Redis from Postgres and widen what fell due
            # while no process was running.
            await reconciler.reconcile(ctx)
            await widening.sweep(ctx)
            await deadlines.sweep(ctx)
            tasks.append(asyncio.create_task(sweeper.run(ctx), name="sweeper"))
            tasks.append(asyncio.create_task(reconciler.run(ctx), name="reconciler"))
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
            yield
        finally:
            metrics.unwatch_gc()
            await _stop(tasks)

            await listener.aclose()
            await board.close()
            await store.close()

    from dispatcher.web.http import EXCEPTION_HANDLERS

    return App(
        routes=[
            *orders.routes,
            *order_actions.routes,
            *catalog.routes,
            *admin.routes,
            *orders.metrics_routes,
            *openapi.routes,
            *open311.routes,
        ],
        lifespan=lifespan,
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
