"""Two deployments on one Redis never hear each other (issue 11, defect 5).

Redis pub/sub ignores the database number, so two deployments on databases 3 and 4 of one
Redis shared the channel ``bb:events`` and heard each other's order events, whose ids collide.
Every key and channel now carries the deployment's namespace (``BANGBAN_NAMESPACE``, derived
from the Postgres database name and the Redis database number when unset).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.cluster import key_slot

from clients import AgentClient, TrackingClient
from dispatcher.board import scripts as rs
from dispatcher.live import wire
from dispatcher.settings import Settings, default_namespace
from dispatcher.store.store import Store
from tests.servers import InProcessServer
from tests.steps import Team, file, team


def _redis_db(url: str, db: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


@pytest.fixture
async def second_database(settings: Settings) -> AsyncIterator[str]:
    """Another Postgres database on the same server, migrated: deployment B's."""
    assert settings.database_url
    parts = urlsplit(settings.database_url)
    name = parts.path.strip("/") + "_b"
    admin = await asyncpg.connect(settings.database_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(parts._replace(path="/" + name))
    store = await Store.connect(url)
    await store.migrate()
    await store.close()
    try:
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _flush(url: str) -> None:
    r = aioredis.Redis.from_url(url)
    await r.flushdb()
    await r.aclose()


async def _silent(agent: AgentClient, seconds: float) -> list[wire.ServerFrame]:
    """Every frame ``agent`` gets within ``seconds``."""
    got: list[wire.ServerFrame] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            got.append(await agent.recv(timeout=left))
        except TimeoutError:
            break
    return got


def test_the_default_namespace_differs_per_database() -> None:
    pg = "postgresql://u@db.example:5432/county_a"
    assert default_namespace("redis://h:6379/3", pg) == "county_a.3"
    assert default_namespace("redis://h:6379/4", pg) == "county_a.4"
    assert default_namespace("redis://h:6379", pg) == "county_a.0"
    assert default_namespace("redis://other-name:6379/3", pg.replace("db.example", "10.0.0.5")) == (
        "county_a.3"  # every process of one deployment derives the same, however it names hosts
    )
    assert default_namespace("redis://h/0", "postgresql:///x?host=/tmp&dbname=y") == "x.0"
    assert default_namespace("redis://h/0", "postgresql://u@h/{bad}") == "_bad_.0"


def test_namespaced_keys_keep_their_hash_tag_slots() -> None:
    keys = rs.Keys("county_a.3")
    assert keys.order(7) == "bb:county_a.3:{o:7}"
    assert keys.events == "bb:county_a.3:events"
    assert keys.of(rs.DUE) == "bb:county_a.3:due"
    assert key_slot(keys.order(7).encode()) == key_slot(b"{o:7}")
    assert key_slot(keys.order(7).encode()) == key_slot(rs.order_key(7).encode())
    assert key_slot(keys.held(9).encode()) == key_slot(b"{a:9}")
    assert rs.Keys("").order(7) == rs.order_key(7)  # the unprefixed layout
    with pytest.raises(ValueError):
        rs.Keys("a{b}")


def test_a_bad_namespace_is_refused() -> None:
    from dispatcher.exceptions import ConfigError

    with pytest.raises(ConfigError):
        Settings.from_env({"BANGBAN_NAMESPACE": "a b"})
    assert Settings.from_env({"BANGBAN_NAMESPACE": "county-a"}).key_namespace == "county-a"


async def test_two_deployments_on_one_redis_do_not_hear_each_other(
    settings: Settings, second_database: str
) -> None:
    """A on database 3, B on database 4 of one Redis, each with its own Postgres database:
    the same grid code, colliding order ids, and neither's agents nor trackers hear the other."""
    assert settings.redis_url
    url_a, url_b = _redis_db(settings.redis_url, 3), _redis_db(settings.redis_url, 4)
    await _flush(url_a)
    await _flush(url_b)
    a_settings = dataclasses.replace(settings, redis_url=url_a)
    b_settings = dataclasses.replace(settings, redis_url=url_b, database_url=second_database)
    async with InProcessServer(a_settings) as a, InProcessServer(b_settings) as b:
        assert a.ctx.board.keys.events != b.ctx.board.keys.events
        ta: Team = await team(a.url, settings.admin_token or "", {"g1": 1})
        tb: Team = await team(b.url, settings.admin_token or "", {"g1": 1})
        async with (
            AgentClient.connect(a.url, ta.agent()["token"]) as agent_a,
            AgentClient.connect(b.url, tb.agent()["token"]) as agent_b,
        ):
            order_b = await file(tb, text="B's order")
            offer = await agent_b.wait_offer(order_b["id"], timeout=5)
            assert offer["text"] == "B's order"
            async with TrackingClient.connect(
                b.url, order_b["id"], order_b["tracking_token"]
            ) as tracker_b:
                order_a = await file(ta, text="A's order")
                assert order_a["id"] == order_b["id"]  # the ids collide, as in the field
                await agent_a.wait_offer(order_a["id"], timeout=5)
                assert (await agent_a.claim(order_a["id"])).result == "won"
                # B's agent hears nothing of A: no offer of A's order, no withdrawal of its own.
                heard = await _silent(agent_b, 1.0)
                foreign = [
                    f
                    for f in heard
                    if isinstance(f, wire.Withdrawn)
                    or (isinstance(f, (wire.Offer, wire.Update)) and f.order["text"] != "B's order")
                ]
                assert not foreign, foreign
                # B's tracker still sees its own order open, never A's claim.
                await asyncio.sleep(0.2)
                assert [o["status"] for o in tracker_b.history] == ["offered"]
                assert tracker_b.order["text"] == "B's order"
            assert (await agent_b.claim(order_b["id"])).result == "won"  # still B's to win
