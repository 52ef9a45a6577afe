"""Where a new order goes, and what it asks for: its grid (by code, by a point in a polygon
with snapping, or by a Chinese address down the gazetteer) and its live catalogue item.

Refusals are request errors (422): ``unknown_grid``, ``unroutable``, ``ambiguous_address``
(with ``details.candidates``), ``unknown_item``, ``retired_item``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geo
from dispatcher.context import Context
from dispatcher.core import validate
from dispatcher.core.catalog import Item
from dispatcher.exceptions import RequestError

if TYPE_CHECKING:
    from dispatcher.flows.filing import OrderRequest

MAX_CANDIDATES = 20
"""Candidates listed with ``ambiguous_address``."""


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
