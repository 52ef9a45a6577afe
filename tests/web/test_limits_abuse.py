"""Abuse limits: an intake token filing too fast gets 429 ``rate_limited`` with
``Retry-After``; a grid at its open-order cap escalates new orders instead of offering them;
an agent claiming too fast is refused ``rate_limited`` (HTTP and websocket), counted; a busy
intake token is counted in shares, never past its limit over two processes."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx

from clients import AgentClient, ApiClient
from dispatcher.core.limits import Shares, Windows
from dispatcher.settings import Settings
from tests.servers import InProcessServer, intake_token
from tests.steps import CrewFactory, team


def test_windows_count_per_key_and_say_how_long_to_wait() -> None:
    w = Windows(limit=2, window_ms=1000)
    assert [w.hit("a", 100), w.hit("a", 200), w.hit("b", 300)] == [0, 0, 0]
    assert w.hit("a", 400) == 600  # until the next window, at 1000
    assert w.hit("a", 1000) == 0
    assert Windows(limit=0).hit("a", 0) == 0  # no limit
    few = Windows(limit=1, max_keys=2)
    for key in range(5):
        few.hit(key, 0)
    assert len(few._counts) == 2


def test_shares_count_a_small_limit_exactly_and_grow_while_used_up() -> None:
    s = Shares()
    assert s.want("a", 199, 0) == 1  # under 200: one event at a time
    s.grant("a", 1, 0)
    assert not s.take("a", 0) and s.want("a", 199, 0) == 1
    assert s.want("b", 1000, 0) == 2  # the window's first share
    s.grant("b", 2, 500)  # (the event that asked is counted)
    assert s.take("b", 100) and not s.take("b", 100)
    assert s.want("b", 1000, 100) == 4  # used up in its window: twice
    s.grant("b", 4, 500)
    assert [s.take("b", 200) for _ in range(4)] == [True, True, True, False]
    assert s.want("b", 1000, 200) == 8
    s.grant("b", 8, 500)
    assert s.want("b", 1000, 300) == 10  # at most limit // 100
    assert not s.take("b", 500)  # lapsed with its window, unused
    assert s.want("b", 1000, 500) == 2
    few = Shares(max_keys=2)
    for key in range(5):
        few.grant(key, 3, 100)
    assert len(few._held) == 2 and few.take(4, 0) and not few.take(0, 0)


async def test_a_busy_token_over_two_processes_never_files_past_its_limit(
    settings: Settings,
) -> None:
    """Filing rate 300 a minute (shares of up to 3), one token filing over two server
    processes at once: no more than 300 filed, and at most 2 x 2 refused early (the shares
    left unused in each process), in fewer RATE calls than filings.  (Shares below the same
    filing rate are counted exactly: :func:`test_filing_rate_per_token`.)"""
    limited = dataclasses.replace(settings, filing_rate=300)
    async with InProcessServer(limited) as a, InProcessServer(limited) as b:
        t = await team(a.url, limited.admin_token or "", {"g1": 1})
        raw = a.ctx.board.redis
        before = (await raw.info("commandstats")).get("cmdstat_incrby", {"calls": 0})["calls"]
        async with httpx.AsyncClient() as http:

            async def file(url: str) -> int:
                reply = await http.post(
                    f"{url}/v1/orders",
                    json={"grid": "g1", "text": "办事"},
                    headers={"Authorization": f"Bearer {t.intake}"},
                )
                return reply.status_code

            async def filer(url: str) -> list[int]:
                return [await file(url) for _ in range(170)]

            codes = [c for run in await asyncio.gather(filer(a.url), filer(b.url)) for c in run]
        after = (await raw.info("commandstats"))["cmdstat_incrby"]["calls"]
    assert set(codes) == {201, 429}
    assert 296 <= codes.count(201) <= 300
    assert after - before < 200  # RATE's INCRBY: shares of 2 and 3, and the refusals


async def test_filing_rate_per_token(crew: CrewFactory) -> None:
    async with crew({"g1": 1}, filing_rate=5) as t:
        async with ApiClient(t.url, t.admin_token) as admin:
            other = await intake_token(admin)
        async with httpx.AsyncClient(base_url=t.url) as http:

            async def file(token: str) -> httpx.Response:
                return await http.post(
                    "/v1/orders",
                    json={"grid": "g1", "text": "办事"},
                    headers={"Authorization": f"Bearer {token}"},
                )

            codes = [(await file(t.intake)).status_code for _ in range(5)]
            assert codes == [201] * 5
            refused = await file(t.intake)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            assert (await file(other)).status_code == 201  # per token
            assert (await file(t.admin_token)).status_code == 201  # operators
        assert t.server.ctx.metrics.filings_rate_limited._value.get() == 1


async def test_a_grid_at_its_cap_escalates_instead_of_offering(crew: CrewFactory) -> None:
    async with crew({"g1": 1}, grid_open_cap=3) as t:
        async with (
            AgentClient.connect(t.url, t.agent()["token"]) as agent,
            ApiClient(t.url, t.intake) as api,
        ):
            filed = [await api.file_order(grid="g1", text=f"第{i}件") for i in range(5)]
            assert [o["status"] for o in filed] == ["offered"] * 3 + ["escalated"] * 2
            for order in filed[:3]:
                await agent.wait_offer(order["id"], timeout=5)
            last = await api.file_order(grid="g1", text="再一件")
            assert last["status"] == "escalated"
            assert not {o["id"] for o in filed[3:]} & set(agent.offers)
        assert t.server.ctx.metrics.orders_capped._value.get() == 3


async def test_claims_per_agent_per_minute(crew: CrewFactory) -> None:
    async with crew({"g1": 1}, claim_rate=4) as t:
        async with ApiClient(t.url, t.intake) as api:
            order = await api.file_order(grid="g1", text="办事")
        async with AgentClient.connect(t.url, t.agent()["token"]) as agent:
            results = [(await agent.claim(order["id"], f"r{i}")).result for i in range(4)]
            assert results == ["won"] * 4  # the first wins, repeats of a win answer won
            rid = await agent.send_claim(order["id"], "r5")
            try:
                await agent.wait_claim(rid)
                raise AssertionError("not rate limited")
            except Exception as exc:
                assert getattr(exc, "code", None) == "rate_limited", exc
        async with httpx.AsyncClient(base_url=t.url) as http:
            r = await http.post(
                f"/v1/orders/{order['id']}/claim",
                content=json.dumps({"request_id": "h1"}),
                headers={"Authorization": f"Bearer {t.agent()['token']}"},
            )
        assert r.status_code == 429 and "Retry-After" in r.headers
        assert t.server.ctx.metrics.claims_rate_limited._value.get() == 2
