"""Operator endpoints: grids, agents, intake tokens, order lists (admin token only)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import geo
from dispatcher import auth
from dispatcher.core import validate
from dispatcher.core.roster import TokenKind
from dispatcher.exceptions import ConflictError, RequestError
from dispatcher.store.pg import StoreConflictError, UnknownGridError
from dispatcher.web import schemas
from dispatcher.web.http import answer, body, body_bytes, context, principal, unstorable

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
        grids = geo.load_feature_collection(raw)
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
    if b"\x00" in raw:
        raise RequestError(
            "the roster holds a NUL character", code="invalid_roster", status=422, details={}
        )
    try:
        rows = geo.parse_agents_csv(raw.decode("utf-8-sig"))
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
    await principal(request, TokenKind.ADMIN)
    grids = await context(request).store.list_grids()
    return answer(request, {"grids": [g.to_wire() for g in grids]})


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
    await context(request).store.add_token(auth.digest(token), TokenKind.INTAKE, name)
    return answer(request, {"token": token, "kind": kind, "name": name}, 201)


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


routes = [
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
