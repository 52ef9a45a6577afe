"""The pages people use, served by the server itself, and the two endpoints only they need.

- ``/app/`` the agents' app (a PWA: manifest, service worker, icons), ``/t/{order_id}`` the
  applicant's tracking page, ``/file`` the intake page, ``/console/`` the operators' console,
  ``/`` a page linking them; shared scripts, styles and icons under ``/static/``.  They are
  plain files (HTML, CSS, JavaScript modules): no build step, no Node at run time.  Each page
  reads its token from the URL fragment (``#token=``, never sent to a server) and then uses the
  public HTTP API and websockets like any other client.
- ``GET /v1/places?q=&limit=`` completes place names over the grid tree (intake and admin
  tokens): the intake page's address suggestions.
- ``GET /v1/orders/{id}/tracking-qr`` the tracking link as an SVG QR code (the order's own
  tracking token): what the intake page shows after filing.

The pages, the favicon and the files are not part of the API: their routes are left out of the
OpenAPI document (``include_in_schema=False``); the two endpoints above are in it.

Every page and file carries ``Cache-Control: no-cache`` (revalidated by ETag, so a deploy
shows at once) and a content security policy that allows only this origin.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import segno
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dispatcher import auth
from dispatcher.core import validate
from dispatcher.core.places import MAX_CODES, MAX_LIMIT, MAX_QUERY_CHARS, PlaceIndex
from dispatcher.core.roster import TokenKind
from dispatcher.exceptions import ForbiddenError, NotFoundError
from dispatcher.web.http import answer, context, principal

STATIC = Path(__file__).resolve().parent / "static"

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:;"
        " connect-src 'self' ws: wss:; manifest-src 'self'; worker-src 'self';"
        " object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


def tracking_url(request: Request, order_id: int, token: str) -> str:
    """The applicant's page for an order, with its tracking token in the fragment (browsers
    never send a fragment to a server, so the token stays out of every access log)."""
    base = str(request.base_url).rstrip("/")
    return f"{base}/t/{order_id}#token={token}"


class _Static(StaticFiles):
    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(HEADERS)
        return response


def _page(relative: str) -> Response:
    response = FileResponse(STATIC / relative, media_type="text/html; charset=utf-8")
    response.headers.update(HEADERS)
    return response


async def home(request: Request) -> Response:
    return _page("index.html")


async def tracking_page(request: Request) -> Response:
    raw = request.path_params["order_id"]
    if not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise NotFoundError(f"no order {raw[:40]!r}")
    return _page("track/index.html")


async def intake_page(request: Request) -> Response:
    return _page("file/index.html")


async def to_app(request: Request) -> Response:
    return RedirectResponse("/app/", 308)


async def to_console(request: Request) -> Response:
    return RedirectResponse("/console/", 308)


async def favicon(request: Request) -> Response:
    response = FileResponse(STATIC / "icons" / "favicon-32.png", media_type="image/png")
    response.headers.update(HEADERS)
    return response


def _places(request: Request) -> PlaceIndex:
    """The index for the grids this process routes with, rebuilt when they change."""
    ctx = context(request)
    cached: tuple[int, PlaceIndex] | None = getattr(request.app.state, "places", None)
    if cached is None or cached[0] != ctx.generation:
        cached = (ctx.generation, PlaceIndex(ctx.geo))
        request.app.state.places = cached
    return cached[1]


async def complete_places(request: Request) -> Response:
    """``GET /v1/places?q=双田&limit=8``: places whose name, alias or address contains ``q``,
    best first, each with the ``address`` text that files an order to it (intake and admin
    tokens).  ``GET /v1/places?code=A,B``: the places of those grid codes, in that order, the
    unknown ones left out (agent tokens too: the app names the villages on its cards)."""
    who = await principal(request, TokenKind.INTAKE, TokenKind.ADMIN, TokenKind.AGENT)
    params = request.query_params
    validate.only_fields(dict(params), ("q", "limit", "code"))
    if "code" in params:
        if "q" in params:
            raise validate.invalid("code", "give 'q' or 'code', not both")
        codes = [c for c in params["code"].split(",") if c]
        if not codes or len(codes) > MAX_CODES or not all(validate.CODE_RE.match(c) for c in codes):
            raise validate.invalid(
                "code", f"'code' must be 1 to {MAX_CODES} grid codes, comma separated"
            )
        index = _places(request)
        found = [index.get(c) for c in codes]
        return answer(request, {"places": [p.to_wire() for p in found if p is not None]})
    if who.kind is TokenKind.AGENT:
        raise ForbiddenError("agent tokens may only look places up by 'code'")
    q = params.get("q", "").strip()
    if not q:
        raise validate.invalid("q", "give 'q', the start of a place name", "missing_field")
    if len(q) > MAX_QUERY_CHARS:
        raise validate.invalid("q", f"'q' is longer than {MAX_QUERY_CHARS} characters")
    raw = params.get("limit", "8")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise validate.invalid("limit", f"'limit' must be a whole number from 1 to {MAX_LIMIT}")
    places = _places(request).complete(q, int(raw))
    return answer(request, {"places": [p.to_wire() for p in places]})


async def tracking_qr(request: Request) -> Response:
    """The tracking link of an order as an SVG QR code; only for the order's tracking token,
    the one the link carries."""
    who = await principal(request, TokenKind.TRACKING)
    raw = request.path_params["order_id"]
    order_id = int(raw) if raw.isdigit() and 0 < int(raw) < 2**63 else 0
    if who.order_id != order_id:
        raise ForbiddenError("this token does not track this order")
    token = auth.bearer(request.headers.get("authorization"))
    assert token is not None  # principal() has resolved it
    out = io.BytesIO()
    segno.make(tracking_url(request, order_id, token), error="m").save(
        out, kind="svg", scale=4, border=2, xmldecl=False
    )
    return Response(
        out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"}
    )


routes: list[BaseRoute] = [
    Route("/", home, methods=["GET"], include_in_schema=False),
    Route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False),
    Route("/app", to_app, methods=["GET"], include_in_schema=False),
    Route("/console", to_console, methods=["GET"], include_in_schema=False),
    Mount("/app", _Static(directory=STATIC / "app", html=True)),
    Mount("/console", _Static(directory=STATIC / "console", html=True)),
    Mount("/static", _Static(directory=STATIC)),
    Route("/t/{order_id}", tracking_page, methods=["GET"], include_in_schema=False),
    Route("/file", intake_page, methods=["GET"], include_in_schema=False),
    Route("/v1/places", complete_places, methods=["GET"]),
    Route("/v1/orders/{order_id}/tracking-qr", tracking_qr, methods=["GET"]),
]
