"""The console's 短信 page (the demo's phone, no gateway configured) in real Chromium against a
real server: an order for a grid whose agents are offline texts each of them, the page shows
each text with the code in that phone's inbox, a reply with the code from one phone claims the
order (Postgres says so) and the reply 抢单成功 appears in that inbox; the order detail shows
the delivery log and the agents view who is online."""

from __future__ import annotations

import dataclasses

import asyncpg
from playwright.async_api import expect

from clients import AgentClient
from dispatcher.settings import Settings
from tests.browser import Pages
from tests.conftest import ADMIN_TOKEN
from tests.servers import InProcessServer
from tests.steps import file, team
from tests.web.sms_harness import code_of, outbox, present, until


async def test_an_operator_plays_an_agent_replying_by_sms_from_the_console(
    settings: Settings, pages: Pages
) -> None:
    assert settings.sms_url is None  # no gateway: texts go to the log and the console
    s = dataclasses.replace(settings, sms_interval=0.1, public_url="https://bangban.example")
    async with InProcessServer(s) as srv:
        pages.base_url = srv.url
        t = await team(srv.url, ADMIN_TOKEN, {"g1": 3})
        online, first, second = t.agents["g1"]
        async with AgentClient.connect(srv.url, online["token"]):
            await until(lambda: present(srv.url), what="presence")
            order = await file(t)
            rows = await until(
                lambda: _sent(settings.database_url, order["id"], 2), what="the offer texts"
            )
            page = await pages.open(f"/console/#token={ADMIN_TOKEN}", size=None)
            await page.set_viewport_size({"width": 1280, "height": 800})
            await expect(page.locator("#conn")).to_have_text("已连接")
            # 代办员: who is connected now.
            await page.get_by_role("link", name="代办员").click()
            agents = page.locator("#agents-list")
            await expect(agents.locator("tr", has_text=online["name"])).to_contain_text("在线")
            await expect(agents.locator("tr", has_text=first["name"])).to_contain_text("离线")
            await expect(page.locator("#agents-online")).to_contain_text("现在在线 1 人")
            await pages.screenshots(page, "console-online")
        # 短信: one inbox per offline agent, each with the offer and its code.
        code = code_of(rows[0]["text"])
        assert {code_of(r["text"]) for r in rows} == {code}
        await page.get_by_role("link", name="短信").click()
        for agent in (first, second):
            inbox = page.locator(f'#sms-phones article[data-phone="{agent["phone"]}"]')
            await expect(inbox).to_contain_text(agent["name"])
            offer = inbox.locator('li[data-kind="offer"]')
            await expect(offer).to_have_count(1)
            await expect(offer).to_contain_text(f"回复{code}抢单")
            await expect(offer).to_contain_text(f"工单 #{order['id']}")
            await expect(offer).to_contain_text("已发送")
        await expect(
            page.locator(f'#sms-phones article[data-phone="{online["phone"]}"]')
        ).to_have_count(0)
        # Reply with the code as the first agent's phone: the order is claimed.
        inbox = page.locator(f'#sms-phones article[data-phone="{first["phone"]}"]')
        await inbox.get_by_label(f"以 {first['phone']} 回复").fill(code)
        await inbox.get_by_role("button", name="回复").click()
        reply = inbox.locator('li[data-kind="claim_reply"]')
        await expect(reply).to_contain_text("抢单成功")  # polled in, every 2 s
        await expect(reply).to_contain_text("已发送")  # to the log: no gateway to report more
        await expect(inbox.locator("li.mine")).to_contain_text(code)
        await expect(inbox.locator("li.mine")).to_contain_text("抢单成功")
        conn = await asyncpg.connect(settings.database_url)
        try:
            stored = await conn.fetchrow(
                "SELECT status, claimed_by FROM orders WHERE id = $1", order["id"]
            )
        finally:
            await conn.close()
        assert stored is not None
        assert (stored["status"], stored["claimed_by"]) == ("claimed", first["id"])
        await page.evaluate("document.getElementById('toasts')?.remove()")
        await pages.screenshots(page, "console-sms")
        # The order detail: its delivery log, who was texted and whether it went.
        await page.get_by_role("link", name="工单看板").click()
        await page.locator(f'#board-table tr[data-order-id="{order["id"]}"]').click()
        log = page.get_by_role("table", name="短信记录")
        for agent in (first, second):
            offered = log.locator('tr[data-kind="offer"]', has_text=agent["phone"])
            await expect(offered).to_contain_text("已发送")
        await expect(log.locator('tr[data-kind="claim_reply"]')).to_contain_text(first["phone"])
        await expect(page.locator("#detail")).to_contain_text(code)
        # The log is at the panel's foot: scrolled there at phone size, still there at desk.
        await page.set_viewport_size({"width": 360, "height": 640})
        await page.evaluate(
            "(d => { d.scrollTop = d.scrollHeight; })(document.getElementById('detail'))"
        )
        await pages.screenshots(page, "console-sms-log")
        pages.assert_clean()  # before the server stops (pages poll it)


async def _sent(dsn: str | None, order_id: int, n: int) -> list[asyncpg.Record] | None:
    rows = [r for r in await outbox(dsn, order_id) if r["kind"] == "offer"]
    return rows if len(rows) >= n and all(r["status"] == "sent" for r in rows) else None
