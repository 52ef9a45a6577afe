"""Open311 GeoReport v2 at ``/open311/v2/``, and its discovery document.

Every resource comes as ``.json`` or ``.xml`` (XML with the declaration, UTF-8).  Errors are
GeoReport's: ``[{"code": <status>, "description": "<our code>: <message>"}]`` or
``<errors><error><code/><description/></error></errors>``, with that HTTP status (our 422 is
their 400; an api_key that is not an intake or admin token is 403).

Reads are public, as the specification has them, and carry no personal data
(:mod:`dispatcher.core.open311` says what each field holds).  Filing goes through
:func:`dispatcher.flows.filing.parse_order_request` and :func:`~dispatcher.flows.filing.file_order`,
the path of ``POST /v1/orders``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dispatcher.context import Context
from dispatcher.core import open311 as o311
from dispatcher.core.catalog import Item, Level
from dispatcher.core.lifecycle import label
from dispatcher.core.orders import Status
from dispatcher.core.roster import TokenKind
from dispatcher.exceptions import (
    AuthError,
    NotFoundError,
    RedisUnavailableError,
    RequestError,
    StoreUnavailableError,
)
from dispatcher.flows import filing
from dispatcher.store.open311 import Listed
from dispatcher.web.http import body_bytes, context, unstorable
from dispatcher.web.open311_schema import OPEN311_FORM

FORMATS = ("json", "xml")
FORM = "application/x-www-form-urlencoded"
CHANGESET = "2026-12-01T00:00:00Z"  # when this facade last changed what it answers
_ATTRIBUTE = re.compile(r"^attribute\[([A-Za-z0-9_-]{1,16})\]$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_PLURALS = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}

Handler = Callable[[Request, str], Awaitable[Response]]


# -- encodings -------------------------------------------------------------------------------


def _xml_value(parent: ET.Element, key: str, value: Any) -> None:
    node = ET.SubElement(parent, key)
    if isinstance(value, Mapping):
        for k, v in value.items():
            _xml_value(node, k, v)
    elif isinstance(value, list):
        for entry in value:
            _xml_value(node, _PLURALS.get(key, "item"), entry)
    elif isinstance(value, bool):
        node.text = "true" if value else "false"
    elif value is not None:
        node.text = str(value)


def xml(root: str, entry: str | None, data: Any) -> bytes:
    """``data`` (a list of maps under ``entry`` elements, or one map) as an XML document."""
    top = ET.Element(root)
    if entry is None:
        for k, v in data.items():
            _xml_value(top, k, v)
    else:
        for row in data:
            _xml_value(top, entry, row)
    # GeoReport asks for the declaration with encoding="UTF-8" (ElementTree writes 'utf-8').
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="unicode").encode()
    )


def render(fmt: str, root: str, entry: str | None, data: Any, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(xml(root, entry, data), status, media_type="text/xml; charset=utf-8")
    return JSONResponse(data, status)


def error(fmt: str, status: int, description: str) -> Response:
    return render(fmt, "errors", "error", [{"code": status, "description": description}], status)


def _status_for(exc: RequestError) -> int:
    if isinstance(exc, AuthError) or exc.status == 403:
        return 403
    if exc.status in (404, 413, 503):
        return exc.status
    return 400


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Check the format and answer every refusal in GeoReport's error format."""

    async def handle(request: Request) -> Response:
        fmt = request.path_params.get("fmt", "")
        if fmt not in FORMATS:
            return error("json", 404, f"not_found: no format {fmt[:10]!r}; use .json or .xml")
        try:
            return await handler(request, fmt)
        except RequestError as exc:
            return error(fmt, _status_for(exc), f"{exc.code}: {exc.message}")
        except (StoreUnavailableError, RedisUnavailableError):
            response = error(fmt, 503, "unavailable: nothing was changed, retry")
            response.headers["Retry-After"] = "1"
            return response

    handle.__name__ = handler.__name__
    return handle


# -- services --------------------------------------------------------------------------------


async def discovery(request: Request, fmt: str) -> Response:
    base = str(request.base_url).rstrip("/")
    doc = {
        "changeset": CHANGESET,
        "contact": "The county's administrative approval service bureau (行政审批服务局).",
        "key_service": "Operators issue intake tokens (api_key): POST /v1/admin/tokens.",
        "endpoints": [
            {
                "specification": o311.SPEC_URL,
                "url": f"{base}/open311/v2",
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return render(fmt, "discovery", None, doc)


async def services(request: Request, fmt: str) -> Response:
    items = await context(request).store.list_items()
    return render(fmt, "services", "service", [o311.service(i) for i in items])


async def _live_item(ctx: Context, code: str) -> Item:
    item = await ctx.store.get_item(code) if len(code) <= 64 else None
    if item is None or item.retired:
        raise NotFoundError(f"no service {code[:64]!r}; see GET services", code="unknown_item")
    return item


async def service_definition(request: Request, fmt: str) -> Response:
    item = await _live_item(context(request), request.path_params["service_code"])
    return render(fmt, "service_definition", None, o311.definition(item))


# -- requests --------------------------------------------------------------------------------


def _form(raw: bytes, query: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The fields of a urlencoded body (and the query string): blank ones left out."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("the form is not UTF-8", code="bad_body") from None
    pairs = [*query, *parse_qsl(text, keep_blank_values=True)]
    form = {k: v for k, v in pairs if v.strip()}
    bad = unstorable(form)
    if bad is not None:
        raise RequestError(f"{bad!r} holds a NUL character", code="invalid_value", status=422)
    return form


def _name(first: str | None, last: str | None) -> str | None:
    parts = [p for p in (first, last) if p]
    if not parts:
        return None
    if _CJK.search("".join(parts)):
        return f"{last or ''}{first or ''}"  # 张 + 三: family name first, no space
    return " ".join(parts)


async def create_request(request: Request, fmt: str) -> Response:
    ctx = context(request)
    ctype = request.headers.get("content-type", FORM).split(";")[0].strip()
    if ctype not in (FORM, ""):
        raise RequestError(f"send the fields as {FORM}", code="unsupported_media_type", status=415)
    query = list(request.query_params.multi_items())
    if any(k == "api_key" for k, _ in query):
        # URLs end up in access logs and proxies' logs; tokens never do.
        raise RequestError("send api_key in the form body, not in the URL", code="bad_request")
    form = _form(await body_bytes(request), query)
    try:
        who = await ctx.auth.resolve(form.get("api_key"))
    except AuthError:
        raise RequestError("invalid api_key", code="forbidden", status=403) from None
    if who.kind not in (TokenKind.INTAKE, TokenKind.ADMIN):
        raise RequestError("api_key must be an intake token", code="forbidden", status=403)
    attributes = {m.group(1): v for k, v in form.items() if (m := _ATTRIBUTE.match(k))}
    clean = OPEN311_FORM.check_map(form)
    item = await _live_item(ctx, clean["service_code"])
    try:
        line = o311.materials_line(item, attributes)
    except o311.BadAttributeError as exc:
        raise RequestError(exc.message, code="invalid_value", status=422) from None
    order_body: dict[str, Any] = {"item": item.code}
    text = "\n".join(t for t in (clean.get("description"), line) if t)
    if text:
        order_body["text"] = text
    if ("lat" in clean) != ("long" in clean):
        raise RequestError("give both 'lat' and 'long'", code="missing_field", status=422)
    if "lat" in clean:
        order_body["location"] = {"lat": float(clean["lat"]), "lon": float(clean["long"])}
    elif "address_string" in clean:
        order_body["address"] = clean["address_string"]
    else:
        raise RequestError(
            "give 'lat' and 'long' or 'address_string'", code="missing_field", status=422
        )
    applicant = {
        "name": _name(clean.get("first_name"), clean.get("last_name")),
        "phone": clean.get("phone"),
    }
    order_body["applicant"] = {k: v for k, v in applicant.items() if v}
    result = await filing.file_order(ctx, filing.parse_order_request(order_body), who)
    if isinstance(result, filing.FilingPending):  # no key here, so cannot be retried safely
        raise RequestError(
            "whether the request was recorded is not known yet (Postgres lost the answer);"
            " look it up (GET requests.json) before filing again",
            code="pending",
            status=503,
        )
    order, token = result.order, result.token
    filed = {
        "service_request_id": str(order.id),
        "service_notice": o311.service_notice(item),
        "account_id": None,
        "bangban_tracking_token": token,
    }
    return render(fmt, "service_requests", "request", [filed], 201)


def _ids(raw: str) -> list[int]:
    ids = [p.strip() for p in raw.split(",") if p.strip()]
    ascii_ids = all(p.isascii() and p.isdigit() and 0 < int(p) < 2**63 for p in ids)
    if len(ids) > o311.MAX_REQUESTS or not ids or not ascii_ids:
        raise RequestError("'service_request_id' must be order ids, comma-separated")
    return [int(p) for p in ids]


def _date(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    try:
        ms = o311.parse_w3(raw)
    except ValueError:
        raise RequestError(f"{name!r} must be a W3C datetime with a time zone") from None
    if not o311.EARLIEST_MS <= ms <= o311.LATEST_MS:
        # Found by schemathesis: end_date=0001-01-01T00:00:00Z minus 90 days was a 500.
        raise RequestError(f"{name!r} must be between 1970 and 9999")
    return ms


async def list_requests(request: Request, fmt: str) -> Response:
    ctx = context(request)
    q = request.query_params
    if q.get("service_request_id") is not None:
        found = await ctx.store.service_requests(ids=_ids(q["service_request_id"]))
    else:
        codes = [c.strip() for c in (q.get("service_code") or "").split(",") if c.strip()]
        statuses: list[str] = []
        for name in [s.strip() for s in (q.get("status") or "").split(",") if s.strip()]:
            try:
                statuses += [s.value for s in o311.statuses_for(name)]
            except ValueError:
                raise RequestError("'status' must be open, closed or both") from None
        end = _date(q.get("end_date"), "end_date")
        start = _date(q.get("start_date"), "start_date")
        if start is None:
            start = max(o311.EARLIEST_MS, (end or ctx.clock()) - o311.MAX_SPAN_MS)
        if end is not None and not 0 <= end - start <= o311.MAX_SPAN_MS:
            raise RequestError("the dates must span 0 to 90 days")
        found = await ctx.store.service_requests(
            items=codes or None,
            statuses=statuses or None,
            start_ms=start,
            end_ms=end,
            limit=o311.MAX_REQUESTS,
        )
    items: dict[str, Item | None] = {}
    rows = [await _public(ctx, listed, items) for listed in found]
    return render(fmt, "service_requests", "request", rows)


async def get_request(request: Request, fmt: str) -> Response:
    raw = request.path_params["service_request_id"]
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**63:
        raise NotFoundError(f"no service request {raw[:40]!r}")
    found = await context(request).store.service_requests(ids=[int(raw)])
    if not found:
        raise NotFoundError("no such service request")
    rows = [await _public(context(request), found[0], {})]
    return render(fmt, "service_requests", "request", rows)


async def _public(ctx: Context, listed: Listed, items: dict[str, Item | None]) -> dict[str, Any]:
    """The public map of one order: its grid for a place, its desk for an agency.  ``items``
    caches the catalogue items looked up for one answer."""
    order = listed.order
    chain = []
    if order.grid in ctx.geo:
        grid = ctx.geo.get(order.grid)
        if grid is not None:
            chain = [grid, *ctx.geo.ancestors(order.grid)]
    item = None
    if order.item is not None:
        if order.item not in items:
            items[order.item] = await ctx.store.get_item(order.item)
        item = items[order.item]
    if listed.desk in {lv.value for lv in Level}:
        desk = Level(listed.desk)
    else:
        desk = item.level if item is not None else Level.VILLAGE
    point = None
    for area in chain:
        if area.geometry is not None:
            p = area.geometry.representative_point()
            point = (round(p.y, 6), round(p.x, 6))
            break
    expected = order.due_at
    if (
        expected is None
        and order.time_limit_days is not None
        and order.status not in (o311.CLOSED_STATUSES | {Status.ESCALATED})
    ):
        expected = ctx.policy.calendar.add_working_days(order.created_at, order.time_limit_days)
    return o311.request(
        order,
        updated_at=listed.last_at,
        notes=label(listed.last_kind),
        agency_responsible=o311.agency(desk, [(a.level, a.name) for a in chain]),
        address="".join(a.name for a in reversed(chain)) or None,
        point=point,
        expected_at=expected,
    )


routes = [
    Route("/open311/discovery.{fmt}", endpoint(discovery), methods=["GET"]),
    Route("/open311/v2/services.{fmt}", endpoint(services), methods=["GET"]),
    Route(
        "/open311/v2/services/{service_code}.{fmt}",
        endpoint(service_definition),
        methods=["GET"],
    ),
    Route("/open311/v2/requests.{fmt}", endpoint(create_request), methods=["POST"]),
    Route("/open311/v2/requests.{fmt}", endpoint(list_requests), methods=["GET"]),
    Route(
        "/open311/v2/requests/{service_request_id}.{fmt}", endpoint(get_request), methods=["GET"]
    ),
]
