"""Health: really exercises Redis (our scripts) and Postgres, and says which one is down."""

from __future__ import annotations

import dataclasses

import httpx

from dispatcher.embedded import EmbeddedRedis
from dispatcher.settings import Settings
from tests.proxy import Proxy
from tests.servers import InProcessServer


async def _health(url: str) -> tuple[int, dict[str, str]]:
    async with httpx.AsyncClient() as http:
        r = await http.get(url + "/v1/healthz", timeout=15)
    return r.status_code, r.json()["checks"]


async def test_healthy_needs_no_token(server: InProcessServer) -> None:
    assert await _health(server.url) == (200, {"redis": "ok", "postgres": "ok", "pubsub": "ok"})


async def test_redis_down_is_named(settings: Settings) -> None:
    redis = EmbeddedRedis(settings.data_dir / "health-redis", persist=False)
    url = redis.start()
    try:
        async with InProcessServer(dataclasses.replace(settings, redis_url=url)) as srv:
            redis.stop()
            status, checks = await _health(srv.url)
            assert status == 503
            assert checks["redis"].startswith("down") and checks["postgres"] == "ok"
    finally:
        redis.stop()


async def test_postgres_down_is_named(settings: Settings) -> None:
    proxy = Proxy(settings.database_url or "")
    await proxy.start()
    try:
        async with InProcessServer(dataclasses.replace(settings, database_url=proxy.url)) as srv:
            await proxy.cut()
            status, checks = await _health(srv.url)
            assert status == 503
            assert checks["postgres"].startswith("down") and checks["redis"] == "ok"
            proxy.restore()
            assert (await _health(srv.url))[0] == 200
    finally:
        await proxy.stop()
