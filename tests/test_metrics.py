"""GET /metrics: protected, and the numbers move when the system does."""

from __future__ import annotations

import dataclasses
import gc
import re

import httpx

from clients import AgentClient, ApiClient
from dispatcher.settings import Settings
from tests.servers import InProcessServer
from tests.steps import CrewFactory


def _value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


async def test_metrics_count_claims_offers_and_connections(crew: CrewFactory) -> None:
    async with crew({"g1": 2}) as c:
        agents = c.agents["g1"]
        async with (
            AgentClient.connect(c.url, agents[0]["token"]) as a,
            AgentClient.connect(c.url, agents[1]["token"]) as b,
            ApiClient(c.url, c.intake) as api,
        ):
            order = await api.file_order(grid="g1", text="x")
            await a.wait_offer(order["id"], timeout=5)
            await b.wait_offer(order["id"], timeout=5)
            assert (await a.claim(order["id"])).result == "won"
            assert (await b.claim(order["id"])).result == "taken"
            async with c.server.admin() as admin:
                r = await admin.request("GET", "/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
        assert _value(text, 'bangban_claims_total{result="won"}') == 1
        assert _value(text, 'bangban_claims_total{result="taken"}') == 1
        assert _value(text, 'bangban_connected_agents{grid="g1"}') == 2
        assert _value(text, "bangban_offers_sent_total") >= 2
        assert _value(text, "bangban_fanout_seconds_count") >= 2
        assert _value(text, "bangban_claim_seconds_count") == 2
        assert _value(text, "bangban_orders_filed_total") == 1


async def test_metrics_need_a_token(settings: Settings) -> None:
    async with InProcessServer(dataclasses.replace(settings, metrics_token="m-secret")) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as http:
            assert (await http.get("/metrics")).status_code == 401
            admin = {"Authorization": f"Bearer {settings.admin_token}"}
            assert (await http.get("/metrics", headers=admin)).status_code == 401
            ok = await http.get("/metrics", headers={"Authorization": "Bearer m-secret"})
            assert ok.status_code == 200 and "bangban_event_loop_lag_seconds" in ok.text


async def test_metrics_default_to_the_admin_token(server: InProcessServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/metrics")).status_code == 401
        r = await http.get("/metrics", headers={"Authorization": "Bearer bbi_nope"})
        assert r.status_code == 401


async def test_metrics_time_garbage_collector_passes(server: InProcessServer) -> None:
    gc.collect()
    async with server.admin() as admin:
        r = await admin.request("GET", "/metrics")
    assert r.status_code == 200
    assert _value(r.text, 'bangban_gc_pause_seconds_count{generation="2"}') >= 1
