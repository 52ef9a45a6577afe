"""Pub/sub that cannot go deaf silently, and the start-up checks of Redis (issue 11).

A subscription can stop delivering without any error (Centrifugo #1189): here the listener's
connection is blackholed by a proxy (nothing closed, nothing delivered).  Every process
publishes a heartbeat on the channel each second; a listener that hears nothing for 3 s while
its heartbeats are published resubscribes and resends its agents their snapshot.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator

import pytest

from clients import AgentClient
from dispatcher.board.board import Board
from dispatcher.board.checks import redis_warnings
from dispatcher.embedded import EmbeddedRedis
from dispatcher.exceptions import ConfigError
from dispatcher.runtime import check_redis
from dispatcher.settings import Settings
from tests.proxy import Proxy
from tests.servers import InProcessServer
from tests.steps import file, team


@pytest.fixture
async def proxied(settings: Settings) -> AsyncIterator[tuple[Proxy, Settings]]:
    assert settings.redis_url
    proxy = Proxy(settings.redis_url)
    await proxy.start()
    try:
        yield proxy, dataclasses.replace(settings, redis_url=proxy.url)
    finally:
        await proxy.stop()


async def test_a_deaf_subscription_is_noticed_and_the_agents_resynced(
    proxied: tuple[Proxy, Settings],
) -> None:
    proxy, through = proxied
    async with InProcessServer(through) as srv:
        t = await team(srv.url, through.admin_token or "", {"g1": 1})
        async with AgentClient.connect(srv.url, t.agent()["token"]) as agent:
            heard = await file(t)
            await agent.wait_offer(heard["id"], timeout=5)
            assert proxy.blackhole_subscribers() == 1
            missed = await file(t)  # published; the listener hears nothing
            offer = await agent.wait_offer(missed["id"], timeout=10)  # from the resync
            assert offer["id"] == missed["id"]
            assert srv.ctx.hub.deaf == 1 and srv.ctx.hub.reconnects == 1
            live = await file(t)  # and live again on the new subscription
            await agent.wait_offer(live["id"], timeout=5)


def test_unsafe_redis_configurations_are_named() -> None:
    safe = {"appendonly": "yes", "save": "", "maxmemory-policy": "noeviction"}
    assert redis_warnings(safe) == []
    assert redis_warnings({**safe, "appendonly": "no", "save": "3600 1"}) == []
    (no_persistence,) = redis_warnings({**safe, "appendonly": "no"})
    assert "no persistence" in no_persistence
    (evicts,) = redis_warnings({**safe, "maxmemory-policy": "allkeys-lru"})
    assert "allkeys-lru" in evicts and "noeviction" in evicts
    assert "CONFIG is disabled" in redis_warnings(None)[0]


async def test_strict_refuses_a_redis_without_persistence(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The suite's Redis runs without persistence: warned about, refused when strict."""
    caplog.set_level(logging.WARNING)
    async with InProcessServer(settings):
        pass
    assert any("UNSAFE REDIS" in r.message and "persistence" in r.message for r in caplog.records)
    # Strict: the same check raises, and the lifespan (which calls it before anything
    # starts) fails: uvicorn exits with "Application startup failed".
    board = Board.from_url(settings.redis_url or "", hold_ms=1000, closed_ttl_ms=1000)
    try:
        with pytest.raises(ConfigError, match=r"BANGBAN_STRICT: Redis has no persistence"):
            await check_redis(board, strict=True)
    finally:
        await board.close()


async def test_strict_starts_on_a_redis_that_persists(settings: Settings) -> None:
    redis = EmbeddedRedis(settings.data_dir / "strict-redis", persist=True)
    url = redis.start()
    try:
        async with InProcessServer(dataclasses.replace(settings, redis_url=url, strict=True)):
            pass
    finally:
        redis.stop()


def test_strict_is_a_setting() -> None:
    assert Settings.from_env({"BANGBAN_STRICT": "true"}).strict is True
    assert Settings.from_env({}).strict is False
    with pytest.raises(ConfigError):
        Settings.from_env({"BANGBAN_STRICT": "maybe"})
