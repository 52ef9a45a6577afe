"""The pages' files and the endpoints only they need: places, the tracking link and its QR
code, grid geometry.  Real server, real HTTP (the browser tests drive the pages themselves)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from clients import ApiClient
from dispatcher.core.places import PlaceIndex
from geo import Grid, GridSet
from tests.servers import InProcessServer, intake_token
from tests.steps import CrewFactory


async def county(admin: ApiClient) -> None:
    await admin.create_grid("c0", "青山县", level="county")
    await admin.create_grid("t1", "城东街道", level="township", parent="c0", aliases=["城东镇"])
    await admin.create_grid("v1", "双田社区", level="village", parent="t1")
    await admin.create_grid("v2", "白石村", level="village", parent="t1")
    await admin.create_grid("t2", "双溪镇", level="township", parent="c0")
    await admin.create_grid("v3", "田坞村", level="village", parent="t2")


def test_completion_ranks_name_starts_then_contains_then_aliases_then_addresses() -> None:
    grids = GridSet(
        [
            Grid("c0", "青山县", "county"),
            Grid("t1", "城东街道", "township", "c0", aliases=("双桥镇",)),
            Grid("v1", "双田社区", "village", "t1"),
            Grid("v2", "新双村", "village", "t1"),
            Grid("t2", "双溪镇", "township", "c0"),
        ]
    )
    index = PlaceIndex(grids)
    assert [p.code for p in index.complete("双")] == ["t2", "v1", "v2", "t1"]
    assert [p.code for p in index.complete("城东街道双")] == ["v1"]  # by the full address
    first = index.complete("双田")[0]
    assert first.address == "青山县城东街道双田社区"
    assert first.path == ("青山县", "城东街道", "双田社区")
    assert index.complete("  ") == []
    assert len(index.complete("双", limit=2)) == 2
    assert index.get("v1") == first and index.get("nope") is None


async def test_places_complete_and_file_back_to_the_same_grid(server: InProcessServer) -> None:
    async with server.admin() as admin:
        await county(admin)
        intake = await intake_token(admin)
    async with ApiClient(server.url, intake) as api:
        found = (await api.request("GET", "/v1/places?q=双田")).json()["places"]
        assert found[0] == {
            "code": "v1",
            "name": "双田社区",
            "level": "village",
            "path": ["青山县", "城东街道", "双田社区"],
            "address": "青山县城东街道双田社区",
        }
        alias = (await api.request("GET", "/v1/places?q=城东镇")).json()["places"]
        assert [p["code"] for p in alias] == ["t1"]
        order = await api.file_order(address=found[0]["address"], text="我要办低保")
        assert order["grid"] == "v1"
        assert order["tracking_url"] == (
            f"{server.url}/t/{order['id']}#token={order['tracking_token']}"
        )


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "missing_field"),
        ("?q=", "missing_field"),
        ("?q=%20%20", "missing_field"),
        ("?q=" + "村" * 51, "invalid_value"),
        ("?q=双&limit=0", "invalid_value"),
        ("?q=双&limit=21", "invalid_value"),
        ("?q=双&limit=abc", "invalid_value"),
        ("?q=双&page=2", "unknown_field"),
        ("?q=双&code=v1", "invalid_value"),
        ("?code=", "invalid_value"),
        ("?code=a%20b", "invalid_value"),
        ("?code=" + ",".join(f"g{i}" for i in range(51)), "invalid_value"),
    ],
)
async def test_places_refuse_bad_queries(server: InProcessServer, query: str, code: str) -> None:
    async with server.admin() as admin:
        response = await admin.request("GET", "/v1/places" + query)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


async def test_places_need_a_token_of_the_right_kind(crew: CrewFactory) -> None:
    async with crew({"g1": 1}) as c:
        async with httpx.AsyncClient(base_url=c.url) as http:
            assert (await http.get("/v1/places?q=g1")).status_code == 401
        async with ApiClient(c.url, c.intake) as api:
            order = await api.file_order(grid="g1", text="x")
        async with ApiClient(c.url, order["tracking_token"]) as tracking:
            assert (await tracking.request("GET", "/v1/places?q=g1")).status_code == 403
        async with ApiClient(c.url, c.agents["g1"][0]["token"]) as agent:
            assert (await agent.request("GET", "/v1/places?q=g1")).status_code == 403
            named = (await agent.request("GET", "/v1/places?code=g1,nope")).json()["places"]
            assert [(p["code"], p["name"]) for p in named] == [("g1", "网格 g1")]


async def test_the_tracking_qr_is_only_for_its_own_token(crew: CrewFactory) -> None:
    async with crew({"g1": 0}) as c:
        async with ApiClient(c.url, c.intake) as api:
            one = await api.file_order(grid="g1", text="一")
            two = await api.file_order(grid="g1", text="二")
        async with ApiClient(c.url, one["tracking_token"]) as mine:
            qr = await mine.request("GET", f"/v1/orders/{one['id']}/tracking-qr")
            assert qr.status_code == 200
            assert qr.headers["content-type"].startswith("image/svg+xml")
            assert qr.text.startswith("<svg") and "<path" in qr.text
            other = await mine.request("GET", f"/v1/orders/{two['id']}/tracking-qr")
            assert other.status_code == 403
        async with c.server.admin() as admin:
            assert (
                await admin.request("GET", f"/v1/orders/{one['id']}/tracking-qr")
            ).status_code == 403
        async with httpx.AsyncClient(base_url=c.url) as http:
            assert (await http.get(f"/v1/orders/{one['id']}/tracking-qr")).status_code == 401


async def test_grids_with_geometry_on_request(server: InProcessServer) -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}
    async with server.admin() as admin:
        await admin.create_grid("g1", "有边界", geometry=square)
        await admin.create_grid("g2", "无边界")
        plain = (await admin.request("GET", "/v1/admin/grids")).json()["grids"]
        assert all("geometry" not in g for g in plain)
        shaped = (await admin.request("GET", "/v1/admin/grids?geometry=true")).json()["grids"]
        by_code: dict[str, Any] = {g["code"]: g for g in shaped}
        assert by_code["g1"]["geometry"]["type"] == "Polygon"
        assert by_code["g2"]["geometry"] is None
        bad = await admin.request("GET", "/v1/admin/grids?geometry=yes")
        assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "geometry"


PAGES = [
    ("/", "text/html"),
    ("/app/", "text/html"),
    ("/app/app.js", "text/javascript"),
    ("/app/sw.js", "text/javascript"),
    ("/app/manifest.json", "application/json"),
    ("/file", "text/html"),
    ("/console/", "text/html"),
    ("/console/console.js", "text/javascript"),
    ("/t/42", "text/html"),
    ("/static/common/api.js", "text/javascript"),
    ("/static/icons/icon.svg", "image/svg+xml"),
    ("/favicon.ico", "image/png"),
]


async def test_pages_are_served_with_a_strict_policy(server: InProcessServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        for path, kind in PAGES:
            response = await http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith(kind), path
            assert "default-src 'self'" in response.headers["content-security-policy"], path
            assert response.headers["cache-control"] == "no-cache", path
        manifest = json.loads((await http.get("/app/manifest.json")).text)
        for icon in manifest["icons"]:
            assert (await http.get(icon["src"])).status_code == 200, icon
        assert (await http.get("/app", follow_redirects=False)).headers["location"] == "/app/"
        for missing in ("/t/abc", "/t/0", "/static/nope.js", "/app/nope.js"):
            response = await http.get(missing)
            assert response.status_code == 404, missing
            assert response.json()["error"]["code"] == "not_found", missing
