"""The OpenAPI document: every route described, valid OpenAPI 3.1, served with a reference page."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest
from openapi_spec_validator import validate as validate_spec
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dispatcher.core.orders import default_schedule, new_order
from dispatcher.settings import Settings
from dispatcher.web import answers, openapi
from dispatcher.web.app import create_app
from dispatcher.web.operations import OPERATIONS
from tests.servers import InProcessServer


def app_routes() -> list[BaseRoute]:
    # create_app connects to nothing until its lifespan runs.
    app = create_app(Settings(redis_url="redis://unused", database_url="postgresql://unused"))
    return list(app.routes)


def test_every_route_of_the_app_has_an_operation() -> None:
    assert openapi.undocumented(app_routes()) == []


def test_a_route_added_without_a_description_fails() -> None:
    """The check this suite relies on: a new route that schemas.py does not describe."""

    async def new_endpoint(request: Any) -> Response:
        return Response()

    routes = [*app_routes(), Route("/v1/new-thing", new_endpoint, methods=["POST"])]
    assert openapi.undocumented(routes) == ["POST /v1/new-thing"]
    with pytest.raises(openapi.UndocumentedRouteError, match="POST /v1/new-thing"):
        openapi.document(routes)


def test_an_operation_without_its_route_fails_too() -> None:
    routes = [r for r in app_routes() if getattr(r, "path", "") != "/v1/admin/tokens"]
    assert "GET /v1/admin/tokens (no such route)" in openapi.undocumented(routes)


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = openapi.document(app_routes())
    assert doc["openapi"] == "3.1.0"
    validate_spec(doc)  # raises on an invalid document


def test_every_operation_is_described_with_auth_and_errors() -> None:
    doc = openapi.document(app_routes())
    schemes = doc["components"]["securitySchemes"]
    assert set(schemes) == {"admin", "intake", "agent", "tracking", "metrics"}
    assert all(
        s == {"type": "http", "scheme": "bearer", "description": s["description"]}
        for s in schemes.values()
    )
    ops = openapi.operations_of(doc)
    assert len(ops) == len(OPERATIONS)
    for method, path, op in ops:
        where = f"{method} {path}"
        assert op["summary"].strip() and len(op["description"].strip()) > 10, where
        assert "security" in op, where
        for status, answer in op["responses"].items():
            assert answer["description"].strip(), (where, status)
            if path.startswith("/open311/") and int(status) >= 400:
                # GeoReport's own error format: [{code, description}] or <errors>.
                schema = answer["content"]["application/json"]["schema"]
                assert schema["items"]["required"] == ["code", "description"], where
                assert "text/xml" in answer["content"], where
            elif int(status) >= 400 and "content" in answer and where != "GET /v1/healthz":
                schema = answer["content"]["application/json"]["schema"]
                codes = schema["properties"]["error"]["properties"]["code"]["enum"]
                assert codes, (where, status)
        if path.startswith("/open311/"):
            assert op["security"] == [], where  # public, or api_key in the form
        elif op["security"]:
            assert "401" in op["responses"], where
            assert "unauthorized" in _codes(op, "401"), where
        assert "503" in op["responses"] or path == "/open311/discovery.{fmt}", where
        if "{order_id}" in path:
            assert "not_found" in _codes(op, "404"), where


def _codes(op: dict[str, Any], status: str) -> list[str]:
    schema = op["responses"][status]["content"]["application/json"]["schema"]
    codes: list[str] = schema["properties"]["error"]["properties"]["code"]["enum"]
    return codes


def test_workflow_refusal_codes_come_from_the_rules() -> None:
    doc = openapi.document(app_routes())
    accept = doc["paths"]["/v1/orders/{order_id}/accept"]["post"]
    assert "illegal_transition" in _codes(accept, "409")
    assert "unknown_material" in _codes(accept, "422")
    assert {"forbidden"} <= set(_codes(accept, "403"))


def test_the_order_map_matches_its_schema() -> None:
    order = new_order(
        order_id=7,
        grid="g1",
        item=None,
        text="办低保",
        item_class=None,
        created_at=1_700_000_000_000,
        schedule=default_schedule(600),
    )
    validator = jsonschema_rs.validator_for(answers.ORDER)
    validator.validate(order.to_wire(1_700_000_000_500))
    filed = {
        **order.to_wire(),
        "tracking_token": "bbt_x",
        "tracking_url": "http://h/t/7#token=bbt_x",
    }
    jsonschema_rs.validator_for(answers.FILED).validate(filed)
    assert not validator.is_valid({**order.to_wire(), "status": "lost"})


async def test_served_document_and_reference_page(server: InProcessServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.get("/openapi.json")
        assert r.status_code == 200
        assert r.json() == openapi.document(server.app.routes)
        page = await http.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/docs/static/swagger-ui-bundle.js" in page.text and "/openapi.json" in page.text
        assert "https://" not in page.text  # nothing is fetched from the internet
        js = await http.get("/docs/static/swagger-ui-bundle.js")
        assert js.status_code == 200 and len(js.content) > 100_000
        assert "SwaggerUIBundle" in js.text
        css = await http.get("/docs/static/swagger-ui.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        # Only the files the page needs: the bundle's demo index.html is not served.
        missing = await http.get("/docs/static/index.html")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
