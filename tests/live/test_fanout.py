"""Fan-out goes through Redis pub/sub: any process's order reaches any process's agents."""

from __future__ import annotations

import asyncio
from pathlib import Path

from clients import AgentClient, ApiClient
from dispatcher.live import wire
from dispatcher.settings import Settings
from tests.servers import ProcessServer, intake_token, roster
from tests.steps import CrewFactory


async def test_order_filed_on_one_process_reaches_agents_on_another(
    settings: Settings, tmp_path: Path
) -> None:
    """Two real uvicorn processes, one Redis, one Postgres."""
    a = ProcessServer(settings, log=tmp_path / "a.log")
    b = ProcessServer(settings, log=tmp_path / "b.log")
    async with a, b:
        async with ApiClient(a.url, settings.admin_token) as admin:
            agents = (await roster(admin, {"g1": 2}))["g1"]
            intake = await intake_token(admin)
        async with (
            AgentClient.connect(a.url, agents[0]["token"]) as on_a,
            AgentClient.connect(b.url, agents[1]["token"]) as on_b,
        ):
            async with ApiClient(a.url, intake) as api:
                first = await api.file_order(grid="g1", text="filed on a")
            async with ApiClient(b.url, intake) as api:
                second = await api.file_order(grid="g1", text="filed on b")
            for agent in (on_a, on_b):
                await agent.wait_offer(first["id"], timeout=5)
                await agent.wait_offer(second["id"], timeout=5)
            # The claim on b withdraws the offer on a.
            assert (await on_b.claim(first["id"])).result == "won"
            frame = await on_a.recv(timeout=5)
            while not isinstance(frame, wire.Withdrawn):
                frame = await on_a.recv(timeout=5)
            assert (frame.order_id, frame.reason) == (first["id"], "claimed")


async def test_offers_go_only_to_the_orders_grid(crew: CrewFactory) -> None:
    """An agent sees only what is offered to it."""
    async with crew({"g1": 1, "g2": 1}) as c:
        async with (
            AgentClient.connect(c.url, c.agents["g1"][0]["token"]) as own,
            AgentClient.connect(c.url, c.agents["g2"][0]["token"]) as other,
            ApiClient(c.url, c.intake) as api,
        ):
            order = await api.file_order(grid="g1", text="x")
            await own.wait_offer(order["id"], timeout=5)
            await asyncio.sleep(0.3)
            assert order["id"] not in other.offers
