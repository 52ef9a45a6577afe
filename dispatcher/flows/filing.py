"""Filing an order: validate the request, record it durably, then offer it live.

An order naming a catalogue ``item`` must name a live one (422 ``unknown_item``, or
``retired_item`` once operators retired it); the item's class, materials and time limit are
copied onto the order, so later edits of the catalogue do not change orders already filed.

The order is in Postgres (with its tracking token and `filed` event) before the caller hears
201.  Offering it (Redis state, widening schedule, pub/sub) follows in a task of its own, so
the 201 does not wait for it (:attr:`Context.offering`; a draining process waits for them);
if Redis is down at that moment the order is still filed and offered as soon as Redis
answers again (:mod:`dispatcher.flows.repairs`).

Filing is idempotent per ``Idempotency-Key`` (migration 0008, ``filing_keys``), and an insert
whose answer was lost is looked up by its key once Postgres answers: 201 if it was recorded,
503 if not, 202 (pending, retry with the key) while Postgres cannot tell.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from dispatcher import auth
from dispatcher.context import Context
from dispatcher.core import fields, sms, validate
from dispatcher.core.orders import Order, new_order
from dispatcher.core.roster import Principal, TokenKind
from dispatcher.exceptions import (
    RateLimitedError,
    RedisUnavailableError,
    RequestError,
    StoreAmbiguousError,
    StoreConflictError,
    StoreUnavailableError,
)
from dispatcher.flows import deadlines
from dispatcher.flows import routing as where
from dispatcher.store.filing_keys import FilingKey

log = logging.getLogger("bangban.filing")

MAX_TEXT_CHARS = 2000
MAX_NAME_CHARS = 100
MAX_ADDRESS_CHARS = 200


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A validated request to file an order."""

    item: str | None
    text: str | None
    grid: str | None
    location: tuple[float, float] | None = None  # (lat, lon)
    address: str | None = None
    item_class: int | None = None
    applicant: dict[str, str] = field(default_factory=dict)


APPLICANT = fields.Obj(
    {
        "name": fields.Text(MAX_NAME_CHARS, required=False, doc="The applicant's name."),
        "phone": fields.Text(
            32, required=False, pattern=validate.PHONE_RE, doc="A phone number to reach them."
        ),
    },
    required=False,
    doc="Who asked (shown only to operators, the claiming agent and the tracking token).",
)

ORDER_BODY = fields.Obj(
    {
        "item": fields.Code(required=False, doc="A live catalogue item code (GET /v1/catalog)."),
        "text": fields.Text(
            MAX_TEXT_CHARS,
            required=False,
            multiline=True,
            doc="The need in the applicant's words (tab and newline allowed).",
        ),
        "grid": fields.Code(required=False, doc="The grid to offer the order to."),
        "location": fields.Obj(
            {
                "lat": fields.Number(-90, 90, doc="WGS84 latitude."),
                "lon": fields.Number(-180, 180, doc="WGS84 longitude."),
            },
            required=False,
            doc="Where the applicant is: routed to the grid containing it.",
        ),
        "address": fields.Text(
            MAX_ADDRESS_CHARS,
            required=False,
            multiline=True,
            doc="A contact address, matched to grid names.",
        ),
        "applicant": APPLICANT,
        "item_class": fields.Integer(
            1,
            2,
            doc="1 or 2; with an item, must be the item's class.",
            message="{name} must be 1 or 2",
        ),
    },
    one_of=(
        fields.OneOf(("item", "text"), "give 'item' (a catalogue code) or 'text' (the need)"),
        fields.OneOf(("grid", "location", "address"), "give 'grid', 'location' or 'address'"),
    ),
    doc="A request to file an order (item or text; grid, location or address).",
)
"""The body of ``POST /v1/orders``: checks it here and documents it in the OpenAPI document."""


def parse_order_request(body: dict[str, Any]) -> OrderRequest:
    """Check a ``POST /v1/orders`` body.  Raises RequestError (422) naming the bad field."""
    clean = ORDER_BODY.check_map(body)
    loc = clean.get("location")
    location = None if loc is None else (loc["lat"], loc["lon"])
    return OrderRequest(
        clean.get("item"),
        clean.get("text"),
        clean.get("grid"),
        location,
        clean.get("address"),
        clean.get("item_class"),
        clean.get("applicant", {}),
    )


CODE_ATTEMPTS = 8
_rng = random.SystemRandom()


async def _insert(
    ctx: Context,
    draft: Order,
    request: OrderRequest,
    token: str,
    filer: Principal,
    routing: dict[str, Any],
    key: FilingKey,
) -> tuple[Order, bool]:
    """Insert the order (with its filing ``key``) and a fresh short code (the agents' SMS
    reply), drawing again while the code is live on another order (longer after a few tries:
    the space is crowded).  Also says whether the grid was at its open-order cap
    (``BANGBAN_GRID_OPEN_CAP``, counted in the insert)."""
    for attempt in range(CODE_ATTEMPTS):
        code = sms.new_code(_rng, sms.CODE_LENGTH + attempt // 3)
        try:
            return await ctx.store.insert_order(
                draft,
                applicant=request.applicant,
                tracking_digest=auth.digest(token),
                actor=filer.actor,
                routing=routing,
                short_code=code,
                key=key,
                open_cap=ctx.settings.grid_open_cap,
            )
        except StoreConflictError as exc:
            if exc.constraint != "orders_short_code_live" or attempt + 1 == CODE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def _rate_limit(ctx: Context, filer: Principal) -> None:
    """``BANGBAN_FILING_RATE`` orders a minute per intake token, counted in Redis so that every
    process shares the count (taken in shares: :class:`dispatcher.core.limits.Shares`).  Raises
    RateLimitedError; lets the order through if Redis is down (filing works without Redis: the
    reconciler offers the order later)."""
    limit = ctx.settings.filing_rate
    if limit <= 0 or filer.kind is not TokenKind.INTAKE:
        return
    key = f"file:{filer.token_id}"
    now = ctx.clock()
    if ctx.shares.take(key, now):
        return
    try:
        granted, left = await ctx.board.rate(key, limit, 60_000, ctx.shares.want(key, limit, now))
    except RedisUnavailableError:
        return
    if granted:
        ctx.shares.grant(key, granted, now + left)
        return
    wait = max(left, 1)
    ctx.metrics.filings_rate_limited.inc()
    raise RateLimitedError(
        f"this token may file {limit} orders a minute; retry in {wait / 1000:.1f} s",
        wait / 1000,
    )


@dataclass(frozen=True, slots=True)
class Filed:
    """A filing recorded: the order, a tracking token for it, and whether this was a replay
    of an earlier filing with the same ``Idempotency-Key`` (then the order as it is now, and a
    new tracking token: only digests are stored, so the first cannot be shown again)."""

    order: Order
    token: str
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class FilingPending:
    """The insert was sent and its answer lost, and Postgres cannot tell yet whether it was
    recorded: the same request with ``Idempotency-Key: <key>`` will (HTTP 202)."""

    key: str


SETTLE_WAIT_S = 1.0
"""How long a filing whose insert lost its answer tries to find out before answering 202."""


async def file_order(
    ctx: Context,
    request: OrderRequest,
    filer: Principal,
    *,
    key: str | None = None,
    fingerprint: str = "",
) -> Filed | FilingPending:
    """Record and offer a new order, at most once per ``key`` (the client's
    ``Idempotency-Key``; the same filer with the same key gets the first order back, a key
    reused for another request body, by ``fingerprint``, is refused).

    Raises RequestError (unknown or retired item, cannot route, key reused) or
    StoreUnavailableError (nothing recorded: retry).
    """
    await _rate_limit(ctx, filer)
    if key is not None:
        prior = await _replay(ctx, filer, key, fingerprint)
        if prior is not None:
            return prior
    item = await where.catalogue_item(ctx, request)
    grid, routing = await where.route(ctx, request)
    token = auth.new_token(TokenKind.TRACKING)
    draft = new_order(
        order_id=0,
        grid=grid,
        item=request.item,
        text=request.text,
        item_class=request.item_class if item is None else item.item_class,
        created_at=ctx.clock(),
        schedule=ctx.settings.schedule,
        escalate_after_s=ctx.settings.escalate_after,
        item_name=None if item is None else item.name,
        required=() if item is None else item.materials,
        time_limit_days=None if item is None else item.time_limit_days,
    )
    # Every filing carries a key (one of ours when the client gave none), so that a lost
    # answer can be looked up.
    filing_key = FilingKey(filer.actor, key or f"server:{uuid.uuid4().hex}", fingerprint)
    try:
        order, capped = await _insert(ctx, draft, request, token, filer, routing, filing_key)
    except StoreConflictError as exc:
        if key is None or exc.constraint != "filing_keys_pkey":
            raise
        prior = await _replay(ctx, filer, key, fingerprint)  # filed meanwhile with this key
        if prior is None:
            raise
        return prior
    except StoreAmbiguousError as exc:
        log.warning("filing insert lost its answer key=%s error=%s", filing_key.key, exc)
        ctx.metrics.postgres_errors.inc()
        found = await _find_out(ctx, filing_key, exc.backend)
        if found is None:
            return FilingPending(filing_key.key)
        if found is False:
            raise StoreUnavailableError("postgres: the filing was not recorded; retry") from exc
        order = found  # recorded after all, with our tracking token
        capped = order.escalate_at == order.created_at  # (see OrderStore.insert_order)
        log.warning("filing found recorded after all order_id=%s", order.id)
    ctx.metrics.orders_filed.inc()
    log.debug("order filed order_id=%s grid=%s", order.id, grid)
    if capped:
        # The grid has as many open orders as it may: this one goes to the operators (it was
        # recorded due to escalate now) and is never offered, so a flood cannot bury agents.
        ctx.metrics.orders_capped.inc()
        log.warning("grid at its open-order cap grid=%s order_id=%s escalated", grid, order.id)
        await deadlines.handle(ctx, [order.id])
        return Filed((await ctx.store.get_order(order.id)) or order, token)

    offer = asyncio.create_task(_offer(ctx, order), name=f"offer-{order.id}")
    ctx.offering.add(offer)  # (the 201 does not wait for the offer)
    offer.add_done_callback(ctx.offering.discard)
    return Filed(order, token)


async def _offer(ctx: Context, order: Order) -> None:
    """Offer a filed order: into Redis and published, unless a claim got there first (it
    synced the order from Postgres itself).  If Redis is down, the repairs offer it later."""
    try:
        await ctx.board.announce(order, if_newer=True)
    except RedisUnavailableError as exc:
        log.warning("order filed but not yet offered order_id=%s error=%s", order.id, exc)
        ctx.repairs.note(order.id)
    except Exception:  # never lost: the repairs (and the reconciler) offer it
        log.exception("offering a filed order failed order_id=%s", order.id)
        ctx.repairs.note(order.id)


async def _replay(ctx: Context, filer: Principal, key: str, fingerprint: str) -> Filed | None:
    prior = await ctx.store.filed_with_key(filer.actor, key)
    if prior is None:
        return None
    order, first_fingerprint = prior
    if first_fingerprint != fingerprint:
        raise RequestError(
            "this Idempotency-Key was used for another request; use a new key per order",
            code="idempotency_key_reused",
            status=422,
            details={"field": "Idempotency-Key"},
        )
    token = auth.new_token(TokenKind.TRACKING)
    await ctx.store.add_tracking_token(order.id, auth.digest(token))
    ctx.repairs.note(order.id)  # offered only if Redis never heard it (a lost answer)
    return Filed(order, token, replayed=True)


async def _find_out(ctx: Context, key: FilingKey, backend: int) -> Order | Literal[False] | None:
    """After an insert whose answer was lost: the order if it was recorded, False if not,
    None if Postgres cannot tell within :data:`SETTLE_WAIT_S`."""
    deadline = time.monotonic() + SETTLE_WAIT_S
    while True:
        try:
            await ctx.store.settle_backend(backend)
            found = await ctx.store.filed_with_key(key.filer, key.key)
            return False if found is None else found[0]
        except StoreUnavailableError:
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)
