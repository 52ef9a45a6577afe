"""Routing orders to grids through POST /v1/orders, grid imports, and the widening ladder."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

import geo
from clients import AgentClient, ApiClient, ApiError
from dispatcher.settings import Settings
from geo import sample
from tests.servers import ROOT, InProcessServer, intake_token, offers_for

AGENT_GRIDS = {
    "longmen": sample.LONGMEN,
    "xinxing": sample.XINXING_VILLAGE,  # shares a border with 龙门村
    "shicang": sample.SHICANG,  # shares a border with 龙门村
    "far": sample.HENGKENG_DADONGBA,  # touches nothing of 龙门村
}


async def _import(url: str, token: str, collection: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as http:
        return await http.post(
            "/v1/admin/grids/import",
            content=json.dumps(collection, ensure_ascii=False).encode(),
            headers={"Authorization": f"Bearer {token}"},
        )


async def _county(srv: InProcessServer) -> dict[str, Any]:
    r = await _import(srv.url, srv.settings.admin_token or "", sample.sample_feature_collection())
    assert r.status_code == 200, r.text
    agents = {}
    async with srv.admin() as admin:
        for i, (name, grid) in enumerate(AGENT_GRIDS.items()):
            agents[name] = await admin.create_agent(name, f"1390000{i:04d}", [grid])
        intake = await intake_token(admin)
    return {"agents": agents, "intake": intake, "import": r.json()}


@pytest.fixture
async def county(server: InProcessServer) -> dict[str, Any]:
    return await _county(server)


async def _file(srv: InProcessServer, intake: str, **where: Any) -> dict[str, Any]:
    async with ApiClient(srv.url, intake) as api:
        return await api.file_order(text="我要办理城乡居民养老保险", **where)


async def _refused(srv: InProcessServer, intake: str, **where: Any) -> ApiError:
    with pytest.raises(ApiError) as err:
        await _file(srv, intake, **where)
    return err.value


async def test_import_summary(county: dict[str, Any]) -> None:
    summary = county["import"]
    assert summary["grids"] == 13 and summary["routing_grids"] == 9
    assert summary["levels"] == {"county": 1, "township": 3, "village": 9}


async def test_location_inside_a_village(server: InProcessServer, county: dict[str, Any]) -> None:
    """The order goes to the village containing the point; operators see how it was routed."""
    async with AgentClient.connect(server.url, county["agents"]["longmen"]["token"]) as agent:
        order = await _file(server, county["intake"], location={"lat": 28.25, "lon": 119.3})
        assert order["grid"] == sample.LONGMEN
        await agent.wait_offer(order["id"], timeout=5)
    async with server.admin() as admin:
        routing = (await admin.get_order(order["id"]))["routing"]
    assert routing["input"] == "location" and routing["method"] == "contains"
    assert routing["grid"] == sample.LONGMEN


async def test_border_point_goes_to_one_grid_deterministically(
    server: InProcessServer, county: dict[str, Any]
) -> None:
    orders = [
        await _file(server, county["intake"], location={"lat": 28.1, "lon": 119.2})
        for _ in range(3)
    ]
    assert {o["grid"] for o in orders} == {sample.HENGKENG_DADONGBA}


async def test_snapping_and_unroutable(server: InProcessServer, county: dict[str, Any]) -> None:
    near = await _file(server, county["intake"], location={"lat": 27.9975, "lon": 119.3})
    assert near["grid"] == sample.HENGKENG_XINXING  # ~280 m south of the county
    err = await _refused(server, county["intake"], location={"lat": 27.95, "lon": 119.3})
    assert (err.status, err.code) == (422, "unroutable")


@pytest.mark.parametrize(
    ("address", "grid"),
    [
        ("松阳县新兴镇龙门村3组", sample.LONGMEN),
        ("龍門村", sample.LONGMEN),  # traditional characters
        ("西屏街道东方村12号", sample.DONGFANG),  # an alias
        ("大东坝镇横坑村", sample.HENGKENG_DADONGBA),  # the township settles it
    ],
)
async def test_address_routing(
    server: InProcessServer, county: dict[str, Any], address: str, grid: str
) -> None:
    order = await _file(server, county["intake"], address=address)
    assert order["grid"] == grid


async def test_ambiguous_and_unknown_addresses(
    server: InProcessServer, county: dict[str, Any]
) -> None:
    err = await _refused(server, county["intake"], address="横坑村")
    assert (err.status, err.code) == (422, "ambiguous_address")
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post(
            "/v1/orders",
            json={"address": "横坑村", "text": "x"},
            headers={"Authorization": f"Bearer {county['intake']}"},
        )
    details = r.json()["error"]["details"]
    assert {c["code"] for c in details["candidates"]} == {
        sample.HENGKENG_DADONGBA,
        sample.HENGKENG_XINXING,
    }
    err = await _refused(server, county["intake"], address="火星村")
    assert (err.status, err.code) == (422, "unroutable")


async def test_bad_import_reports_each_feature_and_changes_nothing(
    server: InProcessServer, county: dict[str, Any]
) -> None:
    fc = sample.sample_feature_collection()
    fc["features"].append(json.loads(json.dumps(fc["features"][-1])))  # duplicate code
    ring = fc["features"][2]["geometry"]["coordinates"][0]
    fc["features"][2]["geometry"]["coordinates"][0] = ring[:-1]  # unclosed ring
    r = await _import(server.url, server.settings.admin_token or "", fc)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_grid_file"
    problems = {(p["problem"], p["index"]) for p in err["details"]["problems"]}
    assert ("unclosed_ring", 2) in problems
    assert {p["problem"] for p in err["details"]["problems"]} >= {"duplicate_code"}
    async with server.admin() as admin:
        assert len((await admin.list_grids())["grids"]) == 13


async def test_reimport_retires_missing_grids_and_orders_keep_theirs(
    server: InProcessServer, county: dict[str, Any]
) -> None:
    kept = await _file(server, county["intake"], grid=sample.DONGFANG)
    fc = sample.sample_feature_collection()
    fc["features"] = [f for f in fc["features"] if f["properties"]["code"] != sample.DONGFANG]
    r = await _import(server.url, server.settings.admin_token or "", fc)
    assert r.status_code == 200 and r.json()["retired"] == 1
    assert r.json()["generation"] == county["import"]["generation"] + 1
    async with server.admin() as admin:
        assert (await admin.get_order(kept["id"]))["grid"] == sample.DONGFANG
        codes = {g["code"] for g in (await admin.list_grids())["grids"]}
    assert sample.DONGFANG not in codes
    err = await _refused(server, county["intake"], grid=sample.DONGFANG)
    assert err.code == "unknown_grid"


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_URL": settings.database_url or "", "PYTHONPATH": str(ROOT), "PATH": ""}
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_imports(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature"}]}')
    out = await asyncio.to_thread(_cli, settings, "grids", "import", str(bad))
    assert out.returncode == 1 and "feature 0" in out.stdout, out.stdout + out.stderr
    good = tmp_path / "county.geojson"
    good.write_text(json.dumps(sample.sample_feature_collection(), ensure_ascii=False))
    out = await asyncio.to_thread(_cli, settings, "grids", "import", str(good))
    assert out.returncode == 0 and "13 grids" in out.stdout, out.stdout + out.stderr
    roster = tmp_path / "agents.csv"
    roster.write_text(
        f"name,phone,grids\n甲,13912340000,{sample.LONGMEN}\n"
        f"乙,13912340001,{sample.SHICANG};{sample.LONGMEN}\n",
        encoding="utf-8",
    )
    tokens = tmp_path / "tokens.csv"
    out = await asyncio.to_thread(
        _cli, settings, "agents", "import", str(roster), "--tokens-out", str(tokens)
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = tokens.read_text().splitlines()
    assert len(lines) == 3 and lines[1].split(",")[-1].startswith("bbg_")
    roster.write_text("name,phone,grids\n丙,notaphone,nowhere\n", encoding="utf-8")
    out = await asyncio.to_thread(
        _cli, settings, "agents", "import", str(roster), "--tokens-out", str(tokens)
    )
    assert out.returncode == 1 and "line 2" in out.stdout, out.stdout


async def _offers(agent: AgentClient, order_id: int, seconds: float) -> list[tuple[int, str, int]]:
    """(version, reach, received ms) of every offer for ``order_id`` within ``seconds``."""
    return [
        (o["version"], o["reach"], o["received_at"])
        for o in await offers_for(agent, order_id, seconds)
    ]


LADDER = "grid@0,neighbours@0.6,all@1.2"
BOUND_MS = 1500


async def test_three_step_ladder_exactly_once_across_two_servers(settings: Settings) -> None:
    """Also: the grids were imported through the other server a moment before, and its
    periodic reload is far off; the neighbours it widens to must still be the new ones."""
    settings = dataclasses.replace(
        settings, widen_schedule=LADDER, sweep_interval=0.25, reconcile_interval=30
    )

    async with InProcessServer(settings) as one, InProcessServer(settings) as two:
        county = await _county(one)
        a = county["agents"]
        async with (
            AgentClient.connect(one.url, a["longmen"]["token"]) as own,
            AgentClient.connect(two.url, a["xinxing"]["token"]) as neighbour,
            AgentClient.connect(one.url, a["far"]["token"]) as far,
        ):
            order = await _file(one, county["intake"], grid=sample.LONGMEN)
            t0 = order["created_at"]
            got_own, got_nb, got_far = await asyncio.gather(
                _offers(own, order["id"], 3.5),
                _offers(neighbour, order["id"], 3.5),
                _offers(far, order["id"], 3.5),
            )
    assert [(v, r) for v, r, _ in got_own] == [(1, "grid"), (2, "neighbours"), (3, "all")]
    assert [(v, r) for v, r, _ in got_nb] == [(2, "neighbours"), (3, "all")]
    assert [(v, r) for v, r, _ in got_far] == [(3, "all")]
    assert t0 + 600 <= got_nb[0][2] <= t0 + 600 + BOUND_MS
    assert t0 + 1200 <= got_far[0][2] <= t0 + 1200 + BOUND_MS
    conn = await asyncpg.connect(settings.database_url)
    steps = await conn.fetch(
        "SELECT details->>'reach' AS reach FROM order_events WHERE kind = 'widened' ORDER BY id"
    )
    await conn.close()
    assert [s["reach"] for s in steps] == ["neighbours", "all"]


async def test_ladder_catches_up_after_every_process_was_stopped(settings: Settings) -> None:
    settings = dataclasses.replace(settings, widen_schedule=LADDER, sweep_interval=0.25)
    async with InProcessServer(settings) as first:
        county = await _county(first)
        order = await _file(first, county["intake"], grid=sample.LONGMEN)
    await asyncio.sleep(1.5)
    async with InProcessServer(settings) as second, second.admin() as admin:
        after = await admin.get_order(order["id"])
        events = (await admin.request("GET", f"/v1/orders/{order['id']}/events")).json()
    assert (after["status"], after["reach"], after["version"]) == ("widened", "all", 3)
    assert [e["details"]["reach"] for e in events["events"] if e["kind"] == "widened"] == [
        "neighbours",
        "all",
    ]


async def test_h3_cells_route_a_pilot_without_polygons(settings: Settings) -> None:
    pytest.importorskip("h3")
    settings = dataclasses.replace(settings, h3_resolution=7)
    lat, lon = 28.45, 119.48
    cell = geo.h3_grid_for(lat, lon, 7)
    async with InProcessServer(settings) as srv:
        async with srv.admin() as admin:
            await admin.create_grid(cell, "试点格")
            agent = await admin.create_agent("试点代办员", "13955550000", [cell])
            intake = await intake_token(admin)
        async with AgentClient.connect(srv.url, agent["token"]) as client:
            order = await _file(srv, intake, location={"lat": lat, "lon": lon})
            assert order["grid"] == cell
            await client.wait_offer(order["id"], timeout=5)
        elsewhere = await _file(srv, intake, location={"lat": 30.0, "lon": 120.0})
        assert elsewhere["grid"].startswith("h3:") and elsewhere["grid"] != cell


async def test_without_h3_a_point_outside_every_grid_is_unroutable(
    server: InProcessServer, county: dict[str, Any]
) -> None:
    err = await _refused(server, county["intake"], location={"lat": 30.0, "lon": 120.0})
    assert err.code == "unroutable"
