"""Operator endpoints: grids, agents, intake tokens, order lists (admin token only)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import geo
from dispatcher import auth
from dispatcher.core import validate
from dispatcher.core.roster import TokenKind
from dispatcher.exceptions import (
    ConflictError,
    NotFoundError,
    RequestError,
    StoreConflictError,
    UnknownGridError,
)
from dispatcher.flows import revocation
from dispatcher.web import schemas
from dispatcher.web.http import answer, body, body_bytes, context, principal, unstorable
from geo.geojson import geometry_to_geojson

LEVELS = schemas.GRID_LEVELS
MAX_IMPORT_BYTES = 32 * 1024 * 1024


def _grid_from_body(data: dict[str, Any]) -> geo.Grid:
    clean = schemas.GRID_BODY.check_map(data)
    code, name, parent = clean["code"], clean["name"], clean.get("parent")
    level = clean.get("level", "grid")
    aliases = list(clean.get("aliases", ()))
    if clean.get("geometry") is None:
        return geo.Grid(code, name, geo.parse_level(level) or "grid", parent, None, tuple(aliases))
    props = {"code": code, "name": name, "level": level, "parent": parent, "aliases": aliases}
    feature = {"type": "Feature", "properties": props, "geometry": clean["geometry"]}
    try:
        return geo.grid_from_feature(feature)
    except geo.GridImportError as exc:
        raise _import_error(exc) from None


def _import_error(exc: geo.GridImportError) -> RequestError:
    problems = [p.to_dict() for p in exc.problems]
    first = exc.problems[0]
    return RequestError(
        f"{len(problems)} problem(s); first: feature {first.index} ({first.code}): {first.message}",
        code="invalid_grid_file",
        status=422,
        details={"problems": problems},
    )


async def put_grid(request: Request) -> Response:
    """One grid, by code: 201 created, 200 updated.  Checked against the live set."""
    await principal(request, TokenKind.ADMIN)
    grid = _grid_from_body(await body(request))
    ctx = context(request)
    await ctx.reload_grids()
    try:
        merged = ctx.geo.updated([grid])
    except geo.GridImportError as exc:
        raise _import_error(exc) from None
    saved, created = await ctx.store.put_grid(grid, sorted(merged.neighbours(grid.code)))
    await ctx.reload_grids()
    return answer(request, saved.to_wire(), 201 if created else 200)


def _source(request: Request) -> str:
    """``?source=``: where a grid file came from (kept with the generation)."""
    query = {"source": request.query_params.get("source", "api")}
    source = validate.text(query, "source", max_len=100)
    if source is None or unstorable(query) is not None:
        raise validate.invalid("source", "'source' must be text without NUL characters")
    return source


async def import_grids(request: Request) -> Response:
    """Replace the grid set with a GeoJSON FeatureCollection, all or nothing."""
    await principal(request, TokenKind.ADMIN)
    raw = await body_bytes(request, MAX_IMPORT_BYTES)
    source = _source(request)
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise RequestError(f"grid file is not valid JSON: {exc}", code="bad_json") from None
    parsed = validate.clean_tree(parsed)  # the text rule for names, aliases, properties
    source = validate.clean(request.query_params.get("source", "api"), "source")[:100]
    try:
        grids = geo.load_feature_collection(parsed)
    except geo.GridImportError as exc:
        raise _import_error(exc) from None
    for i, g in enumerate(grids):
        if unstorable([g.code, g.name, g.parent or "", *g.aliases]) is not None:
            raise RequestError(
                f"feature {i} ({g.code[:40]!r}) holds a NUL character or a lone surrogate",
                code="invalid_value",
                status=422,
                details={"field": f"features[{i}].properties"},
            )
    ctx = context(request)
    summary = await ctx.store.import_grids(grids, source=source)
    await ctx.reload_grids()
    return answer(request, summary)


async def import_agents(request: Request) -> Response:
    """Create agents from a CSV roster (name, phone, grids separated by ';'), all or nothing."""
    await principal(request, TokenKind.ADMIN)
    raw = await body_bytes(request, MAX_IMPORT_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestError(
            f"roster file refused: {exc}", code="invalid_roster", status=422
        ) from None
    text = validate.clean(text.replace("\r", ""), "file", multiline=True)  # the text rule
    try:
        rows = geo.parse_agents_csv(text)
    except (UnicodeDecodeError, geo.RosterError) as exc:
        problems = [{"line": p.line, "message": p.message} for p in getattr(exc, "problems", [])]
        raise RequestError(
            f"roster file refused: {exc}",
            code="invalid_roster",
            status=422,
            details={"problems": problems},
        ) from None
    try:
        created = await context(request).store.import_agents(rows)
    except UnknownGridError as exc:
        raise RequestError(
            str(exc), code="unknown_grid", status=422, details={"codes": exc.codes}
        ) from None
    except StoreConflictError as exc:
        raise ConflictError(
            f"a phone in the file is registered already: {exc}", code="duplicate_phone"
        ) from exc
    return answer(request, {"agents": created}, 201)


async def list_grids(request: Request) -> Response:
    """The grids; with ``?geometry=true`` each also has its GeoJSON ``geometry`` (or null), as
    the console draws its map."""
    await principal(request, TokenKind.ADMIN)
    shapes = request.query_params.get("geometry", "false")
    if shapes not in ("true", "false"):
        raise validate.invalid("geometry", "'geometry' must be true or false")
    ctx = context(request)
    grids = await ctx.store.list_grids()
    if shapes == "false":
        return answer(request, {"grids": [g.to_wire() for g in grids]})
    await ctx.reload_grids()
    live = {g.code: g.geometry for g in ctx.geo}
    return answer(
        request,
        {"grids": [{**g.to_wire(), "geometry": _geojson(live.get(g.code))} for g in grids]},
    )


def _geojson(shape: geo.Geometry | None) -> dict[str, Any] | None:
    return None if shape is None else geometry_to_geojson(shape)


async def create_agent(request: Request) -> Response:
    await principal(request, TokenKind.ADMIN)
    data = schemas.AGENT_BODY.check_map(await body(request))
    name, phone, grids = data["name"], data["phone"], data["grids"]
    token = auth.new_token(TokenKind.AGENT)
    try:
        agent = await context(request).store.create_agent(name, phone, grids, auth.digest(token))
    except UnknownGridError as exc:
        raise RequestError(
            str(exc),
            code="unknown_grid",
            status=422,
            details={"field": "grids", "codes": exc.codes},
        ) from None
    except StoreConflictError as exc:
        raise ConflictError(
            f"an agent with phone {phone} exists already", code="duplicate_phone"
        ) from exc
    return answer(request, {**agent.to_wire(), "token": token}, 201)


async def list_agents(request: Request) -> Response:
    await principal(request, TokenKind.ADMIN)
    agents = await context(request).store.list_agents()
    return answer(request, {"agents": [a.to_wire() for a in agents]})


async def create_token(request: Request) -> Response:
    await principal(request, TokenKind.ADMIN)
    data = schemas.TOKEN_BODY.check_map(await body(request))
    kind, name = data["kind"], data["name"]
    token = auth.new_token(TokenKind.INTAKE)
    token_id = await context(request).store.add_token(auth.digest(token), TokenKind.INTAKE, name)
    return answer(request, {"token": token, "id": token_id, "kind": kind, "name": name}, 201)


async def list_orders(request: Request) -> Response:
    """Orders for operators: ``?status=escalated``, ``?overdue=true`` (accepted past the due
    date, or awaiting materials past the supply-by date), ``?agent_id=``; pages by id with
    ``?after=<last id>&limit=`` (default 100, at most 500).  Each order has ``overdue``.
    The parameters are checked through their declarations (``schemas.LIST_QUERY``)."""
    await principal(request, TokenKind.ADMIN)
    q = {p.name: p.check(request.query_params) for p in schemas.LIST_QUERY}
    ctx = context(request)
    now = ctx.clock()
    orders = await ctx.store.list_orders(
        status=q["status"],
        overdue_at=now if q["overdue"] == "true" else None,
        agent_id=q["agent_id"] or None,
        after_id=q["after"] or 0,
        limit=100 if q["limit"] is None else q["limit"],
    )
    return answer(request, {"orders": [o.to_wire(now) for o in orders]})


async def list_tokens(request: Request) -> Response:
    await principal(request, TokenKind.ADMIN)
    return answer(request, {"tokens": await context(request).store.list_tokens()})


async def revoke_token(request: Request) -> Response:
    """``POST /v1/admin/tokens/{id}/revoke``: the token stops working on every process."""
    await principal(request, TokenKind.ADMIN)
    token_id = validate.id_param(request.path_params["token_id"], "token_id")
    revoked = await revocation.revoke_token(context(request), token_id)
    if revoked is None:
        raise NotFoundError(f"no token {token_id}")
    return answer(request, revoked)


def _agent_active(active: bool) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        """``POST /v1/admin/agents/{id}/deactivate`` (or ``reactivate``)."""
        await principal(request, TokenKind.ADMIN)
        agent_id = validate.id_param(request.path_params["agent_id"], "agent_id")
        agent = await revocation.set_agent_active(context(request), agent_id, active)
        if agent is None:
            raise NotFoundError(f"no agent {agent_id}")
        return answer(request, agent.to_wire())

    return endpoint


routes = [
    Route("/v1/admin/tokens/{token_id}/revoke", revoke_token, methods=["POST"]),
    Route("/v1/admin/agents/{agent_id}/deactivate", _agent_active(False), methods=["POST"]),
    Route("/v1/admin/agents/{agent_id}/reactivate", _agent_active(True), methods=["POST"]),
    Route("/v1/admin/grids", put_grid, methods=["POST"]),
    Route("/v1/admin/grids/import", import_grids, methods=["POST"]),
    Route("/v1/admin/agents/import", import_agents, methods=["POST"]),
    Route("/v1/admin/grids", list_grids, methods=["GET"]),
    Route("/v1/admin/agents", create_agent, methods=["POST"]),
    Route("/v1/admin/agents", list_agents, methods=["GET"]),
    Route("/v1/admin/tokens", create_token, methods=["POST"]),
    Route("/v1/admin/tokens", list_tokens, methods=["GET"]),
    Route("/v1/admin/orders", list_orders, methods=["GET"]),
]
