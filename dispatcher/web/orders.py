"""HTTP endpoints for orders and health.  Decode, call a flow or the store, encode."""

from __future__ import annotations

import hmac
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dispatcher.auth import bearer
from dispatcher.core.orders import Order, is_offered_to
from dispatcher.core.roster import Principal, TokenKind
from dispatcher.exceptions import (
    AuthError,
    ForbiddenError,
    NotFoundError,
    RedisUnavailableError,
    RequestError,
    StoreUnavailableError,
)
from dispatcher.flows import claims, filing
from dispatcher.live import wire
from dispatcher.web import schemas
from dispatcher.web.http import answer, body, context, principal


def order_id_of(request: Request) -> int:
    raw = request.path_params["order_id"]
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise NotFoundError(f"no order {raw[:40]!r}")
    return int(raw)


async def file_order(request: Request) -> Response:
    who = await principal(request, TokenKind.INTAKE, TokenKind.ADMIN)
    req = filing.parse_order_request(await body(request))
    order, token = await filing.file_order(context(request), req, who)
    return answer(request, {**order.to_wire(), "tracking_token": token}, 201)


def may_read(who: Principal, order: Order) -> bool:
    """Admin; the order's own tracking token; its claiming agent; an agent it is offered to."""
    if who.kind is TokenKind.ADMIN:
        return True
    if who.kind is TokenKind.TRACKING:
        return who.order_id == order.id
    if who.agent is not None:
        return order.claimed_by == who.agent.id or is_offered_to(
            order, who.agent.grids, who.agent.id
        )
    return False


async def get_order(request: Request) -> Response:
    who = await principal(request)
    ctx = context(request)
    order = await ctx.store.get_order(order_id_of(request))
    if order is None or not may_read(who, order):
        # Same answer for "no such order" and "not yours" to tracking/agent tokens would hide
        # existence; PROTOCOL.md asks for 403 on the wrong object, so we say 403 when it exists.
        if order is None:
            raise NotFoundError("no such order")
        raise ForbiddenError("this order is not yours to read")
    data: dict[str, Any] = order.to_wire(ctx.clock())
    owner = who.kind in (TokenKind.ADMIN, TokenKind.TRACKING) or (
        who.agent is not None and order.claimed_by == who.agent.id
    )
    if owner:
        data["applicant"] = await ctx.store.get_applicant(order.id)
    if who.kind is TokenKind.ADMIN:
        data["routing"] = await ctx.store.order_routing(order.id)
    return answer(request, data)


async def claim_order(request: Request) -> Response:
    who = await principal(request, TokenKind.AGENT)
    assert who.agent is not None
    order_id = order_id_of(request)
    data = schemas.CLAIM_BODY.check_map(await body(request))
    rid = data.get("request_id")
    if not wire.valid_request_id(rid):
        raise RequestError(
            "'request_id' must be a non-empty string of at most 128 characters or an integer",
            code="invalid_value",
            status=422,
            details={"field": "request_id"},
        )
    outcome = await claims.claim(context(request), who.agent, order_id, rid)
    return answer(request, wire.to_map(wire.ClaimResult(rid, order_id, outcome.value)))


async def order_events(request: Request) -> Response:
    who = await principal(request)
    ctx = context(request)
    order = await ctx.store.get_order(order_id_of(request))
    if order is None:
        raise NotFoundError("no such order")
    if not may_read(who, order):
        raise ForbiddenError("this order is not yours to read")
    return answer(request, {"order_id": order.id, "events": await ctx.store.order_events(order.id)})


async def healthz(request: Request) -> Response:
    """200 when Redis runs our scripts and Postgres answers; 503 naming what is down."""
    ctx = context(request)
    checks: dict[str, str] = {}
    try:
        await ctx.board.probe()
        checks["redis"] = "ok"
    except RedisUnavailableError as exc:
        checks["redis"] = f"down: {exc}"
    try:
        await ctx.store.ping()
        checks["postgres"] = "ok"
    except StoreUnavailableError as exc:
        checks["postgres"] = f"down: {exc}"
    checks["pubsub"] = "ok" if ctx.hub.ready.is_set() else "down: not subscribed"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, 200 if healthy else 503
    )


async def metrics(request: Request) -> Response:
    """Prometheus text format.  Needs ``BANGBAN_METRICS_TOKEN`` as a bearer token when that is
    set, else the admin token."""
    ctx = context(request)
    expected = ctx.settings.metrics_token
    given = bearer(request.headers.get("authorization"))
    if expected is not None:
        if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthError("this endpoint needs BANGBAN_METRICS_TOKEN as a bearer token")
    else:
        await principal(request, TokenKind.ADMIN)
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)


metrics_routes = [Route("/metrics", metrics, methods=["GET"])]

routes = [
    Route("/v1/orders", file_order, methods=["POST"]),
    Route("/v1/orders/{order_id}", get_order, methods=["GET"]),
    Route("/v1/orders/{order_id}/claim", claim_order, methods=["POST"]),
    Route("/v1/orders/{order_id}/events", order_events, methods=["GET"]),
    Route("/v1/healthz", healthz, methods=["GET"]),
]
