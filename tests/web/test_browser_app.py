"""The agents' app in real Chromium: live offers, the grab and its answer, a race, a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time

import asyncpg
from playwright.async_api import expect

from clients import ApiClient
from dispatcher.settings import Settings
from tests.browser import Pages
from tests.servers import InProcessServer, intake_token, roster
from tests.steps import CrewFactory


def card(page, order_id: int):  # type: ignore[no-untyped-def]
    return page.locator(f'article.offer[data-order-id="{order_id}"]')


async def test_a_live_offer_is_grabbed(crew: CrewFactory, pages: Pages) -> None:
    async with crew({"g1": 1}) as c:
        pages.base_url = c.url
        page = await pages.open(f"/app/#token={c.agents['g1'][0]['token']}")
        await expect(page.locator("#conn")).to_have_text("已连接")
        assert "token" not in page.url  # moved from the address bar into storage
        async with ApiClient(c.url, c.intake) as api:
            order = await api.file_order(grid="g1", text="我要办理低保申请")
        offer = card(page, order["id"])
        await expect(offer).to_contain_text("我要办理低保申请")
        await expect(offer).to_contain_text(f"#{order['id']}")
        await pages.screenshots(page, "app-offers")
        await offer.get_by_role("button", name="抢单", exact=True).click()
        await expect(offer).to_contain_text("已抢到")
        assert (await c.server.ctx.store.get_order(order["id"])).claimed_by == c.agents["g1"][0][
            "id"
        ]
        await page.get_by_role("tab", name=re.compile("我的工单")).click()
        mine = page.locator(f'article.mine[data-order-id="{order["id"]}"]')
        await expect(mine).to_contain_text("已接单")
        # A free-text order: the agent gives it its catalogue item, and so its checklist.
        await mine.get_by_text("定事项", exact=True).click()
        await mine.get_by_label("办理事项").select_option("MZ-001")
        await mine.get_by_role("button", name="提交").click()
        await expect(mine).to_contain_text("最低生活保障申请")
        await mine.get_by_text("受理", exact=True).click()
        await expect(mine.get_by_label("家庭收入情况说明")).to_have_count(1)
        await pages.screenshots(page, "app-mine")
        pages.assert_clean()


async def test_two_agents_race_and_exactly_one_wins(crew: CrewFactory, pages: Pages) -> None:
    async with crew({"g1": 2}) as c:
        pages.base_url = c.url
        one, two = [await pages.open(f"/app/#token={a['token']}") for a in c.agents["g1"]]
        for page in (one, two):
            await expect(page.locator("#conn")).to_have_text("已连接")
        async with ApiClient(c.url, c.intake) as api:
            order = await api.file_order(grid="g1", text="我要办理独生子女证")
        buttons = [
            card(p, order["id"]).get_by_role("button", name="抢单", exact=True) for p in (one, two)
        ]
        for button in buttons:
            await expect(button).to_be_enabled()
        # The winner hears `won` only after Postgres commits, and the loser's card is withdrawn
        # right after that: hold the commit back (a row lock) until the loser's answer shows,
        # so the race is decided by Redis with both claims in, however loaded the machine.
        db = await asyncpg.connect(c.server.settings.database_url)
        try:
            lock = db.transaction()
            await lock.start()
            await db.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", order["id"])
            await asyncio.gather(*(b.evaluate("el => el.click()") for b in buttons))
            answers = [card(p, order["id"]).locator(".answer") for p in (one, two)]
            loser_i = None
            deadline = time.monotonic() + 4  # well inside Postgres's 5 s command timeout
            while loser_i is None and time.monotonic() < deadline:
                for i, answer in enumerate(answers):
                    if await answer.count() and await answer.inner_text() == "已被抢":
                        loser_i = i
                await asyncio.sleep(0.05)
            await lock.rollback()
        finally:
            await db.close()
        assert loser_i is not None, "neither agent was told 已被抢 while the winner was recording"
        winner_i = 1 - loser_i
        await expect(answers[winner_i]).to_have_text("已抢到")
        winner = c.agents["g1"][winner_i]
        assert (await c.server.ctx.store.get_order(order["id"])).claimed_by == winner["id"]
        loser = (one, two)[loser_i]
        # The loser's card goes once the answer has been shown.
        await expect(card(loser, order["id"])).to_have_count(0)
        # Grabbed elsewhere (here over HTTP) while shown: the card goes without a click.
        async with ApiClient(c.url, c.intake) as api:
            shown = await api.file_order(grid="g1", text="被别人抢走的单")
        await expect(card(two, shown["id"])).to_have_count(1)
        async with ApiClient(c.url, c.agents["g1"][0]["token"]) as first:
            assert (await first.claim(shown["id"]))["result"] == "won"
        await expect(card(two, shown["id"])).to_have_count(0)
        pages.assert_clean()


async def test_the_app_reconnects_after_a_restart(settings: Settings, pages: Pages) -> None:
    # While the server is down the page probes /v1/healthz, which the browser reports.
    pages.allow(r"ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE")
    first = InProcessServer(settings)
    await first.start()
    pages.base_url = first.url
    async with first.admin() as admin:
        agents = await roster(admin, {"g1": 2})
        intake = await intake_token(admin)
    page = await pages.open(f"/app/#token={agents['g1'][0]['token']}")
    conn = page.locator("#conn")
    await expect(conn).to_have_text("已连接")
    async with ApiClient(first.url, intake) as api:
        before = await api.file_order(grid="g1", text="断线前看到的申请")
    await expect(card(page, before["id"])).to_have_count(1)
    await first.stop()
    await expect(conn).to_have_text(re.compile("重新连接中|离线"))
    # Another process files an order while the app's server is away, and a colleague grabs
    # the one the app was showing.
    async with InProcessServer(settings) as other, ApiClient(other.url, intake) as api:
        meanwhile = await api.file_order(grid="g1", text="断线期间提交的申请")
        async with ApiClient(other.url, agents["g1"][1]["token"]) as colleague:
            assert (await colleague.claim(before["id"]))["result"] == "won"
    async with InProcessServer(settings, port=first.port):
        await expect(conn).to_have_text("已连接", timeout=20_000)
        await expect(card(page, meanwhile["id"])).to_contain_text("断线期间提交的申请")
        await expect(card(page, before["id"])).to_have_count(0)
        await expect(
            card(page, meanwhile["id"]).get_by_role("button", name="抢单", exact=True)
        ).to_be_enabled()
        pages.assert_clean()  # before the server stops (pages poll it)


async def test_the_agent_handles_an_order_from_the_app(crew: CrewFactory, pages: Pages) -> None:
    async with crew({"g1": 1}) as c:
        pages.base_url = c.url
        page = await pages.open(f"/app/#token={c.agents['g1'][0]['token']}")
        await expect(page.locator("#conn")).to_have_text("已连接")
        async with ApiClient(c.url, c.intake) as api:
            order = await api.file_order(grid="g1", item="HJ-001")
        oid, materials = order["id"], order["materials"]
        offer = card(page, oid)
        await offer.get_by_text("办事指南").click()
        await expect(offer.locator(".guide-body")).to_contain_text("办理步骤")
        await offer.get_by_role("button", name="抢单", exact=True).click()
        await expect(offer).to_contain_text("已抢到")
        await page.get_by_role("tab", name=re.compile("我的工单")).click()
        mine = page.locator(f'article.mine[data-order-id="{oid}"]')
        # Accept with two of the materials; the rest by a supply-by date.
        await mine.get_by_text("受理", exact=True).click()
        for material in materials[:2]:
            await mine.get_by_label(material).check()
        tomorrow = time.strftime("%Y-%m-%d", time.localtime(time.time() + 2 * 86400))
        await mine.get_by_label("补件截止日期").fill(tomorrow)
        await pages.screenshots(page, "app-accept")
        await mine.get_by_role("button", name="提交").click()
        await expect(mine.locator(".badge.status")).to_have_text("待补件")
        await expect(mine).to_contain_text(materials[2])
        await mine.get_by_text("补件", exact=True).click()
        for material in materials[2:]:
            await mine.get_by_label(material).check()
        await mine.get_by_role("button", name="提交").click()
        await expect(mine.locator(".badge.status")).to_have_text("办理中")
        await mine.get_by_text("进度", exact=True).click()
        await mine.get_by_label("进度说明").fill("材料已交县公安局户籍窗口")
        await mine.get_by_label("办理窗口").select_option("county")
        await mine.get_by_role("button", name="提交").click()
        await expect(page.locator(".toast", has_text="已记录进度")).to_have_count(1)
        await mine.get_by_text("回复", exact=True).click()
        await mine.get_by_label("办理结果").fill("已办结，新户口簿已送到申请人家中")
        await mine.get_by_label("业务编号").fill("HJ2026-0002")
        await mine.get_by_label("代缴费用").fill("工本费 20")
        await mine.get_by_role("button", name="提交").click()
        await expect(mine).to_have_count(0)  # replied: no longer held
        stored = await c.server.ctx.store.get_order(oid)
        assert stored is not None and stored.status.value == "replied"
        events = await c.server.ctx.store.order_events(oid)
        kinds = [e["kind"] for e in events]
        assert kinds == [
            "filed",
            "claimed",
            "awaiting_materials",
            "supplied",
            "progress",
            "replied",
        ]
        assert events[4]["details"]["desk"] == "county"
        assert events[5]["details"]["fees"] == [{"item": "工本费", "amount_fen": 2000}]
        pages.assert_clean()


async def test_offers_grey_out_at_the_held_limit(settings: Settings, pages: Pages) -> None:
    async with InProcessServer(dataclasses.replace(settings, max_held=1)) as server:
        pages.base_url = server.url
        async with server.admin() as admin:
            agents = await roster(admin, {"g1": 1})
            intake = await intake_token(admin)
        page = await pages.open(f"/app/#token={agents['g1'][0]['token']}")
        await expect(page.locator("#held")).to_have_text("在办 0/1")
        async with ApiClient(server.url, intake) as api:
            first = await api.file_order(grid="g1", text="第一件")
            await card(page, first["id"]).get_by_role("button", name="抢单", exact=True).click()
            await expect(page.locator("#held")).to_have_text("在办 1/1")
            second = await api.file_order(grid="g1", text="第二件")
        offer = card(page, second["id"])
        await expect(offer).to_contain_text("在办已满 1 件")
        await expect(offer.get_by_role("button", name="抢单", exact=True)).to_be_disabled()
        # An operator takes the first away: the update frame frees the slot live.
        async with server.admin() as admin:
            other = await admin.create_agent("代办员乙", "13900000099", ["g1"])
            moved = await admin.request(
                "POST", f"/v1/orders/{first['id']}/reassign", json={"agent_id": other["id"]}
            )
            assert moved.status_code == 200
        await expect(page.locator("#held")).to_have_text("在办 0/1")
        await expect(offer.get_by_role("button", name="抢单", exact=True)).to_be_enabled()
        await expect(page.locator(".toast", has_text="已为您更换代办员")).to_have_count(1)
        pages.assert_clean()  # before the server stops (pages poll it)


async def test_the_app_opens_offline_and_reconnects_when_the_network_returns(
    crew: CrewFactory, pages: Pages
) -> None:
    async with crew({"g1": 1}) as c:
        pages.base_url = c.url
        page = await pages.open(f"/app/#token={c.agents['g1'][0]['token']}")
        await expect(page.locator("#conn")).to_have_text("已连接")
        assert await page.evaluate("navigator.serviceWorker.ready.then(r => !!r.active)")
        async with ApiClient(c.url, c.intake) as api:
            held = await api.file_order(grid="g1", text="离线也要看得到")
            await card(page, held["id"]).get_by_role("button", name="抢单", exact=True).click()
            await expect(card(page, held["id"])).to_contain_text("已抢到")
            await expect(page.locator("#mine-count")).to_have_text("1")
            # The service worker now controls the page (it claimed it on activation).
            await page.reload()
            await expect(page.locator("#conn")).to_have_text("已连接")
            await page.context.set_offline(True)
            await page.reload()  # from the service worker's cache
            await expect(page.locator("h1")).to_have_text("帮办 · 代办员")
            await expect(page.locator("#conn")).to_have_text("离线")
            await expect(page.locator(f'article.mine[data-order-id="{held["id"]}"]')).to_have_count(
                1
            )
            await pages.screenshots(page, "app-offline")
            later = await api.file_order(grid="g1", text="网络恢复后收到")
            await page.context.set_offline(False)
            await expect(page.locator("#conn")).to_have_text("已连接")
            await expect(card(page, later["id"])).to_contain_text("网络恢复后收到")
        pages.assert_clean()


async def test_sign_in_sign_out_and_an_unknown_token(server: InProcessServer, pages: Pages) -> None:
    pages.base_url = server.url
    async with server.admin() as admin:
        agents = await roster(admin, {"g1": 1})
    page = await pages.open("/app/")
    await expect(page.locator("#signin")).to_be_visible()
    await pages.screenshots(page, "app-signin")
    await page.get_by_label("登录码").fill(agents["g1"][0]["token"])
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator("#conn")).to_have_text("已连接")
    await page.get_by_role("button", name="退出登录").click()
    await expect(page.locator("#signin")).to_be_visible()
    assert await page.evaluate("localStorage.getItem('bangban.agent.token')") is None
    # A revoked or mistyped token: told so, and kept out (the browser reports the 401s).
    pages.allow(r"^401 |status of 401")
    await page.goto(server.url + "/app/#token=bba_not-a-real-token")
    await expect(page.locator("#signin-error")).to_contain_text("登录码无效")
    await expect(page.locator("#conn")).to_have_text("登录已失效")
    pages.assert_clean()
