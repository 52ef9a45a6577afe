"""End to end through real uvicorn, Redis and Postgres: file, offer, claim, withdraw."""

from __future__ import annotations

from clients import AgentClient, ApiClient
from tests.steps import CrewFactory


async def test_file_offer_claim_withdraw(crew: CrewFactory) -> None:
    """An order reaches the agents of its grid; first claim wins; the other is withdrawn."""
    async with crew({"g1": 2, "g2": 1}) as t:
        a, b = t.agents["g1"]
        (c,) = t.agents["g2"]
        async with (
            AgentClient.connect(t.url, a["token"]) as ca,
            AgentClient.connect(t.url, b["token"]) as cb,
            AgentClient.connect(t.url, c["token"]) as cc,
            ApiClient(t.url, t.intake) as api,
        ):
            assert ca.welcome.agent_id == a["id"]
            order = await api.file_order(
                grid="g1",
                text="我要办理低保申请",
                applicant={"name": "张三", "phone": "13700000000"},
            )
            assert order["status"] == "offered" and order["tracking_token"]
            got = await ca.wait_offer(order["id"], timeout=5)
            await cb.wait_offer(order["id"], timeout=5)
            assert got["grid"] == "g1" and got["version"] == 1
            won = await ca.claim(order["id"])
            assert won.result == "won"
            frame = await cb.recv(timeout=5)
            while frame.type != "withdrawn":
                frame = await cb.recv(timeout=5)
            assert frame.order_id == order["id"] and frame.reason == "claimed"
            lost = await cb.claim(order["id"])
            assert lost.result == "taken"
            assert order["id"] not in cc.offers
        async with t.server.admin() as admin:
            stored = await admin.get_order(order["id"])
        assert stored["status"] == "claimed" and stored["claimed_by"] == a["id"]
