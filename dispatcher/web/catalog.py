"""HTTP endpoints for the catalogue (事项目录): reading it, and operators keeping it.

``GET /v1/catalog`` lists the live items with their service guides (intake, agent and admin
tokens; ``?all=true`` adds retired ones for admins).  Operators create (``POST
/v1/admin/catalog``), replace (``PUT``) or change some fields of (``PATCH``) and retire (``POST
.../retire``) items; nothing is deleted, and orders filed before an edit keep what they copied.
A malformed item is 422 ``invalid_value`` naming ``details.field``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatcher.core import fields
from dispatcher.core.catalog import CODE_RE, Item, parse_item
from dispatcher.core.roster import TokenKind
from dispatcher.exceptions import CatalogError, ConflictError, NotFoundError, RequestError
from dispatcher.web import schemas
from dispatcher.web.http import answer, body, context, principal


def _parsed(data: dict[str, Any]) -> Item:
    try:
        return parse_item(data)
    except CatalogError as exc:
        raise RequestError(
            f"{exc.field}: {exc.message}",
            code="invalid_value",
            status=422,
            details={"field": exc.field},
        ) from None


def _whole_numbers(data: dict[str, Any], declared: fields.Obj) -> dict[str, Any]:
    """Check ``data`` against its declared fields and limits (parse_item checks the rest), and
    pass whole numbers on as the check cleaned them (``2.0`` is the integer 2)."""
    clean = declared.check_map(data)
    return {**data, **{k: v for k, v in clean.items() if type(v) is int}}


def _code_of(request: Request) -> str:
    code: str = request.path_params["code"]
    if not CODE_RE.fullmatch(code):
        raise NotFoundError(f"no catalogue item {code[:40]!r}", code="unknown_item")
    return code


async def _existing(request: Request) -> Item:
    found = await context(request).store.get_item(_code_of(request))
    if found is None:
        raise NotFoundError("no such catalogue item", code="unknown_item")
    return found


async def list_catalog(request: Request) -> Response:
    who = await principal(request, TokenKind.INTAKE, TokenKind.AGENT, TokenKind.ADMIN)
    wants_all = schemas.ALL_QUERY.check(request.query_params) == "true"
    everything = who.kind is TokenKind.ADMIN and wants_all
    items = await context(request).store.list_items(include_retired=everything)
    return answer(request, {"items": [i.to_wire() for i in items]})


async def get_item(request: Request) -> Response:
    await principal(request, TokenKind.INTAKE, TokenKind.AGENT, TokenKind.ADMIN)
    return answer(request, (await _existing(request)).to_wire())


async def create_item(request: Request) -> Response:
    await principal(request, TokenKind.ADMIN)
    data = _whole_numbers(await body(request), schemas.ITEM_BODY)
    item = _parsed(data)
    created = await context(request).store.create_item(item)
    if created is None:
        raise ConflictError(f"item {item.code} exists already", code="duplicate_item")
    return answer(request, created.to_wire(), 201)


async def change_item(request: Request) -> Response:
    """PUT: the whole item; PATCH: the fields given, on top of the stored item."""
    await principal(request, TokenKind.ADMIN)
    data = await body(request)
    current = await _existing(request)
    data = _whole_numbers(
        data, schemas.ITEM_PATCH if request.method == "PATCH" else schemas.ITEM_PUT
    )
    if request.method == "PATCH":
        data = {**current.to_wire(), **data}
    data.setdefault("code", current.code)
    if data["code"] != current.code:
        raise RequestError(
            "'code' cannot change", code="invalid_value", status=422, details={"field": "code"}
        )
    updated = await context(request).store.update_item(_parsed(data))
    if updated is None:  # retired and deleted between the two statements: cannot happen
        raise NotFoundError("no such catalogue item", code="unknown_item")
    return answer(request, updated.to_wire())


async def retire_item(request: Request) -> Response:
    """Retire an item: no new order may name it; orders filed with it keep it.  Idempotent."""
    await principal(request, TokenKind.ADMIN)
    current = await _existing(request)
    data = {**current.to_wire(), "retired": True}
    updated = await context(request).store.update_item(_parsed(data))
    assert updated is not None
    return answer(request, updated.to_wire())


routes = [
    Route("/v1/catalog", list_catalog, methods=["GET"]),
    Route("/v1/catalog/{code}", get_item, methods=["GET"]),
    Route("/v1/admin/catalog", create_item, methods=["POST"]),
    Route("/v1/admin/catalog", list_catalog, methods=["GET"]),
    Route("/v1/admin/catalog/{code}", change_item, methods=["PUT", "PATCH"]),
    Route("/v1/admin/catalog/{code}/retire", retire_item, methods=["POST"]),
]
