"""Claims: exactly one winner under contention, in Redis and in Postgres; repeats; faults."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import asyncpg
import redis.asyncio as aioredis

from clients import AgentClient, ApiClient
from dispatcher.board import scripts as rs
from dispatcher.settings import Settings
from dispatcher.store.store import Store
from tests.proxy import Proxy
from tests.steps import CrewFactory


async def test_race_200_agents_50_orders(crew: CrewFactory) -> None:
    """200 agents claim each of 50 orders at once: one `won`, 199 `taken`; stores agree."""
    async with crew({"g1": 200}) as t:
        agents = t.agents["g1"]
        clients = await asyncio.gather(*(AgentClient.connect(t.url, a["token"]) for a in agents))
        winners: dict[int, int] = {}
        try:
            async with ApiClient(t.url, t.intake) as api:
                for _ in range(50):
                    order = await api.file_order(grid="g1", text="我要办理残疾人证")
                    results = await asyncio.gather(*(c.claim(order["id"]) for c in clients))
                    count = Counter(r.result for r in results)
                    assert count == {"won": 1, "taken": 199}, count
                    (winner,) = [
                        c.agent_id
                        for c, r in zip(clients, results, strict=True)
                        if r.result == "won"
                    ]
                    winners[order["id"]] = winner
        finally:
            await asyncio.gather(*(c.close() for c in clients))
        conn = await asyncpg.connect(t.server.settings.database_url)
        rows = await conn.fetch("SELECT id, status, claimed_by FROM orders")
        events = await conn.fetch(
            "SELECT order_id, count(*) AS n FROM order_events WHERE kind = 'claimed'"
            " GROUP BY order_id"
        )
        await conn.close()
        assert {r["id"]: r["claimed_by"] for r in rows} == winners
        assert all(r["status"] == "claimed" for r in rows)
        assert {e["order_id"]: e["n"] for e in events} == dict.fromkeys(winners, 1)
        r = aioredis.Redis.from_url(t.server.settings.redis_url)
        for order_id, winner in winners.items():
            assert (
                await r.hget(t.server.ctx.board.keys.order(order_id), "claimed_by")
                == str(winner).encode()
            )
        await r.aclose()


async def test_postgres_alone_never_records_two_winners(crew: CrewFactory) -> None:
    """Even with Redis out of the way, the conditional update admits exactly one winner."""
    async with crew({"g1": 30}) as c:
        agents = c.agents["g1"]
        async with ApiClient(c.url, c.intake) as api:
            order = await api.file_order(grid="g1", text="x")
        store = await Store.connect(c.server.settings.database_url or "", max_size=30)
        try:
            got = await asyncio.gather(
                *(store.claim_order(order["id"], a["id"], 1) for a in agents)
            )
        finally:
            await store.close()
        assert sum(g is not None for g in got) == 1


async def test_repeated_request_gets_the_same_answer(crew: CrewFactory) -> None:
    async with crew({"g1": 2}) as c:
        a, b = c.agents["g1"]
        async with (
            ApiClient(c.url, c.intake) as api,
            AgentClient.connect(c.url, a["token"]) as ca,
            ApiClient(c.url, b["token"]) as hb,
        ):
            order = await api.file_order(grid="g1", text="x")
            assert (await ca.claim(order["id"], "req-1")).result == "won"
            assert (await ca.claim(order["id"], "req-1")).result == "won"
            first = await hb.claim(order["id"], "req-9")
            again = await hb.claim(order["id"], "req-9")
            assert (
                first
                == again
                == {
                    "type": "claim_result",
                    "request_id": "req-9",
                    "order_id": order["id"],
                    "result": "taken",
                }
            )


async def test_claim_survives_redis_losing_its_data(crew: CrewFactory) -> None:
    """Redis flushed after filing: the claim falls back to Postgres and still has one winner."""
    async with crew({"g1": 2}) as c:
        a, b = c.agents["g1"]
        async with ApiClient(c.url, c.intake) as api:
            order = await api.file_order(grid="g1", text="x")
        r = aioredis.Redis.from_url(c.server.settings.redis_url)
        await r.flushdb()
        async with ApiClient(c.url, a["token"]) as ha, ApiClient(c.url, b["token"]) as hb:
            assert (await ha.claim(order["id"]))["result"] == "won"
            await r.flushdb()
            assert (await hb.claim(order["id"]))["result"] == "taken"
            assert (await ha.claim(order["id"]))["result"] == "won"
        await r.aclose()


async def test_reconciler_restores_what_redis_lost(crew: CrewFactory) -> None:
    """Open orders and the widening schedule come back from Postgres within a reconcile."""
    async with crew({"g1": 1}) as c:
        async with ApiClient(c.url, c.intake) as api:
            order = await api.file_order(grid="g1", text="x")
        r = aioredis.Redis.from_url(c.server.settings.redis_url)
        await r.flushdb()
        for _ in range(60):
            if await r.exists(c.server.ctx.board.keys.order(order["id"])):
                break
            await asyncio.sleep(0.1)
        assert await r.hget(c.server.ctx.board.keys.order(order["id"]), "status") == b"offered"
        assert (
            await r.zscore(c.server.ctx.board.keys.of(rs.DUE), rs.due_member(rs.WIDEN, order["id"]))
            == order["widen_at"]
        )
        await r.aclose()


async def test_postgres_down_during_claim(settings: Settings, crew: CrewFactory) -> None:
    """Postgres unreachable: `unavailable`, nothing recorded, nobody blocked; back: one winner."""
    proxy = Proxy(settings.database_url or "")
    await proxy.start()
    try:
        async with crew({"g1": 2}, database_url=proxy.url) as c:
            a, b = c.agents["g1"]
            async with (
                ApiClient(c.url, c.intake) as api,
                AgentClient.connect(c.url, a["token"]) as ca,
                AgentClient.connect(c.url, b["token"]) as cb,
            ):
                order = await api.file_order(grid="g1", text="x")
                await proxy.cut()
                assert (await ca.claim(order["id"], "a1")).result == "unavailable"
                # The hold was dropped: b is not told `taken` for an order nobody has.
                assert (await cb.claim(order["id"], "b1")).result == "unavailable"
                conn = await asyncpg.connect(settings.database_url)
                row = await conn.fetchrow("SELECT status, claimed_by, version FROM orders")
                assert tuple(row or ()) == ("offered", None, 1)
                proxy.restore()
                assert (await cb.claim(order["id"], "b2")).result == "won"
                assert (await ca.claim(order["id"], "a2")).result == "taken"
                row = await conn.fetchrow("SELECT status, claimed_by FROM orders")
                await conn.close()
                assert tuple(row or ()) == ("claimed", b["id"])
    finally:
        await proxy.stop()


async def test_unknown_and_not_offered(crew: CrewFactory) -> None:
    async with crew({"g1": 1, "g2": 1}) as c:
        async with (
            ApiClient(c.url, c.intake) as api,
            AgentClient.connect(c.url, c.agents["g2"][0]["token"]) as other,
        ):
            order = await api.file_order(grid="g1", text="x")
            assert (await other.claim(order["id"])).result == "not_offered"
            assert (await other.claim(987654, uuid.uuid4().hex)).result == "unknown_order"
