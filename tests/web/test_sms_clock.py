"""Quiet hours and daily caps on offer texts, with the server's clock in the test's hand."""

from __future__ import annotations

import asyncio
import dataclasses

from clients import AgentClient, ApiClient
from dispatcher.flows import sms_texts
from dispatcher.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.servers import InProcessServer
from tests.steps import file, team
from tests.web.sms_harness import (
    Clock,
    GatewayServer,
    local_ms,
    outbox,
    present,
    sms_settings,
    until,
)

DAY = 86_400


async def test_quiet_hours_hold_offers_until_morning_if_still_open(settings: Settings) -> None:
    clock = Clock(local_ms(2026, 6, 1, 23, 30))
    async with GatewayServer() as gw:
        s = sms_settings(settings, gw, sms_quiet="22:00-07:00", sms_quiet_mode="defer")
        async with InProcessServer(s, clock=clock) as srv:
            t = await team(srv.url, ADMIN_TOKEN, {"g1": 1})
            kept = await file(t, text="夜里提交")
            taken = await file(t, text="夜里被抢")
            await until(lambda: _rows(s, kept["id"], taken["id"]), what="offers queued")
            for order in (kept, taken):
                (row,) = await outbox(s.database_url, order["id"])
                assert row["status"] == "queued"
            async with ApiClient(srv.url, t.agent()["token"]) as api:
                assert (await api.claim(taken["id"]))["result"] == "won"
            await asyncio.sleep(0.6)
            assert gw.state.received == []  # quiet: nothing sent at 23:30
            clock.now = local_ms(2026, 6, 2, 6, 59)
            await asyncio.sleep(0.6)
            assert gw.state.received == []
            clock.now = local_ms(2026, 6, 2, 7, 0)
            await until(lambda: gw.texts_to(t.agent()["phone"]), what="the morning text")
            await asyncio.sleep(0.5)
            (text,) = gw.texts_to(t.agent()["phone"])
            assert "夜里提交" in text["text"]
            (row,) = await outbox(s.database_url, taken["id"])
            assert row["status"] == "skipped" and row["note"] == "order no longer open"


async def _rows(s: Settings, *order_ids: int) -> bool:
    return all([await outbox(s.database_url, i) for i in order_ids])


async def test_quiet_hours_in_skip_mode_note_the_skip(settings: Settings) -> None:
    clock = Clock(local_ms(2026, 6, 1, 6, 0))
    async with GatewayServer() as gw:
        s = sms_settings(settings, gw, sms_quiet="22:00-07:00", sms_quiet_mode="skip")
        async with InProcessServer(s, clock=clock) as srv:
            t = await team(srv.url, ADMIN_TOKEN, {"g1": 1})
            order = await file(t)
            await until(lambda: _rows(s, order["id"]), what="the offer noted")
            (row,) = await outbox(s.database_url, order["id"])
            assert (row["status"], row["note"]) == ("skipped", "quiet_hours")
            clock.advance(3600)  # 07:00: not sent later either
            await asyncio.sleep(0.6)
            assert gw.state.received == []


async def test_daily_caps_per_agent_and_in_all(settings: Settings) -> None:
    clock = Clock(local_ms(2026, 6, 1, 9, 0))
    async with GatewayServer() as gw:
        s = sms_settings(settings, gw, sms_agent_daily=2, sms_daily=5)
        async with InProcessServer(s, clock=clock) as srv:
            t = await team(srv.url, ADMIN_TOKEN, {"g1": 2, "g2": 2})
            a, b = t.agent("g1", 0), t.agent("g1", 1)
            c, d = t.agent("g2", 0), t.agent("g2", 1)
            first = [await file(t, text=f"第{i}件") for i in range(3)]
            await until(lambda: _rows(s, *(o["id"] for o in first)), what="three orders")
            third = await outbox(s.database_url, first[2]["id"])
            assert {(r["status"], r["note"]) for r in third} == {("skipped", "agent_daily_cap")}
            other = await file(t, grid="g2", text="别的网格")
            await until(lambda: _rows(s, other["id"]), what="g2 order")
            rows = {r["agent_id"]: r for r in await outbox(s.database_url, other["id"])}
            assert rows[c["id"]]["status"] == "queued" or rows[c["id"]]["status"] == "sent"
            assert (rows[d["id"]]["status"], rows[d["id"]]["note"]) == ("skipped", "daily_cap")
            await until(lambda: len(gw.state.seen) == 5, what="five texts")
            await asyncio.sleep(0.5)
            assert [len(gw.texts_to(x["phone"])) for x in (a, b, c, d)] == [2, 2, 1, 0]
            clock.advance(DAY)  # a new local day: the caps start again
            fresh = await file(t, text="第二天")
            await until(lambda: len(gw.texts_to(a["phone"])) == 3, what="next day's text")
            await until(lambda: len(gw.texts_to(b["phone"])) == 3, what="next day's text")
            assert len(await outbox(s.database_url, fresh["id"])) == 2


async def test_caps_hold_within_one_batch_of_triggers(settings: Settings) -> None:
    """Several orders expanded in one transaction count against the caps one by one."""
    clock = Clock(local_ms(2026, 6, 1, 9, 0))
    async with GatewayServer() as gw:
        # The loop's first round runs at start-up, then sleeps: the test expands by hand.
        s = dataclasses.replace(sms_settings(settings, gw, sms_agent_daily=2), sms_interval=60)
        async with InProcessServer(s, clock=clock) as srv:
            t = await team(srv.url, ADMIN_TOKEN, {"g1": 1})
            orders = [await file(t, text=f"第{i}件") for i in range(3)]
            assert await sms_texts.expand(srv.ctx) == 3
            notes = [(await outbox(s.database_url, o["id"]))[0]["note"] for o in orders]
            assert notes == [None, None, "agent_daily_cap"]


async def test_one_batch_of_offers_reaches_each_rungs_own_offline_agents(
    settings: Settings,
) -> None:
    """Offer triggers of several grids expanded in one transaction (one roster query and
    one presence call for the batch): each order texts exactly the offline agents of its own
    grid, and a connected agent gets none."""
    async with GatewayServer() as gw:
        s = dataclasses.replace(sms_settings(settings, gw), sms_interval=60)
        async with InProcessServer(s) as srv:
            t = await team(srv.url, ADMIN_TOKEN, {"g1": 2, "g2": 2, "g3": 1})
            online = t.agent("g1", 0)
            async with AgentClient.connect(srv.url, online["token"]):
                await until(lambda: present(srv.url), what="presence")
                one = await file(t, text="网格一")
                two = await file(t, grid="g2", text="网格二")
                again = await file(t, text="网格一又一件")
                assert await sms_texts.expand(srv.ctx) == 3
            for order, agents in ((one, [t.agent("g1", 1)]), (again, [t.agent("g1", 1)])):
                rows = await outbox(s.database_url, order["id"])
                assert sorted(r["agent_id"] for r in rows) == [a["id"] for a in agents]
            rows = await outbox(s.database_url, two["id"])
            assert sorted(r["agent_id"] for r in rows) == sorted(
                [t.agent("g2", 0)["id"], t.agent("g2", 1)["id"]]
            )
