"""Per-connection concurrency (issue 11, defect 4).

An agent's frames were handled one at a time: one claim stuck (here: on a row lock, as on a
cut) delayed that agent's next claims by the whole timeout.  Now claims of different orders
run concurrently, claims of one order in the order they were sent.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from clients import AgentClient
from dispatcher.live.lanes import Lanes
from tests.servers import InProcessServer
from tests.steps import file, team


async def test_a_stuck_claim_does_not_delay_a_claim_of_another_order(
    server: InProcessServer,
) -> None:
    t = await team(server.url, server.settings.admin_token or "", {"g1": 1})
    stuck, free = await file(t), await file(t)
    direct = await asyncpg.connect(server.settings.database_url)
    try:
        async with AgentClient.connect(server.url, t.agent()["token"]) as agent:
            tx = direct.transaction()
            await tx.start()
            await direct.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", stuck["id"])
            done: dict[str, float] = {}

            async def claim(name: str, order_id: int) -> str:
                rid = await agent.send_claim(order_id, request_id=name)
                result = (await agent.wait_claim(rid, timeout=20)).result
                done[name] = time.monotonic()
                return result

            first = asyncio.create_task(claim("stuck-1", stuck["id"]))
            await asyncio.sleep(0.05)
            second = asyncio.create_task(claim("stuck-2", stuck["id"]))  # same order: after
            await asyncio.sleep(0.05)
            assert await claim("free", free["id"]) == "won"  # while the first is stuck
            assert not first.done() and not second.done()
            await tx.commit()
            assert await first == "won"
            assert await second == "won"  # decided after the first: it holds the order now
            assert done["free"] < done["stuck-1"] <= done["stuck-2"]
    finally:
        await direct.close()


async def test_lanes_run_one_lane_in_order_and_lanes_side_by_side() -> None:
    lanes = Lanes(limit=8)
    log: list[str] = []
    gate = asyncio.Event()

    def work(name: str, wait: bool) -> object:
        async def run() -> None:
            if wait:
                await gate.wait()
            log.append(name)

        return run

    await lanes.submit(1, work("1a", True))  # type: ignore[arg-type]
    await lanes.submit(1, work("1b", False))  # type: ignore[arg-type]
    await lanes.submit(2, work("2a", False))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert log == ["2a"]
    gate.set()
    await lanes.drain()
    assert log == ["2a", "1a", "1b"] and len(lanes) == 0


async def test_lanes_hold_the_reader_back_past_the_limit() -> None:
    lanes = Lanes(limit=2)
    gate = asyncio.Event()

    async def blocked() -> None:
        await gate.wait()

    await lanes.submit(1, blocked)
    await lanes.submit(2, blocked)
    third = asyncio.create_task(lanes.submit(3, blocked))
    await asyncio.sleep(0.05)
    assert not third.done()  # waits for room
    gate.set()
    await third
    await lanes.drain()
