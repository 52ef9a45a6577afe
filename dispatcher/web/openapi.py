"""The OpenAPI 3.1 document, built from :mod:`dispatcher.web.schemas` and the app's routes.

``GET /openapi.json`` serves it; ``GET /docs`` is a Swagger UI page over it.  Swagger UI's
files come from the ``openapi-ui-bundles`` package (installed with the server, served from
this process: nothing is fetched from the internet when the page is opened).

:func:`document` walks the app's routes and finds each one's :class:`~.schemas.Operation`; a
route without one is an error (:class:`UndocumentedRouteError`), so the document can neither
miss a route nor describe one the app does not have.  Routes created with
``include_in_schema=False`` (the Swagger UI files) are left out on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import openapi_ui_bundles
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from dispatcher.exceptions import ConfigError, NotFoundError
from dispatcher.web import schemas
from dispatcher.web.operations import OPERATIONS
from dispatcher.web.schemas import JSON, MSGPACK, Answer, Operation

Json = dict[str, Any]

TITLE = "Bangban dispatch API"
VERSION = "1"

_KIND_DOCS = {
    schemas.ADMIN: "An operator's token (`bba_…`).",
    schemas.INTAKE: "A front end that files orders on an applicant's behalf (`bbi_…`).",
    schemas.AGENT: "One agent's token (`bbg_…`), returned when the agent is created.",
    schemas.TRACKING: "One order's token (`bbt_…`), returned when the order is filed.",
    schemas.METRICS: "`BANGBAN_METRICS_TOKEN`, for the Prometheus scraper.",
}

ERROR_DOC = (
    'Every error is `{"error": {"code", "message", "details"}}`: `code` is stable (the'
    " values each status may carry are listed per operation), `message` is for people,"
    " `details` (present when there is something to say) names the field at fault"
    " (`details.field`) or the state that refused (`details.current_state`)."
)


class UndocumentedRouteError(ConfigError):
    """The app has a route that :data:`~dispatcher.web.operations.OPERATIONS` does not
    describe (or vice versa)."""


def error_schema(codes: Iterable[str]) -> Json:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": sorted(codes)},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            }
        },
    }


def undocumented(routes: Iterable[BaseRoute]) -> list[str]:
    """``METHOD path`` of every schema-visible route without an operation, and of every
    operation without a route."""
    seen = set(_endpoints(routes))
    missing = [f"{m} {p}" for m, p in sorted(seen) if (m, p) not in OPERATIONS]
    stale = [f"{m} {p} (no such route)" for m, p in sorted(set(OPERATIONS) - seen)]
    return missing + stale


def _endpoints(routes: Iterable[BaseRoute]) -> Iterable[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Route) and route.include_in_schema:
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, route.path


_PARAM = re.compile(r"{([a-z_]+)}")


def _answer(answer: Answer) -> Json:
    out: Json = {"description": answer.description}
    if answer.schema is not None:
        content = {answer.media: {"schema": answer.schema}}
        if answer.media == JSON and not answer.also:
            content[MSGPACK] = {"schema": answer.schema}
        content.update({media: {"schema": schema} for media, schema in answer.also.items()})
        out["content"] = content
    if answer.links:
        out["links"] = answer.links
    return out


def _error(status: int, codes: tuple[str, ...]) -> Json:
    out: Json = {
        "description": f"Error ({', '.join(codes)}).",
        "content": {JSON: {"schema": error_schema(codes)}},
    }
    if status in (429, 503):
        out["headers"] = {
            "Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}
        }
    return out


def _open311_error(status: int) -> Json:
    return {
        "description": f"GeoReport error ({status}): [{{code, description}}], or <errors> in XML.",
        "content": {
            JSON: {"schema": OPEN311_ERROR},
            "text/xml": {"schema": {"type": "string"}},
        },
    }


OPEN311_ERROR = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}


def operation(method: str, path: str, op: Operation) -> Json:
    """The OpenAPI operation object of one route."""
    params: list[Json] = []
    for name in _PARAM.findall(path):
        if name in op.path_ids:
            schema: Json = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
        elif name in op.path_enums:
            schema = {"type": "string", "enum": list(op.path_enums[name])}
        else:
            schema = {"type": "string", "minLength": 1}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    params += [q.parameter() for q in op.query]
    params += list(op.headers)
    out: Json = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": op.description,
        "tags": [op.tag],
        "security": [{kind: []} for kind in op.auth],
        "responses": {str(status): _answer(a) for status, a in sorted(op.answers.items())},
    }
    if params:
        out["parameters"] = params
    for status, codes in schemas.error_codes(op, path).items():
        if op.error_style == "open311":
            out["responses"].setdefault(str(status), _open311_error(status))
        else:
            out["responses"].setdefault(str(status), _error(status, codes))
    body = op.body.schema() if op.body is not None else op.raw_body
    if body is not None:
        out["requestBody"] = {
            "required": op.body is None or op.body.required,
            "content": {media: {"schema": body} for media in op.body_media},
        }
    return out


def document(routes: Iterable[BaseRoute], server_url: str | None = None) -> Json:
    """The OpenAPI 3.1 document of ``routes``.  Raises :class:`UndocumentedRouteError`."""
    problems = undocumented(routes)
    if problems:
        raise UndocumentedRouteError("routes without an operation: " + "; ".join(problems))
    paths: dict[str, Json] = {}
    for (method, path), op in OPERATIONS.items():
        paths.setdefault(path, {})[method.lower()] = operation(method, path, op)
    doc: Json = {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": (
                "Grab-order dispatch (抢单式帮您办).  Every request carries"
                " `Authorization: Bearer <token>` of a kind the operation lists.  Bodies are"
                " JSON; `application/msgpack` is accepted, and returned when asked for with"
                " `Accept`.  The agent and tracking websockets (`/v1/agent/ws`,"
                " `/v1/orders/{id}/ws`) are described in PROTOCOL.md.  " + ERROR_DOC
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                kind: {"type": "http", "scheme": "bearer", "description": _KIND_DOCS[kind]}
                for kind in schemas.TOKEN_KINDS
            },
        },
    }
    if server_url is not None:
        doc["servers"] = [{"url": server_url}]
    return doc


# -- serving ---------------------------------------------------------------------------------

_STATIC: Path = openapi_ui_bundles.swagger_ui.static_path
_STATIC_FILES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Bangban API reference</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: "none",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"""


async def openapi_json(request: Request) -> Response:
    """The document of this app's routes."""
    cached: Json | None = getattr(request.app.state, "openapi", None)
    if cached is None:
        cached = document(request.app.routes)
        request.app.state.openapi = cached
    return JSONResponse(cached)


async def docs(request: Request) -> Response:
    return HTMLResponse(DOCS_PAGE)


async def static(request: Request) -> Response:
    name: str = request.path_params["name"]
    media = _STATIC_FILES.get(name)
    if media is None:
        raise NotFoundError("no such file")
    return FileResponse(
        _STATIC / name, media_type=media, headers={"Cache-Control": "max-age=86400"}
    )


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Route("/docs/static/{name}", static, methods=["GET"], include_in_schema=False),
]


def operations_of(doc: Mapping[str, Any]) -> list[tuple[str, str, Json]]:
    """(method, path, operation) of every operation in ``doc``."""
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    ]
