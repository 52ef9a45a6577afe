"""The applicant's page in real Chromium: the order followed live to the rating."""

from __future__ import annotations

import time

from playwright.async_api import expect

from clients import ApiClient
from tests.browser import Pages
from tests.steps import CrewFactory


async def test_the_applicant_follows_the_order_and_rates_it(
    crew: CrewFactory, pages: Pages
) -> None:
    async with crew({"g1": 1}) as c:
        pages.base_url = c.url
        async with ApiClient(c.url, c.intake) as api:
            order = await api.file_order(
                grid="g1", item="HJ-001", applicant={"name": "张三", "phone": "13700000000"}
            )
        assert order["tracking_url"] == f"{c.url}/t/{order['id']}#token={order['tracking_token']}"
        page = await pages.open(order["tracking_url"].removeprefix(c.url), name="/t/")
        status = page.locator("#status")
        await expect(status).to_have_text("正在派单")
        await expect(page.locator("#conn")).to_have_text("已连接")
        oid = order["id"]
        materials = order["materials"]
        assert len(materials) >= 2
        async with ApiClient(c.url, c.agents["g1"][0]["token"]) as agent:
            assert (await agent.claim(oid))["result"] == "won"
            await expect(status).to_have_text("代办员已接单")
            supply_by = int(time.time() * 1000) + 3 * 86_400_000
            accept = {"received": materials[:1], "supply_by": supply_by}
            assert (
                await agent.request("POST", f"/v1/orders/{oid}/accept", accept)
            ).status_code == 200
            await expect(status).to_have_text("请补齐材料")
            await expect(page.locator("#missing")).to_contain_text(materials[1])
            await pages.screenshots(page, "track-materials")
            supply = {"received": materials[1:]}
            assert (
                await agent.request("POST", f"/v1/orders/{oid}/supply", supply)
            ).status_code == 200
            await expect(status).to_have_text("正在办理")
            await expect(page.locator("#missing")).to_be_hidden()
            reply = {
                "result": "户口迁入已办结，新户口簿已交申请人",
                "references": ["HJ2026-0001"],
                "fees": [{"item": "工本费", "amount_fen": 2000}],
            }
            assert (
                await agent.request("POST", f"/v1/orders/{oid}/reply", reply)
            ).status_code == 200
        await expect(status).to_have_text("已办好，请您评价")
        await expect(page.locator("#reply")).to_contain_text("户口迁入已办结")
        await expect(page.locator("#reply")).to_contain_text("合计 20 元")
        trail = page.locator("#trail li")
        # filed, claimed, awaiting materials, supplied, replied
        await expect(trail).to_have_count(5)
        await page.get_by_label("满意", exact=True).check()
        await page.locator("#comment").fill("办事很快，谢谢")
        await page.get_by_role("button", name="提交评价").click()
        await expect(status).to_have_text("已办结")
        await expect(page.locator("#explain")).to_contain_text("您的评价：满意")
        await expect(page.locator("#rate")).to_be_hidden()
        await expect(trail.first).to_contain_text("办事很快，谢谢")
        stored = await c.server.ctx.store.get_order(oid)
        assert stored is not None and stored.status.value == "closed"
        await pages.screenshots(page, "track-closed")
        pages.assert_clean()


async def test_the_applicant_cancels_before_acceptance(crew: CrewFactory, pages: Pages) -> None:
    async with crew({"g1": 1}) as c:
        pages.base_url = c.url
        async with ApiClient(c.url, c.intake) as api:
            order = await api.file_order(grid="g1", text="我要办理高龄津贴")
        page = await pages.open(order["tracking_url"].removeprefix(c.url), name="/t/")
        await expect(page.locator("#status")).to_have_text("正在派单")
        await page.get_by_text("不需要办了？取消申请").click()
        await page.get_by_label("取消原因").fill("已自行办好")
        await page.get_by_role("button", name="确认取消").click()
        await expect(page.locator("#status")).to_have_text("已取消")
        await expect(page.locator("#cancel")).to_be_hidden()
        await expect(page.locator("#trail li").first).to_contain_text("已自行办好")
        stored = await c.server.ctx.store.get_order(order["id"])
        assert stored is not None and stored.status.value == "cancelled"
        # Another order's page with this token is refused.
        other = await pages.open(
            f"/t/{order['id'] + 1}#token={order['tracking_token']}", name="/t/x"
        )
        await expect(other.locator("#nosign")).to_be_visible()
        pages.assert_clean()
