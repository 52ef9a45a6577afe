"""Redis behind Postgres after an announce failed (issue 11, defect 3).

A widening committed in Postgres whose announce failed left the order grid-only in Redis:
agents of other grids, shown the order through a snapshot from Postgres, got ``not_offered``
while it was open to them.  Now the claim path asks Postgres before answering
``not_offered``, and a failed announce is repaired from the order's row within a second of
Redis answering again (not at the reconciler's next pass).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from clients import AgentClient, ApiClient
from dispatcher.context import wall_clock
from dispatcher.core.orders import advanced
from dispatcher.exceptions import RedisUnavailableError
from dispatcher.flows import widening
from dispatcher.settings import Settings
from tests.proxy import Proxy
from tests.servers import InProcessServer
from tests.steps import Team, file, team


@pytest.fixture
def quiet(settings: Settings) -> Settings:
    """No reconciler pass during the test: what repairs Redis is not the reconciler."""
    return dataclasses.replace(settings, reconcile_interval=3600)


async def test_a_widening_redis_never_heard_is_claimed_not_refused(quiet: Settings) -> None:
    async with InProcessServer(quiet) as srv:
        t = await team(srv.url, quiet.admin_token or "", {"g1": 1, "g2": 1})
        order = await file(t)
        ctx = srv.ctx
        current = await ctx.store.get_order(order["id"])
        assert current is not None and current.next_step_at is not None
        nxt = advanced(current, current.next_step_at, ctx.audience)
        assert nxt is not None
        # The widening commits in Postgres; its announce never happens (it failed).
        widened = await ctx.store.advance_order(current, nxt, current.next_step_at)
        assert widened is not None and widened.scope.value == "all"
        assert (await ctx.board.versions([order["id"]]))[0][0] == 1  # Redis: grid-only still
        outsider = t.agent("g2")
        async with AgentClient.connect(srv.url, outsider["token"]) as agent:
            await agent.wait_offer(order["id"], timeout=5)  # the snapshot comes from Postgres
            assert (await agent.claim(order["id"])).result == "won"
        assert (await ctx.board.versions([order["id"]]))[0][0] == widened.version + 1


async def test_not_offered_confirmed_by_postgres_is_still_the_answer(quiet: Settings) -> None:
    async with InProcessServer(quiet) as srv:
        t = await team(srv.url, quiet.admin_token or "", {"g1": 1, "g2": 1})
        order = await file(t)
        async with ApiClient(srv.url, t.agent("g2")["token"]) as api:
            assert (await api.claim(order["id"], request_id="r1"))["result"] == "not_offered"
            assert (await api.claim(order["id"], request_id="r1"))["result"] == "not_offered"
        async with ApiClient(srv.url, t.agent("g1")["token"]) as api:
            assert (await api.claim(order["id"]))["result"] == "won"


@pytest.fixture
async def cut_redis(quiet: Settings) -> AsyncIterator[tuple[Proxy, Settings]]:
    assert quiet.redis_url
    proxy = Proxy(quiet.redis_url)
    await proxy.start()
    try:
        yield proxy, dataclasses.replace(quiet, redis_url=proxy.url)
    finally:
        await proxy.stop()


async def _until_version(r: aioredis.Redis, key: str, version: int, seconds: float) -> float:
    """Seconds until Redis has ``key`` at ``version`` or newer; fails after ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        have = await r.hget(key, "version")
        if have is not None and int(have) >= version:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise AssertionError(f"{key} not at version {version} within {seconds} s")


async def test_failed_announces_are_repaired_when_redis_answers_again(
    quiet: Settings, cut_redis: tuple[Proxy, Settings]
) -> None:
    proxy, through = cut_redis
    assert quiet.redis_url
    direct = aioredis.Redis.from_url(quiet.redis_url)
    try:
        shift = [0]  # ms added to the server's clock: widenings fall due when the test says

        def clock() -> int:
            return wall_clock() + shift[0]

        async with InProcessServer(through, clock=clock) as srv:
            t: Team = await team(srv.url, quiet.admin_token or "", {"g1": 1, "g2": 1})
            ctx = srv.ctx
            widens = await file(t)
            await proxy.cut()
            shift[0] = int(quiet.widen_after * 1000) + 1000
            # Filed while Redis is cut: recorded (201), not yet offered.
            filed = await file(t)
            # A widening committed while Redis is cut: its announce fails.
            with pytest.raises(RedisUnavailableError):
                await widening.widen(ctx, [widens["id"]])
            stored = await ctx.store.get_order(widens["id"])
            assert stored is not None and stored.scope.value == "all"
            await asyncio.sleep(0.3)  # down a while: the repairs keep waiting
            proxy.restore()
            keys = ctx.board.keys
            took = await _until_version(direct, keys.order(filed["id"]), 1, 3.0)
            took = max(took, await _until_version(direct, keys.order(widens["id"]), 2, 3.0))
            assert took < 1.0, f"repaired {took:.2f} s after Redis answered again"
            assert await direct.hget(keys.order(widens["id"]), "scope") == b"all"
            async with ApiClient(srv.url, t.agent("g2")["token"]) as api:
                assert (await api.claim(widens["id"]))["result"] == "won"
            async with ApiClient(srv.url, t.agent("g1")["token"]) as api:
                assert (await api.claim(filed["id"]))["result"] == "won"
    finally:
        await direct.aclose()
