"""HTTP endpoints for orders and health.  Decode, call a flow or the store, encode."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dispatcher.auth import bearer
from dispatcher.core import validate
from dispatcher.core.orders import ClaimOutcome, Order, is_offered_to
from dispatcher.core.roster import Principal, TokenKind
from dispatcher.exceptions import (
    AuthError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    RedisUnavailableError,
    RequestError,
    StoreUnavailableError,
)
from dispatcher.flows import claims, fairplay, filing
from dispatcher.live import wire
from dispatcher.web import schemas
from dispatcher.web.http import answer, body, context, principal
from dispatcher.web.pages import tracking_url


def order_id_of(request: Request) -> int:
    raw = request.path_params["order_id"]
    order_id = validate.ascii_id(raw)  # ASCII digits only: "²".isdigit() but int("²") fails
    if order_id is None:
        raise NotFoundError(f"no order {raw[:40]!r}")
    return order_id


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header (1..200 visible ASCII characters), or None."""
    raw = request.headers.get("idempotency-key")
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(raw):
        raise RequestError(
            "'Idempotency-Key' must be 1..200 visible ASCII characters",
            code="invalid_value",
            status=422,
            details={"field": "Idempotency-Key"},
        )
    return raw


async def file_order(request: Request) -> Response:
    who = await principal(request, TokenKind.INTAKE, TokenKind.ADMIN)
    data = await body(request)
    req = filing.parse_order_request(data)
    key = idempotency_key(request)
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
    result = await filing.file_order(context(request), req, who, key=key, fingerprint=fingerprint)
    if isinstance(result, filing.FilingPending):
        # The insert was sent and its answer lost; Postgres cannot tell yet whether it was
        # recorded.  The same request with this key will (docs/PROTOCOL.md).
        pending = answer(
            request,
            {
                "status": "pending",
                "idempotency_key": result.key,
                "message": "recorded or not is not known yet; repeat the request with this"
                " Idempotency-Key to learn which (it never files a second order)",
            },
            202,
        )
        pending.headers["Idempotency-Key"] = result.key
        pending.headers["Retry-After"] = "1"
        return pending
    data = {**result.order.to_wire(), "tracking_token": result.token}
    data["tracking_url"] = tracking_url(request, result.order.id, result.token)
    filed = answer(request, data, 201)
    if result.replayed:
        filed.headers["Idempotency-Replayed"] = "true"
    return filed


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
    ctx = context(request)
    if wait := claims.claim_wait(ctx, who.agent):
        raise RateLimitedError(f"too many claims; retry in {wait / 1000:.1f} s", wait / 1000)
    links = ctx.hub.by_agent.get(who.agent.id, ())
    outcome = await fairplay.timed_claim(ctx, who.agent, order_id, rid, links)
    if outcome is None:
        raise RequestError(fairplay.TOO_FAST_MESSAGE, code="too_fast", status=422)
    # 202: `pending`, recorded or not the server cannot tell yet; the same request again
    # (same request_id) gets the final answer (docs/PROTOCOL.md).
    status = 202 if outcome is ClaimOutcome.PENDING else 200
    return answer(request, wire.to_map(wire.ClaimResult(rid, order_id, outcome.value)), status)


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
    if ctx.draining.is_set():  # a load balancer must stop sending us traffic
        checks["process"] = "draining"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        200 if healthy else 503,
        headers={"X-Bangban-Worker": str(os.getpid())},  # which process answered (--workers)
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
