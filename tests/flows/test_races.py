"""Races after the grab, with concurrent requests against real Redis and Postgres: each is
settled atomically, with one outcome recorded, and what callers were told agrees with it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import pytest

from clients import ApiClient
from tests.servers import InProcessServer
from tests.steps import MATERIALS, Team, claimed, error, file, ok, post, team

ROUNDS = 10


@pytest.fixture
async def t(server: InProcessServer) -> Team:
    return await team(server.url, server.settings.admin_token or "", {"g1": 3})


async def _trail(dsn: str | None, order_id: int) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT kind FROM order_events WHERE order_id = $1 ORDER BY id", order_id
        )
    finally:
        await conn.close()
    return [r["kind"] for r in rows]


async def _status(t: Team, order_id: int) -> dict[str, Any]:
    async with ApiClient(t.url, t.admin_token) as admin:
        return await admin.get_order(order_id)


async def test_claim_against_cancel(server: InProcessServer, t: Team) -> None:
    agent = t.agent()
    seen: Counter[str] = Counter()
    async with ApiClient(t.url, agent["token"]) as api:
        for _ in range(ROUNDS):
            order = await file(t)
            claim, cancel = await asyncio.gather(
                api.claim(order["id"]),
                post(t.url, order["tracking_token"], order["id"], "cancel", reason="不需要了"),
            )
            trail = await _trail(server.settings.database_url, order["id"])
            final = (await _status(t, order["id"]))["status"]
            won = claim["result"] == "won"
            assert won == ("claimed" in trail)
            if cancel.status_code == 200:
                assert final == "cancelled" and trail[-1] == "cancelled"
                # Cancelled first (the claim found it gone) or after the claim was recorded.
                assert claim["result"] in ("won", "not_offered")
                seen["cancelled after claim" if won else "cancelled first"] += 1
            else:
                # The claim was recorded while the cancel was deciding: it learns so.
                assert error(cancel) == (409, "conflict") and won and final == "claimed"
                assert cancel.json()["error"]["details"]["current_state"] == "claimed"
                assert "cancelled" not in trail
                seen["claimed, cancel refused"] += 1
            assert Counter(trail)["claimed"] <= 1 and Counter(trail)["cancelled"] <= 1
    # The agent holds exactly the orders still claimed.
    conn = await asyncpg.connect(server.settings.database_url)
    held = await conn.fetchval(
        "SELECT count(*) FROM orders WHERE claimed_by = $1 AND status = 'claimed'", agent["id"]
    )
    await conn.close()
    assert await server.ctx.board.held_count(agent["id"]) == held
    assert sum(seen.values()) == ROUNDS, seen


async def test_release_against_claims(server: InProcessServer, t: Team) -> None:
    a, b = t.agent("g1", 0), t.agent("g1", 1)
    async with ApiClient(t.url, a["token"]) as ha, ApiClient(t.url, b["token"]) as hb:
        for _ in range(ROUNDS):
            order = await claimed(t, a)
            released, by_b, by_a = await asyncio.gather(
                post(t.url, a["token"], order["id"], "release"),
                hb.claim(order["id"]),
                ha.claim(order["id"]),
            )
            assert released.status_code == 200, released.text
            trail = await _trail(server.settings.database_url, order["id"])
            assert Counter(trail)["released"] == 1
            final = await _status(t, order["id"])
            # The releaser never gets it back; b gets it only after the release.
            assert by_a["result"] in ("won", "not_offered")
            if by_b["result"] == "won":
                assert final["claimed_by"] == b["id"] and trail[-1] == "claimed"
                assert trail.index("released") < len(trail) - 1
            else:
                assert by_b["result"] == "taken"
                assert (final["status"], final["claimed_by"]) == ("offered", None)
            assert (await ha.claim(order["id"]))["result"] in ("not_offered", "taken")
            if final["status"] == "claimed":
                await ok(t.url, b["token"], order["id"], "release")  # keep b under its limit


async def test_two_operators_reassigning(server: InProcessServer, t: Team) -> None:
    """Both act on the version they saw: one is recorded, the other told it changed."""
    a, b, c = t.agent("g1", 0), t.agent("g1", 1), t.agent("g1", 2)
    for _ in range(ROUNDS):
        order = await claimed(t, a)
        seen = (await _status(t, order["id"]))["version"]
        to_b, to_c = await asyncio.gather(
            post(t.url, t.admin_token, order["id"], "reassign", agent_id=b["id"], version=seen),
            post(t.url, t.admin_token, order["id"], "reassign", agent_id=c["id"], version=seen),
        )
        codes = sorted([to_b.status_code, to_c.status_code])
        assert codes == [200, 409], (to_b.text, to_c.text)
        winner, loser = (b, to_c) if to_b.status_code == 200 else (c, to_b)
        assert error(loser) == (409, "conflict")
        final = await _status(t, order["id"])
        assert final["claimed_by"] == winner["id"]
        trail = await _trail(server.settings.database_url, order["id"])
        assert Counter(trail)["reassigned"] == 1
        await ok(t.url, t.admin_token, order["id"], "cancel", reason="测试完毕")
    for agent in (a, b, c):
        assert await server.ctx.board.held_count(agent["id"]) == 0


async def test_rating_twice(server: InProcessServer, t: Team) -> None:
    agent = t.agent()["token"]
    for _ in range(ROUNDS):
        order = await claimed(t)
        await ok(t.url, agent, order["id"], "accept", received=MATERIALS)
        await ok(t.url, agent, order["id"], "reply", result="已办结")
        token = order["tracking_token"]
        first, second = await asyncio.gather(
            post(t.url, token, order["id"], "rate", rating="满意"),
            post(t.url, token, order["id"], "rate", rating="不满意"),
        )
        answers = sorted([first, second], key=lambda r: r.status_code)
        assert answers[0].status_code == 200
        assert error(answers[1]) == (409, "illegal_transition")
        assert answers[1].json()["error"]["details"]["current_state"] == "closed"
        final = await _status(t, order["id"])
        assert final["rating"] == answers[0].json()["rating"]
        trail = await _trail(server.settings.database_url, order["id"])
        assert Counter(trail)["rated"] == 1
