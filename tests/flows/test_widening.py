"""Widening: after the deadline, within 1.5 s, exactly once, across processes and restarts.

The widening deadline is shortened with BANGBAN_WIDEN_AFTER (fractions of a second), and the
sweep runs at its default interval (0.25 s), so the bound tested is the one users get.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import asyncpg

from clients import AgentClient, ApiClient
from dispatcher.settings import Settings
from tests.servers import ProcessServer, intake_token, offers_for, roster
from tests.steps import CrewFactory

BOUND_MS = 1500


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_other_grids_get_the_offer_only_after_the_deadline(crew: CrewFactory) -> None:
    async with crew({"g1": 1, "g2": 1}, widen_after=0.8, sweep_interval=0.25) as c:
        async with (
            ApiClient(c.url, c.intake) as api,
            AgentClient.connect(c.url, c.agents["g1"][0]["token"]) as own,
            AgentClient.connect(c.url, c.agents["g2"][0]["token"]) as other,
        ):
            order = await api.file_order(grid="g1", text="我要办理医保参保")
            assert order["widen_at"] - order["created_at"] == 800
            got = await offers_for(other, order["id"], 2.5)
            assert len(got) == 1
            offer = got[0]
            assert offer["scope"] == "all" and offer["status"] == "widened"
            assert offer["version"] == 2
            assert order["widen_at"] <= offer["received_at"] <= order["widen_at"] + BOUND_MS  # type: ignore[operator]
            versions = [o["version"] for o in await offers_for(own, order["id"], 0.2)]
            assert versions == [1, 2]


async def test_claimed_orders_never_widen(crew: CrewFactory) -> None:
    async with crew({"g1": 1, "g2": 1}, widen_after=0.3, sweep_interval=0.25) as c:
        async with (
            ApiClient(c.url, c.intake) as api,
            AgentClient.connect(c.url, c.agents["g1"][0]["token"]) as own,
            AgentClient.connect(c.url, c.agents["g2"][0]["token"]) as other,
        ):
            order = await api.file_order(grid="g1", text="x")
            assert (await own.claim(order["id"])).result == "won"
            assert await offers_for(other, order["id"], 1.0) == []


async def _widen_events(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    rows = await conn.fetch("SELECT order_id, at FROM order_events WHERE kind = 'widened'")
    await conn.close()
    return rows


async def test_two_processes_widen_once(settings: Settings, tmp_path: Path) -> None:
    """Two servers sweep the same schedule: one widen event, one offer per agent."""
    settings = dataclasses.replace(settings, widen_after=1.0, sweep_interval=0.25)
    a = ProcessServer(settings, log=tmp_path / "a.log")
    b = ProcessServer(settings, log=tmp_path / "b.log")
    async with a, b:
        async with ApiClient(a.url, settings.admin_token) as admin:
            agents = await roster(admin, {"g1": 1, "g2": 2})
            intake = await intake_token(admin)
        x, y = agents["g2"]
        async with (
            ApiClient(a.url, intake) as api,
            AgentClient.connect(a.url, x["token"]) as on_a,
            AgentClient.connect(b.url, y["token"]) as on_b,
        ):
            order = await api.file_order(grid="g1", text="x")
            got_a, got_b = await asyncio.gather(
                offers_for(on_a, order["id"], 3.0), offers_for(on_b, order["id"], 3.0)
            )
    assert [o["version"] for o in got_a] == [2]
    assert [o["version"] for o in got_b] == [2]
    events = await _widen_events(settings.database_url or "")
    assert [e["order_id"] for e in events] == [order["id"]]


async def test_widens_after_a_restart_past_the_deadline(settings: Settings, tmp_path: Path) -> None:
    """Every process stopped before the deadline; one started after it widens at start-up."""
    settings = dataclasses.replace(settings, widen_after=1.0, sweep_interval=0.25)
    async with ProcessServer(settings, log=tmp_path / "first.log") as first:
        async with ApiClient(first.url, settings.admin_token) as admin:
            await roster(admin, {"g1": 1, "g2": 1})
            intake = await intake_token(admin)
        async with ApiClient(first.url, intake) as api:
            order = await api.file_order(grid="g1", text="x")
    assert await _widen_events(settings.database_url or "") == []
    await asyncio.sleep(max(0.0, (order["widen_at"] - now_ms()) / 1000) + 0.5)
    started = now_ms()
    async with ProcessServer(settings, log=tmp_path / "second.log"):
        ready = now_ms()
    (event,) = await _widen_events(settings.database_url or "")
    widened_at = round(event["at"].timestamp() * 1000)
    # Widened during start-up, before the new process answered its first request.
    assert order["widen_at"] <= started <= widened_at <= ready
