"""BANGBAN_MAX_HELD: an agent holds at most so many open orders; the limit holds under
concurrent claims, comes back as orders leave the agent, and is repaired from Postgres."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import asyncpg
import redis.asyncio as aioredis

from clients import AgentClient, ApiClient
from dispatcher.live import wire
from dispatcher.settings import Settings
from tests.servers import InProcessServer
from tests.steps import MATERIALS, claimed, error, file, ok, post, team


async def _held(agent: AgentClient, count: int) -> wire.Held:
    """The first ``held`` frame saying ``count`` (frames before it are dropped)."""
    while True:
        frame = await agent.recv(timeout=5)
        if isinstance(frame, wire.Held) and frame.held == count:
            return frame


async def test_a_further_claim_gets_limit_reached_until_one_is_handed_on(
    settings: Settings,
) -> None:
    async with InProcessServer(dataclasses.replace(settings, max_held=2)) as srv:
        t = await team(srv.url, settings.admin_token or "")
        a, b = t.agent("g1", 0), t.agent("g1", 1)
        async with (
            AgentClient.connect(srv.url, a["token"]) as busy,
            AgentClient.connect(srv.url, b["token"]) as free,
        ):
            assert (await _held(busy, 0)).limit == 2
            first, second, third = [await file(t) for _ in range(3)]
            assert (await busy.claim(first["id"])).result == "won"
            assert (await busy.claim(second["id"])).result == "won"
            await _held(busy, 2)
            assert (await busy.claim(third["id"])).result == "limit_reached"
            async with ApiClient(srv.url, a["token"]) as api:
                assert (await api.claim(third["id"]))["result"] == "limit_reached"
                # Still its own: a repeat for an order it holds is `won`, not refused.
                assert (await api.claim(first["id"]))["result"] == "won"
            fourth = await file(t)
            greyed = await busy.wait_offer(fourth["id"], timeout=5)
            assert greyed["id"] == fourth["id"]
            frame = await busy.recv(timeout=5)
            while not (isinstance(frame, wire.Offer) and frame.order["id"] == fourth["id"]):
                frame = await busy.recv(timeout=5)
            assert frame.at_limit is True
            frame = await free.recv(timeout=5)
            while not (isinstance(frame, wire.Offer) and frame.order["id"] == fourth["id"]):
                frame = await free.recv(timeout=5)
            assert frame.at_limit is False
            # The reply hands one on: the agent may claim again (the same request id too).
            await ok(srv.url, a["token"], first["id"], "accept", received=MATERIALS)
            await ok(srv.url, a["token"], first["id"], "reply", result="已办结")
            await _held(busy, 1)
            async with ApiClient(srv.url, a["token"]) as api:
                assert (await api.claim(third["id"]))["result"] == "won"


async def test_concurrent_claims_never_exceed_the_limit(settings: Settings) -> None:
    """One agent claims ten orders at once with a limit of three: three won, in both stores."""
    async with InProcessServer(dataclasses.replace(settings, max_held=3)) as srv:
        t = await team(srv.url, settings.admin_token or "")
        agent = t.agent()
        orders = [await file(t) for _ in range(10)]
        async with ApiClient(srv.url, agent["token"]) as api:
            answers = await asyncio.gather(*(api.claim(o["id"]) for o in orders))
        assert Counter(a["result"] for a in answers) == {"won": 3, "limit_reached": 7}
        conn = await asyncpg.connect(settings.database_url)
        held = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE claimed_by = $1 AND status = 'claimed'", agent["id"]
        )
        await conn.close()
        assert held == 3
        assert await srv.ctx.board.held_count(agent["id"]) == 3


async def test_release_cancel_and_reassign_hand_orders_on(settings: Settings) -> None:
    async with InProcessServer(dataclasses.replace(settings, max_held=1)) as srv:
        t = await team(srv.url, settings.admin_token or "")
        a, b = t.agent("g1", 0), t.agent("g1", 1)
        one = await claimed(t, a)
        two = await file(t)
        async with ApiClient(srv.url, a["token"]) as api:
            assert (await api.claim(two["id"]))["result"] == "limit_reached"
            await ok(srv.url, a["token"], one["id"], "release")
            assert (await api.claim(two["id"]))["result"] == "won"
            await ok(srv.url, t.admin_token, two["id"], "cancel", reason="重复申请")
            three = await file(t)
            assert (await api.claim(three["id"]))["result"] == "won"
        # b holds one already: an operator cannot give it another.
        four = await claimed(t, b)
        r = await post(srv.url, t.admin_token, three["id"], "reassign", agent_id=b["id"])
        assert error(r) == (409, "limit_reached")
        await ok(srv.url, b["token"], four["id"], "release")
        await ok(srv.url, t.admin_token, three["id"], "reassign", agent_id=b["id"])
        assert await srv.ctx.board.held_count(a["id"]) == 0
        assert await srv.ctx.board.held_count(b["id"]) == 1


async def test_the_reconciler_repairs_held_counts_from_postgres(settings: Settings) -> None:
    settings = dataclasses.replace(settings, max_held=2, reconcile_interval=0.3)
    async with InProcessServer(settings) as srv:
        t = await team(srv.url, settings.admin_token or "")
        agent = t.agent()
        order = await claimed(t, agent)
        r = aioredis.Redis.from_url(settings.redis_url)
        key = srv.ctx.board.keys.held(agent["id"])
        await r.delete(key)  # a holding lost
        await r.hset(key, "424242", "h:1")  # a holding Postgres never had
        for _ in range(40):
            if await r.hkeys(key) == [str(order["id"]).encode()]:
                break
            await asyncio.sleep(0.1)
        assert await r.hkeys(key) == [str(order["id"]).encode()]
        await r.aclose()
