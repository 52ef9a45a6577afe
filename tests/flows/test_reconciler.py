"""The reconciler: periodic passes read only what was written since the watermark, in pages;
late commits are not skipped; a process's first pass and a pass after Redis lost data repair
in full.

Each test runs a server whose own reconciler waits an hour, and runs passes itself.  Nothing
depends on time: the watermark is a Postgres transaction id.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from clients import ApiClient
from dispatcher.board import scripts as rs
from dispatcher.context import Context
from dispatcher.flows import reconciler
from dispatcher.flows.reconciler import CHUNK, Mark, Reconciled
from dispatcher.settings import Settings
from tests.servers import InProcessServer
from tests.steps import Team, claimed, file, ok, team


async def reconcile_now(ctx: Context, chunk: int = CHUNK) -> Reconciled:
    """One pass, now (the lock only paces processes: it would make this one wait an hour)."""
    await ctx.board.redis.delete(ctx.board.keys.of(rs.RECONCILE_LOCK))
    result = await reconciler.reconcile(ctx, chunk=chunk)
    assert result is not None
    return result


K = rs.Keys()
"""The test's key names (its settings' namespace; set by ``quiet``)."""


@pytest.fixture
def quiet(settings: Settings) -> Settings:
    # No background writer either: the SMS sender's first round runs at start-up, then sleeps
    # (a transaction of its own in flight would move orders to the next pass, rightly).
    global K
    K = rs.Keys(settings.key_namespace)
    return dataclasses.replace(settings, reconcile_interval=3600, sms_interval=60)


@pytest.fixture
async def srv(quiet: Settings) -> AsyncIterator[InProcessServer]:
    async with InProcessServer(quiet) as server:
        yield server


@pytest.fixture
async def t(srv: InProcessServer) -> Team:
    return await team(srv.url, srv.settings.admin_token or "")


@pytest.fixture
async def pg(quiet: Settings) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    conn = await asyncpg.connect(quiet.database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def r(quiet: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(quiet.redis_url or "")
    yield client
    await client.aclose()


async def bump(pg: asyncpg.Connection[asyncpg.Record], *ids: int) -> None:
    """Change orders in Postgres behind Redis's back (an announce that never happened)."""
    await pg.execute("UPDATE orders SET version = version + 1 WHERE id = ANY($1)", list(ids))


async def redis_version(r: aioredis.Redis, order_id: int) -> int | None:
    v = await r.hget(K.order(order_id), "version")
    return None if v is None else int(v)


async def claim(t: Team, order_id: int) -> None:
    """The first agent of g1 grabs ``order_id`` (committed and announced on return)."""
    async with ApiClient(t.url, t.agent()["token"]) as api:
        assert (await api.claim(order_id))["result"] == "won"


def reconciled_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(x.levelno, x.getMessage()) for x in caplog.records if "reconciled" in x.msg]


def metric(ctx: Context, name: str) -> float:
    for line in ctx.metrics.render().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


async def test_the_start_up_pass_is_full_and_the_next_are_periodic(srv: InProcessServer) -> None:
    assert not srv.ctx.full_reconcile_due
    assert Mark.decode(await srv.ctx.board.reconcile_mark()) is not None
    result = await reconcile_now(srv.ctx)
    assert not result.full and not result.lost and result.saved


async def test_a_periodic_pass_reads_only_orders_written_since_the_last(
    srv: InProcessServer, t: Team, pg: asyncpg.Connection[asyncpg.Record], r: aioredis.Redis
) -> None:
    orders = [(await file(t))["id"] for _ in range(6)]
    first = await reconcile_now(srv.ctx)
    assert (first.rows, first.audited, first.repaired) == (6, 6, 0)  # filed since start-up

    idle = await reconcile_now(srv.ctx)
    assert (idle.rows, idle.repaired) == (0, 0)

    for order_id in orders[:2]:
        await ok(t.url, t.admin_token, order_id, "cancel", reason="不需要了")
    cancelled = await reconcile_now(srv.ctx)
    assert (cancelled.rows, cancelled.repaired) == (2, 0)  # announced by the writer already

    await bump(pg, orders[3])
    behind = await reconcile_now(srv.ctx)
    assert (behind.rows, behind.behind, behind.unexplained) == (1, 1, 0)
    assert await redis_version(r, orders[3]) == 2

    passes = (first, idle, cancelled, behind)
    read = sum(p.rows + p.audited for p in passes)
    assert metric(srv.ctx, 'bangban_reconcile_rows_total{pass="periodic"}') == read


async def test_a_late_commit_with_an_older_timestamp_is_repaired(
    srv: InProcessServer,
    t: Team,
    pg: asyncpg.Connection[asyncpg.Record],
    r: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A transaction stamps ``updated_at`` when it begins and commits when it likes: a row
    can become visible after newer rows were seen, however long the transaction took."""
    caplog.set_level(logging.INFO, logger="bangban.reconciler")
    late, early = (await file(t))["id"], (await file(t))["id"]
    await reconcile_now(srv.ctx)

    tx = pg.transaction()
    await tx.start()
    await pg.execute(
        "UPDATE orders SET version = version + 1, updated_at = now() WHERE id = $1", late
    )
    await claim(t, early)  # commits (and announces) while `late` is still open
    held_back = [await reconcile_now(srv.ctx) for _ in range(2)]
    assert [p.rows for p in held_back] == [0, 0]  # the horizon waits for the open transaction
    await tx.commit()

    stamps = dict(
        await pg.fetch("SELECT id, updated_at FROM orders WHERE id IN ($1, $2)", late, early)
    )
    assert stamps[late] < stamps[early]  # committed last, stamped first
    assert await redis_version(r, late) == 1
    result = await reconcile_now(srv.ctx)
    assert (result.rows, result.behind, result.unexplained) == (2, 1, 0)
    assert await redis_version(r, late) == 2
    assert reconciled_logs(caplog)[-1][0] == logging.INFO  # the benign kind


async def test_redis_flushed_mid_run_is_repaired_in_full_by_the_next_pass(
    srv: InProcessServer, t: Team, r: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bangban.reconciler")
    agent = t.agent()
    taken = await claimed(t, agent)
    filed = [await file(t) for _ in range(3)]
    await reconcile_now(srv.ctx)

    await r.flushdb()
    result = await reconcile_now(srv.ctx)
    assert result.full and result.lost and result.saved
    assert (result.restored, result.unexplained, result.held) == (3, 3, 1)
    for order in filed:
        assert await r.hget(K.order(order["id"]), "status") == b"offered"
        due = rs.due_member(rs.WIDEN, order["id"])
        assert await r.zscore(K.of(rs.DUE), due) == order["widen_at"]
    assert await r.exists(K.order(taken["id"])) == 0  # closed: claims fall back to Postgres
    assert await srv.ctx.board.held_count(agent["id"]) == 1
    assert reconciled_logs(caplog)[-1][0] == logging.WARNING

    after = await reconcile_now(srv.ctx)
    assert not after.full and not after.lost and after.repaired == 0


async def test_a_full_pass_that_did_not_finish_leaves_the_next_full(
    srv: InProcessServer, t: Team, r: aioredis.Redis
) -> None:
    """A full pass stores an epoch with no horizon before it reads: if Redis loses data or
    the process dies during it, the pass after is full again, and stores its horizon under
    the same epoch (so that passes longer than the lock cannot keep voiding each other)."""
    order = await file(t)
    await r.set(K.of(rs.RECONCILE_MARK), Mark("died", None, 0).encode())
    await r.delete(K.order(order["id"]))
    result = await reconcile_now(srv.ctx)
    assert result.full and result.lost and result.restored == 1
    mark = Mark.decode(await srv.ctx.board.reconcile_mark())
    assert result.saved and mark is not None
    assert mark.epoch == "died" and mark.horizon is not None


async def test_the_mark_is_swapped_only_from_the_value_read(srv: InProcessServer) -> None:
    board = srv.ctx.board
    await board.redis.delete(K.of(rs.RECONCILE_MARK))
    assert await board.swap_reconcile_mark(None, "a::0")
    assert not await board.swap_reconcile_mark(None, "b::0")
    assert await board.swap_reconcile_mark("a::0", "a:7:0")
    await board.redis.flushdb()
    assert not await board.swap_reconcile_mark("a:7:0", "a:9:0")
    assert await board.reconcile_mark() is None


async def test_pages_smaller_than_the_work(
    srv: InProcessServer, t: Team, pg: asyncpg.Connection[asyncpg.Record], r: aioredis.Redis
) -> None:
    ids = [(await file(t))["id"] for _ in range(10)]
    await r.flushdb()
    full = await reconcile_now(srv.ctx, chunk=3)
    assert full.restored == 10
    assert full.rows == 20  # each open order twice: open, and changed in the last 15 minutes
    assert all([await redis_version(r, i) == 1 for i in ids])

    await bump(pg, *ids[:7])
    periodic = await reconcile_now(srv.ctx, chunk=3)
    assert (periodic.rows, periodic.behind, periodic.unexplained) == (7, 7, 0)
    assert [await redis_version(r, i) for i in ids] == [2] * 7 + [1] * 3


async def test_the_audit_restores_an_open_order_lost_alone(
    srv: InProcessServer, t: Team, r: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A key lost while the watermark survives (deleted, evicted, one cluster node lost):
    the rolling audit finds it within (open orders / chunk) passes."""
    caplog.set_level(logging.INFO, logger="bangban.reconciler")
    ids = [(await file(t))["id"] for _ in range(7)]
    await reconcile_now(srv.ctx)
    await r.delete(K.order(ids[5]))
    seen: list[int] = []
    restored = 0
    for _ in range(3):  # pages of 3: ids 1-3, 4-6, 7
        result = await reconcile_now(srv.ctx, chunk=3)
        seen.append(result.audited)
        restored += result.restored
        if result.restored:
            assert result.unexplained == 1
            assert reconciled_logs(caplog)[-1][0] == logging.WARNING
    assert seen == [3, 3, 1] and restored == 1
    assert await redis_version(r, ids[5]) == 1


async def test_a_new_process_repairs_in_full_what_periodic_passes_do_not_read(
    quiet: Settings, r: aioredis.Redis
) -> None:
    """A closed order Redis has at an old version, written before the watermark: periodic
    passes leave it (they read only what was written since), a process's start-up pass
    repairs it."""
    async with InProcessServer(quiet) as first:
        t = await team(first.url, quiet.admin_token or "")
        order = await claimed(t)
        await reconcile_now(first.ctx)
        key = K.order(order["id"])
        stale: dict[Any, Any] = {"version": 1, "status": "offered", "claimed_by": ""}
        await r.hset(key, mapping=stale)
        assert (await reconcile_now(first.ctx)).repaired == 0
        assert await r.hget(key, "status") == b"offered"
    await r.delete(K.of(rs.RECONCILE_LOCK))  # the first process's pass holds it for an hour
    async with InProcessServer(quiet) as second:
        assert not second.ctx.full_reconcile_due
        assert await r.hget(key, "status") == b"claimed"
        assert await redis_version(r, order["id"]) == 2
