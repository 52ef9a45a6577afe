"""Graceful drain (issue 11): on SIGTERM a process stops taking connections, finishes the
claims in flight (their answers are written), then closes every socket with 1012."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from clients import AgentClient, TrackingClient
from clients.framesocket import ConnectionRejectedError
from dispatcher.live.drain import drain
from tests.servers import InProcessServer
from tests.steps import file, team


async def test_drain_finishes_claims_in_flight_then_closes_with_1012(
    server: InProcessServer,
) -> None:
    t = await team(server.url, server.settings.admin_token or "", {"g1": 2})
    order = await file(t)
    direct = await asyncpg.connect(server.settings.database_url)
    try:
        async with (
            AgentClient.connect(server.url, t.agent()["token"]) as agent,
            TrackingClient.connect(server.url, order["id"], order["tracking_token"]) as tracker,
        ):
            tx = direct.transaction()
            await tx.start()
            await direct.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", order["id"])
            rid = await agent.send_claim(order["id"])
            await asyncio.sleep(0.2)  # the claim waits on the row lock: in flight
            draining = asyncio.create_task(drain(server.ctx, timeout=10))
            await asyncio.sleep(0.2)
            async with httpx.AsyncClient() as http:
                health = await http.get(server.url + "/v1/healthz")
            assert health.status_code == 503 and health.json()["checks"]["process"] == "draining"
            with pytest.raises(ConnectionRejectedError) as refused:
                await AgentClient.connect(server.url, t.agent("g1", 1)["token"])
            assert refused.value.code == 1012
            assert not agent.closed  # not before its claim is answered
            await tx.commit()
            assert (await agent.wait_claim(rid, timeout=10)).result == "won"
            assert await agent.wait_closed(timeout=10) == 1012
            assert await tracker.wait_closed(timeout=10) == 1012
            assert await draining
    finally:
        await direct.close()
