"""The workflow's clock: escalation of unclaimed orders, closing of unrated replies, overdue
orders.  Deadlines are shortened with BANGBAN_ESCALATE_AFTER / BANGBAN_CLOSE_AFTER (fractions
of a second) or the server's clock is moved on: never real long sleeps."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import asyncpg

from clients import AgentClient, ApiClient, TrackingClient
from dispatcher.live import wire
from dispatcher.settings import Settings
from tests.servers import InProcessServer
from tests.steps import MATERIALS, claimed, error, file, get, ok, post, team

BOUND_MS = 1500


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _kinds(dsn: str | None, kind: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT order_id FROM order_events WHERE kind = $1", kind)
    finally:
        await conn.close()
    return [r["order_id"] for r in rows]


async def test_unclaimed_order_escalates_and_an_operator_assigns_it(settings: Settings) -> None:
    settings = dataclasses.replace(settings, escalate_after=0.6, sweep_interval=0.1)
    async with InProcessServer(settings) as srv:
        t = await team(srv.url, settings.admin_token or "")
        async with AgentClient.connect(srv.url, t.agent()["token"]) as agent:
            order = await file(t)
            assert order["escalate_at"] == order["created_at"] + 600
            async with TrackingClient.connect(srv.url, order["id"], order["tracking_token"]) as tr:
                escalated = await tr.wait_status("escalated", timeout=5)
                received = now_ms()
            assert order["escalate_at"] <= received <= order["escalate_at"] + BOUND_MS
            frame = await agent.recv(timeout=5)
            while not isinstance(frame, wire.Withdrawn):
                frame = await agent.recv(timeout=5)
            assert (frame.order_id, frame.reason) == (order["id"], "expired")
            assert escalated["claimed_by"] is None
            listed = await get(srv.url, t.admin_token, "/v1/admin/orders?status=escalated")
            assert [o["id"] for o in listed["orders"]] == [order["id"]]
            # Nobody can grab it any more; an operator gives it to someone.
            assert (await agent.claim(order["id"])).result == "not_offered"
            who = t.agent()
            assigned = await ok(
                srv.url, t.admin_token, order["id"], "assign", agent_id=who["id"], reason="指派"
            )
            assert (assigned["status"], assigned["claimed_by"]) == ("claimed", who["id"])
            frame = await agent.recv(timeout=5)
            while not isinstance(frame, wire.Update):
                frame = await agent.recv(timeout=5)
            assert frame.event is not None and frame.event["label"] == "政务专员已为您指派代办员"
        await ok(srv.url, who["token"], order["id"], "accept", received=MATERIALS)
    assert await _kinds(settings.database_url, "escalated") == [order["id"]]


async def test_unrated_reply_closes_by_itself_and_cannot_be_rated_then(
    settings: Settings,
) -> None:
    settings = dataclasses.replace(settings, close_after=0.5, sweep_interval=0.1)
    async with InProcessServer(settings) as srv:
        t = await team(srv.url, settings.admin_token or "")
        order = await claimed(t)
        agent = t.agent()["token"]
        await ok(srv.url, agent, order["id"], "accept", received=MATERIALS)
        replied = await ok(srv.url, agent, order["id"], "reply", result="已办结")
        async with TrackingClient.connect(srv.url, order["id"], order["tracking_token"]) as tr:
            closed = await tr.wait_status("closed", timeout=5)
            received = now_ms()
        assert replied["close_at"] <= received <= replied["close_at"] + BOUND_MS
        assert closed["rating"] is None
        r = await post(srv.url, order["tracking_token"], order["id"], "rate", rating="满意")
        assert error(r) == (409, "illegal_transition")
        assert r.json()["error"]["details"]["current_state"] == "closed"
        trail = await get(srv.url, t.admin_token, f"/v1/orders/{order['id']}/events")
        last = trail["events"][-1]
        assert (last["kind"], last["actor"], last["label"]) == (
            "closed_unrated",
            "system",
            "评价期限已过，本次代办已办结",
        )


async def test_two_servers_escalate_and_close_once(settings: Settings) -> None:
    settings = dataclasses.replace(
        settings, escalate_after=0.5, close_after=0.5, sweep_interval=0.1
    )
    async with InProcessServer(settings) as one, InProcessServer(settings) as two:
        t = await team(one.url, settings.admin_token or "")
        open_orders = [await file(t) for _ in range(5)]
        handled = [await claimed(t) for _ in range(3)]
        agent = t.agent()["token"]
        for order in handled:
            await ok(two.url, agent, order["id"], "accept", received=MATERIALS)
            await ok(two.url, agent, order["id"], "reply", result="已办结")
        await asyncio.sleep(1.5)
    escalated = await _kinds(settings.database_url, "escalated")
    closed = await _kinds(settings.database_url, "closed_unrated")
    assert sorted(escalated) == [o["id"] for o in open_orders]
    assert sorted(closed) == [o["id"] for o in handled]


async def test_the_clock_catches_up_after_every_process_was_stopped(settings: Settings) -> None:
    settings = dataclasses.replace(settings, escalate_after=1.0, close_after=1.0)
    async with InProcessServer(settings) as first:
        t = await team(first.url, settings.admin_token or "")
        waiting = await file(t)
        replied = await claimed(t)
        agent = t.agent()["token"]
        await ok(first.url, agent, replied["id"], "accept", received=MATERIALS)
        await ok(first.url, agent, replied["id"], "reply", result="已办结")
    assert await _kinds(settings.database_url, "escalated") == []
    await asyncio.sleep(1.3)
    async with InProcessServer(settings) as second:
        # Handled during start-up, before the first request.
        a = await get(second.url, t.admin_token, f"/v1/orders/{waiting['id']}")
        b = await get(second.url, t.admin_token, f"/v1/orders/{replied['id']}")
    assert (a["status"], b["status"]) == ("escalated", "closed")


async def test_overdue_orders_are_listed_and_flagged(settings: Settings) -> None:
    """The server's clock moves on 30 days; the 3-working-day item is then overdue."""
    offset = [0]

    def clock() -> int:
        return now_ms() + offset[0]

    async with InProcessServer(settings, clock=clock) as srv:
        t = await team(srv.url, settings.admin_token or "")
        late = await claimed(t)
        fine = await claimed(t)
        agent = t.agent()["token"]
        accepted = await ok(srv.url, agent, late["id"], "accept", received=MATERIALS)
        listed = await get(srv.url, t.admin_token, "/v1/admin/orders?overdue=true")
        assert listed["orders"] == []
        offset[0] = 30 * 86_400_000
        assert clock() > accepted["due_at"]
        supply_by = clock() + 60_000
        await ok(srv.url, agent, fine["id"], "accept", received=MATERIALS[:1], supply_by=supply_by)
        listed = await get(srv.url, t.admin_token, "/v1/admin/orders?overdue=true")
        assert [(o["id"], o["overdue"]) for o in listed["orders"]] == [(late["id"], True)]
        view = await get(srv.url, agent, f"/v1/orders/{late['id']}")
        assert view["overdue"] is True
        mine = await get(srv.url, agent, "/v1/agent/orders")
        assert {o["id"]: o["overdue"] for o in mine["orders"]} == {
            late["id"]: True,
            fine["id"]: False,
        }
        offset[0] += 120_000  # past the supply-by date too
        listed = await get(srv.url, t.admin_token, "/v1/admin/orders?overdue=true")
        assert [o["id"] for o in listed["orders"]] == [late["id"], fine["id"]]
        async with ApiClient(srv.url, t.admin_token) as admin:
            r = await admin.request("GET", "/v1/admin/orders?status=bogus")
        assert error(r) == (422, "invalid_value")
