"""Applicant tracking: the order on connect and after every change, by tracking token."""

from __future__ import annotations

from clients import AgentClient, ApiClient, TrackingClient
from tests.steps import CrewFactory


async def test_status_frames_follow_the_order(crew: CrewFactory) -> None:
    async with crew({"g1": 1, "g2": 1}, widen_after=0.3, sweep_interval=0.25) as c:
        async with ApiClient(c.url, c.intake) as api:
            order = await api.file_order(grid="g1", text="我要办理独生子女证")
        token = order["tracking_token"]
        async with TrackingClient.connect(c.url, order["id"], token) as tracker:
            assert tracker.order["status"] == "offered"
            await tracker.wait_status("widened", timeout=5)
            async with AgentClient.connect(c.url, c.agents["g2"][0]["token"]) as agent:
                assert (await agent.claim(order["id"])).result == "won"
            claimed = await tracker.wait_status("claimed", timeout=5)
            assert claimed["claimed_by"] == c.agents["g2"][0]["id"]
            assert [o["version"] for o in tracker.history] == [1, 2, 3]
        async with ApiClient(c.url, token) as applicant:
            assert (await applicant.get_order(order["id"]))["status"] == "claimed"
            events = (await applicant.request("GET", f"/v1/orders/{order['id']}/events")).json()
            assert [e["kind"] for e in events["events"]] == ["filed", "widened", "claimed"]
