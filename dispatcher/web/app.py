"""The Starlette application: ``create_app(settings)``, its routes, and its lifespan.

The lifespan runs :func:`dispatcher.runtime.running`, which opens the pools and owns every
background task, for as long as the app serves.  There are no module globals: the
:class:`~dispatcher.context.Context` hangs on ``app.state.ctx``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette

from dispatcher import runtime
from dispatcher.context import Clock, Context, make_policy, wall_clock
from dispatcher.core.catalog import load_catalog
from dispatcher.exceptions import ConfigError
from dispatcher.live import sockets
from dispatcher.live.asgi import Message, Receive, Send
from dispatcher.runtime import Started
from dispatcher.settings import Settings
from dispatcher.web import (
    admin,
    catalog,
    followups,
    open311,
    openapi,
    order_actions,
    orders,
    oversight,
    pages,
    payouts,
    sms,
)
from dispatcher.web import points as points_web

log = logging.getLogger("bangban.app")


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
    policy = make_policy(settings)  # a bad calendar file fails here, before anything starts
    items = load_catalog(settings.catalog_path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with runtime.running(
            settings, clock=clock, policy=policy, items=items, on_started=on_started
        ) as ctx:
            app.state.ctx = ctx
            yield

    from dispatcher.web.http import EXCEPTION_HANDLERS

    return App(
        routes=[
            *orders.routes,
            *order_actions.routes,
            *catalog.routes,
            *admin.routes,
            *points_web.routes,
            *payouts.routes,
            *oversight.routes,
            *followups.routes,
            *sms.routes,
            *orders.metrics_routes,
            *pages.routes,
            *openapi.routes,
            *open311.routes,
        ],
        lifespan=lifespan,
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
