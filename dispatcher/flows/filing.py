"""Filing an order: validate the request, record it durably, then offer it live.

An order naming a catalogue ``item`` must name a live one (422 ``unknown_item``, or
``retired_item`` once operators retired it); the item's class, materials and time limit are
copied onto the order, so later edits of the catalogue do not change orders already filed.

The order is in Postgres (with its tracking token and `filed` event) before the caller hears
201.  Offering it (Redis state, widening schedule, pub/sub) follows; if Redis is down at that
moment the order is still filed and the reconciler offers it when Redis answers again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import geo
from dispatcher import auth
from dispatcher.context import Context
from dispatcher.core import fields, validate
from dispatcher.core.catalog import Item
from dispatcher.core.orders import Order, new_order
from dispatcher.core.roster import Principal, TokenKind
from dispatcher.exceptions import RedisUnavailableError, RequestError

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
            MAX_TEXT_CHARS, required=False, doc="The need in the applicant's words."
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
            MAX_ADDRESS_CHARS, required=False, doc="A contact address, matched to grid names."
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


MAX_CANDIDATES = 20


async def route(ctx: Context, request: OrderRequest) -> tuple[str, dict[str, Any]]:
    """The grid an order goes to and how it was found (stored on the order for operators).

    ``grid`` wins when given; else ``location`` (point in polygon, snapped to the nearest grid
    within ``BANGBAN_SNAP_METERS``, else an H3 cell when configured); else ``address``
    (names and aliases down the hierarchy).  Raises RequestError 422: ``unknown_grid``,
    ``unroutable`` or ``ambiguous_address`` (with the candidate grids).
    """
    if request.grid is not None:
        if not await ctx.grid_exists(request.grid):
            raise RequestError(
                f"no grid with code {request.grid!r}",
                code="unknown_grid",
                status=422,
                details={"field": "grid"},
            )
        return request.grid, {"input": "grid", "grid": request.grid, "method": "given"}
    if request.location is not None:
        lat, lon = request.location
        found = ctx.geo.locate(lat, lon, ctx.settings.snap_meters)
        if found is not None:
            return found.grid, found.to_dict()
        if ctx.settings.h3_resolution is not None:
            return await _h3_route(ctx, lat, lon, ctx.settings.h3_resolution)
        raise RequestError(
            f"no grid contains ({lat}, {lon}) or lies within {ctx.settings.snap_meters:g} m",
            code="unroutable",
            status=422,
            details={"field": "location"},
        )
    assert request.address is not None
    match = ctx.geo.match_address(request.address)
    if match.status == "grid" and match.route is not None:
        return match.route.grid, match.route.to_dict()
    if match.status == "ambiguous":
        area = match.area.name if match.area is not None else None
        raise RequestError(
            f"address {request.address!r} matches {len(match.candidates)} grids"
            + (f" in {area}" if area else "")
            + "; give a more precise address, a location or a grid",
            code="ambiguous_address",
            status=422,
            details={
                "field": "address",
                "count": len(match.candidates),
                "candidates": [
                    {"code": c.code, "name": c.name, "level": c.level}
                    for c in match.candidates[:MAX_CANDIDATES]
                ],
            },
        )
    raise RequestError(
        f"no grid matches the address {request.address!r}",
        code="unroutable",
        status=422,
        details={"field": "address"},
    )


async def _h3_route(
    ctx: Context, lat: float, lon: float, resolution: int
) -> tuple[str, dict[str, Any]]:
    """Route to the H3 cell of the point, creating its grid on first use (pilot mode)."""
    try:
        code = geo.h3_grid_for(lat, lon, resolution)
    except geo.H3UnavailableError as exc:
        raise RequestError(str(exc), code="unroutable", status=422) from None
    if not await ctx.grid_exists(code):
        await ctx.store.put_grid(geo.h3_grid(code), neighbours=())
        await ctx.reload_grids()
    return code, {"input": "location", "grid": code, "method": "h3", "resolution": resolution}


async def catalogue_item(ctx: Context, request: OrderRequest) -> Item | None:
    """The live item the request names (None for free text).  Raises RequestError 422."""
    if request.item is None:
        return None
    item = await ctx.store.get_item(request.item)
    if item is None or item.retired:
        code, what = ("unknown_item", "no") if item is None else ("retired_item", "a retired")
        raise RequestError(
            f"{what} catalogue item {request.item!r}; see GET /v1/catalog",
            code=code,
            status=422,
            details={"field": "item"},
        )
    if request.item_class is not None and request.item_class != item.item_class:
        raise validate.invalid("item_class", f"item {item.code} is of class {item.item_class}")
    return item


async def file_order(ctx: Context, request: OrderRequest, filer: Principal) -> tuple[Order, str]:
    """Record and offer a new order.  Returns (order, tracking token).

    Raises RequestError (unknown or retired item, cannot route) or StoreUnavailableError
    (nothing recorded: retry).
    """
    item = await catalogue_item(ctx, request)
    grid, routing = await route(ctx, request)
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
    order = await ctx.store.insert_order(
        draft,
        applicant=request.applicant,
        tracking_digest=auth.digest(token),
        actor=filer.actor,
        routing=routing,
    )
    ctx.metrics.orders_filed.inc()
    log.debug("order filed order_id=%s grid=%s", order.id, grid)

    try:
        await ctx.board.announce(order)
    except RedisUnavailableError as exc:
        log.warning("order filed but not yet offered order_id=%s error=%s", order.id, exc)
    return order, token
