"""Snapshots that scale: an agent with thousands of open orders connects and gets every one
of them (own grid first, newest first) and then ``snapshot_done``, instead of being closed
with 1013 because the snapshot overflowed the live send queue."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import asyncpg

from clients import AgentClient, ApiClient
from dispatcher.flows import filing
from dispatcher.live import wire
from dispatcher.settings import Settings
from tests.steps import CrewFactory

OPEN = 3000
FOREIGN = 50  # widened orders of another grid, after the agent's own


async def test_an_agent_with_3000_open_orders_gets_them_all(
    settings: Settings, crew: CrewFactory
) -> None:
    settings = dataclasses.replace(settings, reconcile_interval=60, send_queue=1024)
    async with crew({"g1": 1, "g2": 1}, reconcile_interval=60, send_queue=1024) as tm:
        # Filed by the filing flow in this process, as POST /v1/orders files them (the
        # endpoint has tests of its own): this test is about the snapshot, and 3050 HTTP round
        # trips were nine tenths of its time.  The 3000 own orders stay: about three times the
        # send queue (1024), so that the snapshot arrives whole only if it is paced.
        filer = await tm.server.ctx.auth.resolve(tm.intake)
        for grid, count in (("g2", FOREIGN), ("g1", OPEN)):
            for start in range(0, count, 100):
                bodies = [
                    {"grid": grid, "text": f"第{i}件"}
                    for i in range(start, min(start + 100, count))
                ]
                filed = await asyncio.gather(
                    *(
                        filing.file_order(tm.server.ctx, filing.parse_order_request(b), filer)
                        for b in bodies
                    )
                )
                assert all(isinstance(f, filing.Filed) for f in filed)
        # The foreign ones widened to every grid (as if BANGBAN_WIDEN_AFTER had passed).
        async with ApiClient(tm.url, settings.admin_token or "") as admin:
            listed = await admin.request("GET", "/v1/admin/orders?limit=500")
        foreign = [o["id"] for o in listed.json()["orders"] if o["grid"] == "g2"]
        assert len(foreign) == FOREIGN
        conn = await asyncpg.connect(settings.database_url)
        await conn.execute(
            "UPDATE orders SET status = 'widened', scope = 'all' WHERE id = ANY($1::bigint[])",
            foreign,
        )
        await conn.close()

        started = time.monotonic()
        agent = await AgentClient.connect(tm.url, tm.agent("g1")["token"])
        try:
            ids: list[int] = []
            while True:
                frame = await agent.recv(timeout=60)
                if isinstance(frame, wire.Offer):
                    ids.append(frame.order["id"])
                elif isinstance(frame, wire.SnapshotDone):
                    break
            took = time.monotonic() - started
            assert frame.offers == OPEN + FOREIGN == len(ids) == len(set(ids))
            own = ids[:OPEN]
            assert sorted(own, reverse=True) == own  # newest first
            assert set(ids[OPEN:]) == set(foreign)  # then the widened ones from elsewhere
            assert not agent.closed
            # Live frames follow: a new order is offered after the snapshot.
            async with ApiClient(tm.url, tm.intake) as api:
                fresh = await api.file_order(grid="g1", text="新的一件")
            assert (await agent.wait_offer(fresh["id"], timeout=10))["id"] == fresh["id"]
        finally:
            await agent.close()
    print(f"snapshot of {OPEN + FOREIGN} offers received in {took:.2f}s")
