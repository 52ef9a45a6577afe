"""Fair play over real websockets, Redis and Postgres: reaction times measured on the server
(offer handed to the connection → claim read), flags on a scripted fast claimer and not on a
human-paced one, the minimum-reaction rule, shares of wins against shares of offers.

The server's clock is injected and moved by the test between the offer and the claim, so the
reaction times are exactly what the test scripts, however loaded the machine is."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time

import pytest

from clients import AgentClient, ApiClient
from clients.framesocket import FrameRejectedError
from dispatcher.settings import Settings
from tests.pointsflows import Clock, county, fetch, read_csv, read_xlsx
from tests.servers import InProcessServer
from tests.steps import error, get

ROUNDS = 6


async def flushed(server: InProcessServer, claims: int) -> None:
    """Wait until the server wrote ``claims`` claim timings (the flusher runs every 0.1 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pending = len(server.ctx.hub.fairplay.claims)
        async with ApiClient(server.url, server.settings.admin_token or "") as admin:
            r = await admin.request("GET", f"/v1/admin/fairplay?month={month_now(server)}")
        if pending == 0 and sum(a["claims"] for a in r.json()["agents"]) >= claims:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("claim timings not written")


def month_now(server: InProcessServer) -> str:
    return time.strftime("%Y-%m", time.gmtime((server.ctx.clock() + 8 * 3_600_000) / 1000))


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, regular_min_claims=5, fairplay_flush=0.1)


async def test_a_scripted_claimer_is_flagged_and_a_human_is_not(fast_settings: Settings) -> None:
    clock = Clock(frozen=True)
    rng = random.Random(3)
    async with InProcessServer(fast_settings, clock=clock) as server:
        t = await county(server.url, fast_settings.admin_token or "", {"g1": 3})
        bot, human, idle = t.agents["g1"]
        async with (
            AgentClient.connect(server.url, bot["token"]) as cb,
            AgentClient.connect(server.url, human["token"]) as ch,
            AgentClient.connect(server.url, idle["token"]) as ci,
            ApiClient(server.url, t.intake) as intake,
        ):
            for _ in range(ROUNDS):
                order = await intake.file_order(grid="g1", item="HJ-002")
                for agent in (cb, ch, ci):
                    await agent.wait_offer(order["id"])
                clock.advance(120)  # the script answers 120 ms after every offer
                assert (await cb.claim(order["id"])).result == "won"
                clock.advance(rng.randint(1500, 6000))  # a person reads, then taps
                assert (await ch.claim(order["id"])).result == "taken"
            # A blind claim: an order of another grid, never offered to the script.
            elsewhere = await intake.file_order(grid="g2", item="HJ-002")
            assert (await cb.claim(elsewhere["id"])).result == "not_offered"
            await flushed(server, 2 * ROUNDS + 1)
            report = await get(
                t.url, t.admin_token, f"/v1/admin/fairplay?month={month_now(server)}"
            )

    by_id = {a["agent_id"]: a for a in report["agents"]}
    b, h, i = by_id[bot["id"]], by_id[human["id"]], by_id[idle["id"]]
    assert b["flags"] == ["too_fast", "machine_regular"]
    assert (b["offers"], b["claims"], b["wins"], b["fast_claims"]) == (
        ROUNDS,
        ROUNDS + 1,
        ROUNDS,
        ROUNDS,
    )
    assert b["untimed_claims"] == 1 and h["untimed_claims"] == 0
    assert b["reaction"]["min_ms"] == b["reaction"]["max_ms"] == 120
    assert b["reaction"]["cv"] == 0
    assert h["flags"] == [] and h["fast_claims"] == 0 and h["wins"] == 0
    assert h["reaction"]["min_ms"] >= 1620 and h["reaction"]["cv"] > 0.1
    assert (i["offers"], i["claims"], i["flags"]) == (ROUNDS, 0, [])
    assert report["thresholds"]["fast_ms"] == 300
    (g1,) = report["grids"]
    shares = {s["agent_id"]: s for s in g1["agents"]}
    assert g1["grid"] == "g1"
    assert (shares[bot["id"]]["offer_share"], shares[bot["id"]]["win_share"]) == ("0.3333", "1")
    assert shares[bot["id"]]["ratio"] == "3"
    assert shares[human["id"]]["win_share"] == "0" and shares[human["id"]]["ratio"] == "0"

    # The exports.
    async with InProcessServer(fast_settings, clock=clock) as server:
        month = month_now(server)
        status, _, data = await fetch(
            server.url, t.admin_token, f"/v1/admin/fairplay?month={month}&format=csv"
        )
        rows = read_csv(data)
        assert status == 200 and rows[0][0] == "代办员编号"
        flagged = {r[0]: r[-1] for r in rows[1:]}
        assert flagged[str(bot["id"])] == "too_fast;machine_regular"
        assert flagged[str(human["id"])] == ""
        status, _, data = await fetch(
            server.url, t.admin_token, f"/v1/admin/fairplay?month={month}&grid=g1&format=xlsx"
        )
        assert status == 200 and len(read_xlsx(data)) == 4
        async with ApiClient(server.url, t.admin_token) as admin:
            r = await admin.request("GET", "/v1/admin/fairplay?month=2026-11&grid=a%20b")
            assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "grid"
            assert error(await admin.request("GET", "/v1/admin/fairplay")) == (422, "invalid_value")


async def test_the_minimum_reaction_rule_ignores_claims_faster_than_a_person(
    fast_settings: Settings,
) -> None:
    clock = Clock(frozen=True)
    settings = dataclasses.replace(fast_settings, min_reaction_ms=300)
    async with InProcessServer(settings, clock=clock) as server:
        t = await county(server.url, settings.admin_token or "", {"g1": 2})
        bot, human = t.agents["g1"]
        async with (
            AgentClient.connect(server.url, bot["token"]) as cb,
            AgentClient.connect(server.url, human["token"]) as ch,
            ApiClient(server.url, t.intake) as intake,
            ApiClient(server.url, bot["token"]) as bot_http,
        ):
            order = await intake.file_order(grid="g1", item="HJ-002")
            await cb.wait_offer(order["id"])
            await ch.wait_offer(order["id"])
            clock.advance(50)
            with pytest.raises(FrameRejectedError) as refused:
                await cb.claim(order["id"])
            assert refused.value.code == "too_fast"
            # Over HTTP the reaction counts from the delivery to the agent's connection.
            r = await bot_http.request(
                "POST", f"/v1/orders/{order['id']}/claim", {"request_id": "r1"}
            )
            assert error(r) == (422, "too_fast")
            clock.advance(2000)
            assert (await ch.claim(order["id"])).result == "won"
            await flushed(server, 3)
            report = await get(
                t.url, t.admin_token, f"/v1/admin/fairplay?month={month_now(server)}"
            )
    by_id = {a["agent_id"]: a for a in report["agents"]}
    assert (by_id[bot["id"]]["claims"], by_id[bot["id"]]["ignored"]) == (2, 2)
    assert by_id[bot["id"]]["wins"] == 0 and "too_fast" in by_id[bot["id"]]["flags"]
    assert by_id[human["id"]]["wins"] == 1 and by_id[human["id"]]["flags"] == []
    assert report["thresholds"]["min_reaction_ms"] == 300
