"""Filing an order: validate the request, record it durably, then offer it live.

The order is in Postgres (with its tracking token and `filed` event) before the caller hears
201.  Offering it (Redis state, widening schedule, pub/sub) follows; if Redis is down at that
moment the order is still filed and the reconciler offers it when Redis answers again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from dispatcher import auth, validate
from dispatcher.context import Context
from dispatcher.exceptions import RedisUnavailableError, RequestError
from dispatcher.orders import Order, widen_deadline
from dispatcher.roster import Principal, TokenKind

log = logging.getLogger("bangban.filing")

MAX_TEXT_CHARS = 2000
MAX_NAME_CHARS = 100
MAX_ADDRESS_CHARS = 200

_FIELDS = ("item", "text", "grid", "location", "address", "applicant", "item_class")


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


def parse_order_request(body: dict[str, Any]) -> OrderRequest:
    """Check a ``POST /v1/orders`` body.  Raises RequestError (422) naming the bad field."""
    validate.only_fields(body, _FIELDS)
    item = validate.code(body, "item", required=False)
    text = validate.text(body, "text", max_len=MAX_TEXT_CHARS, required=False)
    if item is None and text is None:
        raise validate.invalid(
            "item", "give 'item' (a catalogue code) or 'text' (the need)", "missing_field"
        )
    grid = validate.code(body, "grid", required=False)
    location = None
    loc = validate.mapping(body, "location", required=False)
    if loc is not None:
        validate.only_fields(loc, ("lat", "lon"))
        location = (validate.number(loc, "lat", -90, 90), validate.number(loc, "lon", -180, 180))
    address = validate.text(body, "address", max_len=MAX_ADDRESS_CHARS, required=False)
    if grid is None and location is None and address is None:
        raise validate.invalid("grid", "give 'grid', 'location' or 'address'", "missing_field")
    item_class = body.get("item_class")
    if item_class is not None and (isinstance(item_class, bool) or item_class not in (1, 2)):
        raise validate.invalid("item_class", "'item_class' must be 1 or 2")
    applicant: dict[str, str] = {}
    who = validate.mapping(body, "applicant", required=False)
    if who is not None:
        validate.only_fields(who, ("name", "phone"))
        name = validate.text(who, "name", max_len=MAX_NAME_CHARS, required=False)
        phone = validate.text(who, "phone", max_len=32, required=False, pattern=validate.PHONE_RE)
        applicant = {k: v for k, v in (("name", name), ("phone", phone)) if v is not None}
    return OrderRequest(item, text, grid, location, address, item_class, applicant)


async def route(ctx: Context, request: OrderRequest) -> str:
    """The grid an order goes to.  Raises RequestError 422 ``unknown_grid``/``unroutable``."""
    if request.grid is not None:
        if not await ctx.grid_exists(request.grid):
            raise RequestError(
                f"no grid with code {request.grid!r}",
                code="unknown_grid",
                status=422,
                details={"field": "grid"},
            )
        return request.grid
    raise RequestError(
        "this server routes orders by 'grid' only; 'location' and 'address' routing is not"
        " configured",
        code="unroutable",
        status=422,
    )


async def file_order(ctx: Context, request: OrderRequest, filer: Principal) -> tuple[Order, str]:
    """Record and offer a new order.  Returns (order, tracking token).

    Raises RequestError (bad grid) or StoreUnavailableError (nothing recorded: retry).
    """
    grid = await route(ctx, request)
    token = auth.new_token(TokenKind.TRACKING)
    now = ctx.clock()
    order = await ctx.store.insert_order(
        grid=grid,
        item=request.item,
        text=request.text,
        item_class=request.item_class,
        applicant=request.applicant,
        created_at=now,
        widen_at=widen_deadline(now, ctx.settings.widen_after),
        tracking_digest=auth.digest(token),
        actor=filer.actor,
    )
    log.debug("order filed order_id=%s grid=%s", order.id, grid)
    try:
        await ctx.board.announce(order)
    except RedisUnavailableError as exc:
        log.warning("order filed but not yet offered order_id=%s error=%s", order.id, exc)
    return order, token
