"""Applicant tracking: the order on connect and after every change, by tracking token."""

from __future__ import annotations

import dataclasses

from clients import AgentClient, ApiClient, TrackingClient
from dispatcher.settings import Settings
from tests.servers import InProcessServer, intake_token, roster


async def test_status_frames_follow_the_order(settings: Settings) -> None:
    settings = dataclasses.replace(settings, widen_after=0.3, sweep_interval=0.25)
    async with InProcessServer(settings) as srv:
        async with srv.admin() as admin:
            agents = await roster(admin, {"g1": 1, "g2": 1})
            intake = await intake_token(admin)
        async with ApiClient(srv.url, intake) as api:
            order = await api.file_order(grid="g1", text="我要办理独生子女证")
        token = order["tracking_token"]
        async with TrackingClient.connect(srv.url, order["id"], token) as tracker:
            assert tracker.order["status"] == "offered"
            await tracker.wait_status("widened", timeout=5)
            async with AgentClient.connect(srv.url, agents["g2"][0]["token"]) as agent:
                assert (await agent.claim(order["id"])).result == "won"
            claimed = await tracker.wait_status("claimed", timeout=5)
            assert claimed["claimed_by"] == agents["g2"][0]["id"]
            assert [o["version"] for o in tracker.history] == [1, 2, 3]
        async with ApiClient(srv.url, token) as applicant:
            assert (await applicant.get_order(order["id"]))["status"] == "claimed"
            events = (await applicant.request("GET", f"/v1/orders/{order['id']}/events")).json()
            assert [e["kind"] for e in events["events"]] == ["filed", "widened", "claimed"]
