"""SMS across real server processes: presence seen by every process, exactly one text per
offline agent however many processes expand and send, and no text lost to a kill -9."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from clients import AgentClient
from dispatcher.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.servers import ProcessServer
from tests.steps import file, get, team
from tests.web.sms_harness import SECRET, GatewayServer, outbox, present, until


def sms_env(gw: GatewayServer, **extra: str) -> dict[str, str]:
    return {
        "BANGBAN_SMS_URL": gw.send_url,
        "BANGBAN_SMS_SECRET": SECRET,
        "BANGBAN_SMS_INTERVAL": "0.1",
        "BANGBAN_SMS_RETRY_BASE": "0.05",
        "BANGBAN_SMS_TIMEOUT": "2",
        "BANGBAN_PRESENCE_TTL": "2",
        **extra,
    }


def killed(server: ProcessServer) -> None:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    server.proc = None


async def test_two_processes_text_each_offline_agent_once_and_know_who_is_online(
    settings: Settings, tmp_path: Path
) -> None:
    async with GatewayServer() as gw:
        env = sms_env(gw)
        a = ProcessServer(settings, log=tmp_path / "a.log", extra_env=env)
        b = ProcessServer(settings, log=tmp_path / "b.log", extra_env=env)
        await asyncio.gather(a.start(), b.start())
        try:
            t = await team(b.url, ADMIN_TOKEN, {"g1": 4})
            online = t.agent("g1", 0)
            offline = [t.agent("g1", i) for i in (1, 2, 3)]
            async with AgentClient.connect(a.url, online["token"]):
                listed = await until(lambda: present(b.url), what="presence seen from b")
                assert [x["agent_id"] for x in listed["agents"]] == [online["id"]]
                orders = [await file(t, text=f"第{i}件") for i in range(3)]
                for agent in offline:
                    await until(
                        lambda agent=agent: len(gw.texts_to(agent["phone"])) == 3,
                        what="three offers each",
                    )
                await asyncio.sleep(1.5)  # both processes keep sweeping: no second text
                assert gw.texts_to(online["phone"]) == []
            for agent in offline:
                assert len(gw.texts_to(agent["phone"])) == 3
            for order in orders:
                rows = await outbox(settings.database_url, order["id"])
                assert len(rows) == 3 and all(len(gw.requests_for(r["id"])) == 1 for r in rows)
            # Presence outlives nothing: connected to a, then a dies without a word.
            async with AgentClient.connect(a.url, online["token"]):
                await until(lambda: present(b.url), what="connected again")
                killed(a)
            await until(lambda: _nobody(b.url), timeout=8, what="presence expired")
        finally:
            await asyncio.gather(a.stop(), b.stop())


async def _nobody(url: str) -> bool:
    listed: dict[str, Any] = await get(url, ADMIN_TOKEN, "/v1/admin/presence")
    return listed["agents"] == []


async def test_kill_9_of_the_sending_process_loses_no_text(
    settings: Settings, tmp_path: Path
) -> None:
    async with GatewayServer() as gw:
        # The gateway sits on the first texts for longer than a kill takes, but less than the
        # server's timeout: the sender is mid-send when it dies.
        # (and then fails them, so that only a send after the kill can fill the inboxes).
        # A short timeout: b claims them again when a's lease (2 x timeout + 2 s) lapses.
        gw.script(*[{"delay": 1.5, "status": 503}] * 3)
        env = sms_env(gw, BANGBAN_SMS_TIMEOUT="2")
        a = ProcessServer(settings, log=tmp_path / "a.log", extra_env=env)
        await a.start()
        try:
            t = await team(a.url, ADMIN_TOKEN, {"g1": 3})
            order = await file(t)
            await until(lambda: len(gw.state.received) == 3, what="three texts in flight")
            in_flight = {r["id"] for r in gw.state.received}
            killed(a)
            assert all(not gw.texts_to(x["phone"]) for x in t.agents["g1"])
            b = ProcessServer(settings, log=tmp_path / "b.log", extra_env=env)
            await b.start()
            try:
                for agent in t.agents["g1"]:
                    await until(
                        lambda agent=agent: gw.texts_to(agent["phone"]),
                        timeout=30,
                        what="sent again by b",
                    )
                rows = await outbox(settings.database_url, order["id"])
                assert {r["id"] for r in rows} == in_flight  # the same ids, sent again
                assert all(len(gw.requests_for(i)) >= 2 for i in in_flight)
                await until(lambda: _statuses(settings.database_url, order["id"]), what="all sent")
                for agent in t.agents["g1"]:
                    assert len(gw.texts_to(agent["phone"])) == 1
            finally:
                await b.stop()
        finally:
            await a.stop()


async def _statuses(dsn: str | None, order_id: int) -> bool:
    rows = await outbox(dsn, order_id)
    return {r["status"] for r in rows} == {"sent"}
