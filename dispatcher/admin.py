"""Operator endpoints: grids, agents and intake tokens (admin token only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher import auth, validate
from dispatcher.exceptions import ConflictError, RequestError
from dispatcher.http import answer, body, context, principal
from dispatcher.roster import Grid, TokenKind
from dispatcher.store import StoreConflictError, UnknownGridError

LEVELS = ("county", "township", "village", "community", "grid")


async def put_grid(request: Request) -> Response:
    await principal(request, TokenKind.ADMIN)
    data = await body(request)
    validate.only_fields(data, ("code", "name", "level", "parent"))
    code = validate.code(data, "code")
    name = validate.text(data, "name", max_len=100)
    level = validate.text(data, "level", max_len=20, required=False) or "grid"
    if level not in LEVELS:
        raise validate.invalid("level", f"'level' must be one of {', '.join(LEVELS)}")
    parent = validate.code(data, "parent", required=False)
    assert code is not None and name is not None
    ctx = context(request)
    grid, created = await ctx.store.upsert_grid(Grid(code, name, level, parent))
    ctx.grids.add(grid.code)
    return answer(request, grid.to_wire(), 201 if created else 200)


async def list_grids(request: Request) -> Response:
    await principal(request, TokenKind.ADMIN)
    grids = await context(request).store.list_grids()
    return answer(request, {"grids": [g.to_wire() for g in grids]})


async def create_agent(request: Request) -> Response:
    await principal(request, TokenKind.ADMIN)
    data = await body(request)
    validate.only_fields(data, ("name", "phone", "grids"))
    name = validate.text(data, "name", max_len=100)
    phone = validate.text(data, "phone", max_len=32, pattern=validate.PHONE_RE)
    grids = validate.code_list(data, "grids")
    assert name is not None and phone is not None
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
    data = await body(request)
    validate.only_fields(data, ("kind", "name"))
    kind = validate.text(data, "kind", max_len=20)
    if kind != TokenKind.INTAKE.value:
        raise validate.invalid("kind", "'kind' must be 'intake' (agent tokens come with agents)")
    name = validate.text(data, "name", max_len=100)
    assert name is not None
    token = auth.new_token(TokenKind.INTAKE)
    await context(request).store.add_token(auth.digest(token), TokenKind.INTAKE, name)
    return answer(request, {"token": token, "kind": kind, "name": name}, 201)


async def list_tokens(request: Request) -> Response:
    await principal(request, TokenKind.ADMIN)
    return answer(request, {"tokens": await context(request).store.list_tokens()})


routes = [
    Route("/v1/admin/grids", put_grid, methods=["POST"]),
    Route("/v1/admin/grids", list_grids, methods=["GET"]),
    Route("/v1/admin/agents", create_agent, methods=["POST"]),
    Route("/v1/admin/agents", list_agents, methods=["GET"]),
    Route("/v1/admin/tokens", create_token, methods=["POST"]),
    Route("/v1/admin/tokens", list_tokens, methods=["GET"]),
]
