"""Reconnect: every order open to the agent arrives again, including what happened meanwhile."""

from __future__ import annotations

import asyncio
import time

from clients import AgentClient, ApiClient
from tests.steps import CrewFactory


async def test_snapshot_on_connect_covers_the_gap(crew: CrewFactory) -> None:
    async with crew({"g1": 2, "g2": 1}, widen_after=0.5, sweep_interval=0.25) as c:
        me = c.agents["g1"][0]
        async with ApiClient(c.url, c.intake) as api:
            async with AgentClient.connect(c.url, me["token"]) as first:
                seen = await api.file_order(grid="g1", text="seen live")
                await first.wait_offer(seen["id"], timeout=5)
            # Away: one filed in my grid, one in another grid that widens, one claimed.
            mine = await api.file_order(grid="g1", text="filed while away")
            elsewhere = await api.file_order(grid="g2", text="widens while away")
            gone = await api.file_order(grid="g1", text="claimed while away")
            async with ApiClient(c.url, c.agents["g1"][1]["token"]) as rival:
                assert (await rival.claim(gone["id"]))["result"] == "won"
            deadline = time.monotonic() + 5
            async with c.server.admin() as admin:
                while (await admin.get_order(elsewhere["id"]))["status"] != "widened":
                    assert time.monotonic() < deadline, "order did not widen"
                    await asyncio.sleep(0.1)
            async with AgentClient.connect(c.url, me["token"]) as again:
                for order in (seen, mine, elsewhere):
                    await again.wait_offer(order["id"], timeout=5)
                assert again.offers[elsewhere["id"]]["scope"] == "all"
                assert gone["id"] not in again.offers
