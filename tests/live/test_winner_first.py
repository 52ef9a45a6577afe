"""The winner hears ``won`` before the losers hear ``taken`` (issue 16).

A claim that loses to a claim being recorded (the winner holds the order while Postgres
commits) used to hear ``taken`` at once, before the winner heard ``won``: under contention
the winner's answer came last.  Now CLAIM tells such a loser ``held`` (remembered as
``taken``) and the process answers it once it hears the order's outcome, at most
``HELD_WAIT_S`` later.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from clients import AgentClient
from dispatcher.flows.claims import HELD_WAIT_S
from dispatcher.settings import Settings
from tests.servers import InProcessServer
from tests.steps import file, team

LOSERS = 4


async def test_losers_hear_taken_only_after_the_winner_is_recorded(
    server: InProcessServer,
) -> None:
    t = await team(server.url, server.settings.admin_token or "", {"g1": LOSERS + 1})
    order = await file(t)
    direct = await asyncpg.connect(server.settings.database_url)
    agents = [AgentClient.connect(server.url, t.agent("g1", i)["token"]) for i in range(5)]
    try:
        winner, *losers = [await a.__aenter__() for a in agents]
        tx = direct.transaction()
        await tx.start()
        await direct.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", order["id"])
        won_rid = await winner.send_claim(order["id"])
        await asyncio.sleep(0.1)  # the winner holds the order, its commit waits on the lock
        arrived: dict[int, float] = {}

        async def lose(i: int) -> str:
            answer = await losers[i].claim(order["id"], timeout=10)
            arrived[i] = time.monotonic()
            return answer.result

        losing = [asyncio.create_task(lose(i)) for i in range(LOSERS)]
        await asyncio.sleep(HELD_WAIT_S * 0.6)
        assert not arrived, "a loser heard its answer while the winner was not yet recorded"
        released = time.monotonic()
        await tx.commit()
        assert (await winner.wait_claim(won_rid)).result == "won"
        assert await asyncio.gather(*losing) == ["taken"] * LOSERS
        assert min(arrived.values()) >= released
        # A later claim is answered at once: the order is heard closed.
        again = time.monotonic()
        assert (await losers[0].claim(order["id"], timeout=10)).result == "taken"
        assert time.monotonic() - again < HELD_WAIT_S
    finally:
        for a in agents:
            await a.__aexit__(None, None, None)
        await direct.close()


async def test_a_loser_on_another_process_hears_taken_after_the_winner_is_recorded(
    settings: Settings,
) -> None:
    """The winner holds the order on one process; a loser on another is told ``taken`` once
    that process hears the win (the change event), not while the winner's commit waits."""
    async with InProcessServer(settings) as here, InProcessServer(settings) as there:
        t = await team(here.url, settings.admin_token or "", {"g1": 2})
        order = await file(t)
        direct = await asyncpg.connect(settings.database_url)
        try:
            async with (
                AgentClient.connect(here.url, t.agent("g1", 0)["token"]) as winner,
                AgentClient.connect(there.url, t.agent("g1", 1)["token"]) as loser,
            ):
                tx = direct.transaction()
                await tx.start()
                await direct.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", order["id"])
                won_rid = await winner.send_claim(order["id"])
                await asyncio.sleep(0.1)  # held on `here`, its commit waiting on the lock
                lost_rid = await loser.send_claim(order["id"])
                with pytest.raises(TimeoutError):
                    await loser.wait_claim(lost_rid, timeout=HELD_WAIT_S * 0.6)
                await tx.commit()
                assert (await winner.wait_claim(won_rid)).result == "won"
                assert (await loser.wait_claim(lost_rid)).result == "taken"
        finally:
            await direct.close()
