"""Redis connections that heal (issue 11, defect 2).

Pooled connections opened before a Redis restart used to fail one command each, with no
retry: fresh agent connections were closed with 1013 and claims got ``unavailable`` for
seconds after Redis answered again.  Now connection errors are retried with backoff, idle
connections are checked before use, and scripts are loaded again where Redis forgot them
(NOSCRIPT), so every request right after the restart succeeds.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from clients import AgentClient
from dispatcher.board import scripts as rs
from dispatcher.board.board import Board
from dispatcher.board.events import read_event
from dispatcher.core.orders import Order, Scope, Status, widen_deadline
from dispatcher.embedded import EmbeddedRedis
from dispatcher.settings import Settings
from tests.conftest import Services
from tests.servers import InProcessServer
from tests.steps import file, team

AGENTS = 8


@pytest.mark.parametrize("persist", [True, False], ids=["aof", "no-persistence"])
async def test_every_request_succeeds_right_after_redis_restarts(
    settings: Settings, persist: bool
) -> None:
    folder = settings.data_dir / f"restart-redis-{persist}"
    redis = EmbeddedRedis(folder, persist=persist)
    url = redis.start()
    try:
        # The loops stay out of the way (they would use up stale connections one by one).
        quiet = dataclasses.replace(settings, redis_url=url, reconcile_interval=3600)
        async with InProcessServer(quiet) as srv:
            t = await team(srv.url, settings.admin_token or "", {"g1": AGENTS})
            orders = [await file(t) for _ in range(AGENTS)]
            # Fill the pool with connections (as a burst of claims does).
            await asyncio.gather(*(srv.ctx.board.redis.ping() for _ in range(32)))
            assert len(srv.ctx.board.redis.connection_pool._available_connections) >= 8

            redis.stop()
            redis = EmbeddedRedis(folder, persist=persist, port=redis.port)
            redis.start()  # returns as soon as Redis answers PING

            # Right away: fresh agents connect, claim, and the health check says ok.
            async def connect_and_claim(i: int) -> str:
                async with AgentClient.connect(srv.url, t.agent("g1", i)["token"]) as agent:
                    return (await agent.claim(orders[i]["id"], timeout=10)).result

            results = await asyncio.gather(*(connect_and_claim(i) for i in range(AGENTS)))
            assert results == ["won"] * AGENTS
            # The health check is ok within a second: the pub/sub listener resubscribes with
            # a backoff capped at 0.5 s (the claims above may finish sooner than that).
            async with httpx.AsyncClient() as http:
                deadline = asyncio.get_running_loop().time() + 1.0
                r = await http.get(srv.url + "/v1/healthz", timeout=10)
                while r.status_code != 200 and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.05)
                    r = await http.get(srv.url + "/v1/healthz", timeout=10)
            assert r.status_code == 200, r.text
            # Filing announces through Redis too: offered at once to a connected agent.
            async with AgentClient.connect(srv.url, t.agent("g1", 0)["token"]) as agent:
                late = await file(t)
                await agent.wait_offer(late["id"], timeout=5)
    finally:
        redis.stop()


# --- every script is safe to repeat (a retry after a lost reply) ----------------------------

T0 = 1_700_000_000_000
HOLD = 10_000


@pytest.fixture
async def board(clean: Services) -> AsyncIterator[Board]:
    b = Board.from_url(clean.redis_url, hold_ms=HOLD, closed_ttl_ms=60_000)
    yield b
    await b.close()


def _order() -> Order:
    return Order(
        id=1,
        status=Status.OFFERED,
        grid="g1",
        item="A1",
        text=None,
        item_class=1,
        created_at=T0,
        widen_at=widen_deadline(T0, 600),
        scope=Scope.GRID,
    )


async def test_claim_repeated_by_its_own_request_holds_again(board: Board) -> None:
    """The reply of a CLAIM that took the hold was lost: its retry (same request) holds again,
    where another request of the same agent is told ``busy`` and other agents ``held`` (that
    is ``taken``, told once the winner's outcome is heard)."""
    await board.sync(_order())
    assert await board.claim(1, 7, "7:s:a", ["g1"], T0) == rs.HOLD
    assert await board.claim(1, 7, "7:s:a", ["g1"], T0 + 5) == rs.HOLD
    assert await board.claim(1, 7, "7:s:b", ["g1"], T0 + 5) == rs.BUSY
    assert await board.claim(1, 8, "8:s:a", ["g1"], T0 + 5) == rs.HELD
    many = await board.claim_many(1, [(7, "7:s:c", ["g1"]), (7, "7:s:a", ["g1"])], T0 + 6)
    assert many == [rs.BUSY, ""]  # the holding request, riding, is left to CLAIM


async def test_claim_many_lead_repeated_holds_again(board: Board) -> None:
    await board.sync(_order())
    claims = [(7, "7:s:a", ["g1"]), (8, "8:s:a", ["g1"])]
    assert await board.claim_many(1, claims, T0, lead=True) == [rs.HOLD, rs.HELD]
    assert await board.claim_many(1, claims, T0 + 5, lead=True) == [rs.HOLD, "taken"]  # (as
    # remembered the first time)


async def test_reserve_repeated_is_the_same_reservation(board: Board) -> None:
    assert await board.reserve(7, 1, T0, 1) == "ok"
    assert await board.reserve(7, 1, T0, 1) == "ok"  # the same call again: still ours
    assert await board.reserve(7, 1, T0 + 1, 1) == "already"  # another claim of it
    assert await board.reserve(7, 2, T0 + 1, 1) == "full"


async def test_a_pooled_connection_killed_by_redis_is_retried(board: Board) -> None:
    """CLIENT KILL of every connection (what a restart does to the pool): the next
    commands, scripts and pipelines succeed on new connections."""
    await board.sync(_order())
    await asyncio.gather(*(board.redis.ping() for _ in range(8)))
    killer = await board.redis.connection_pool.get_connection()
    try:
        await killer.send_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert int(await killer.read_response()) >= 1
    finally:
        await board.redis.connection_pool.release(killer)
    await board.redis.script_flush()  # and Redis forgot the scripts
    assert await board.claim(1, 7, "7:s:a", ["g1"], T0) == rs.HOLD
    await board.announce(_order(), reason=None)
    assert await board.held_count(7) == 0


async def test_the_win_reserves_and_announces_again_after_redis_forgot_the_scripts(
    board: Board,
) -> None:
    """The claim reserves its place inside CLAIM and the win's holding rides in the announce
    (pipelined by EVALSHA alone, never SCRIPT EXISTS): after SCRIPT FLUSH both load the
    scripts again, and the published event carries the agent's held count."""
    await board.sync(_order())
    await board.redis.script_flush()
    assert await board.claim_reserving(1, 7, "7:s:w", ["g1"], T0, 5) == (rs.HOLD, "ok")
    pubsub = board.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(board.keys.events)
    try:
        await board.redis.script_flush()
        won = dataclasses.replace(_order(), status=Status.CLAIMED, claimed_by=7, version=2)
        assert await board.announce(won, reason="claimed", holder=(7, T0 + 1)) == 1
        assert await board.held_count(7) == 1
        message = None
        while message is None:
            message = await pubsub.get_message(timeout=5)
        event = read_event(message["data"])
        assert event["order"]["status"] == "claimed"
        assert event["held"] == [[7, 1]]
    finally:
        await pubsub.aclose()
