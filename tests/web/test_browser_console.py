"""The operators' console in real Chromium: the live board, assigning an escalated order, the
map, the detail with its trail, and an import's per-feature error report."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

from playwright.async_api import expect

from clients import ApiClient
from dispatcher.settings import Settings
from geo.demo import demo_county_text
from tests.browser import Pages
from tests.servers import InProcessServer, intake_token

VILLAGE = "331199001001000"  # 双田社区, 城东街道


def csv_file(text: str) -> dict[str, Any]:
    return {"name": "roster.csv", "mimeType": "text/csv", "buffer": text.encode()}


async def test_the_console_shows_new_orders_and_assigns_escalated_ones(
    settings: Settings, pages: Pages
) -> None:
    settings = dataclasses.replace(settings, escalate_after=1.0, sweep_interval=0.1)
    async with InProcessServer(settings) as server:
        pages.base_url = server.url
        async with server.admin() as admin:
            imported = await admin.request(
                "POST", "/v1/admin/grids/import", json=json.loads(demo_county_text())
            )
            assert imported.status_code == 200
            agent = await admin.create_agent("王五", "13800000001", [VILLAGE])
            intake = await intake_token(admin)
        async with ApiClient(server.url, intake) as api:
            stale = await api.file_order(grid=VILLAGE, text="很久没人接的申请")
            deadline = time.monotonic() + 10
            while (await server.ctx.store.get_order(stale["id"])).status.value != "escalated":
                assert time.monotonic() < deadline, "the order did not escalate"
                await asyncio.sleep(0.1)
            page = await pages.open(f"/console/#token={settings.admin_token}", size=None)
            await page.set_viewport_size({"width": 1280, "height": 800})
            await expect(page.locator("#conn")).to_have_text("已连接")
            fresh = await api.file_order(grid=VILLAGE, text="刚刚提交的申请")
        row = page.locator(f'#board-table tr[data-order-id="{fresh["id"]}"]')
        await expect(row).to_contain_text("刚刚提交的申请")
        await expect(row).to_contain_text("双田社区")
        await expect(page.locator("#n-escalated")).not_to_have_text("0")
        await pages.screenshots(page, "console-board")
        # The detail of an order, with its trail.
        await row.click()
        await expect(page.locator("#detail")).to_contain_text(f"工单 #{fresh['id']}")
        await expect(page.locator("#detail .trail")).to_contain_text("您的申请已提交")
        await page.locator("#detail").get_by_role("button", name="关闭").click()
        # Assign the escalated one.
        await page.get_by_role("link", name="待指派").click()
        escalated = page.locator(f'#escalated-list article[data-order-id="{stale["id"]}"]')
        await expect(escalated).to_contain_text("很久没人接的申请")
        await escalated.get_by_label("指派给").select_option(str(agent["id"]))
        await pages.screenshots(page, "console-escalated")
        await escalated.get_by_role("button", name="指派").click()
        await expect(escalated).to_have_count(0)
        stored = await server.ctx.store.get_order(stale["id"])
        assert stored is not None and stored.claimed_by == agent["id"]
        assert stored.status.value == "claimed"
        # The map of the grids, coloured by open orders.
        await page.get_by_role("link", name="网格地图").click()
        village = page.locator(f'#map path[data-grid="{VILLAGE}"]')
        await expect(village).to_have_count(1)
        assert await village.get_attribute("fill") != "#f1f1f1"  # it has open orders
        assert await page.locator("#map path").count() == 400  # the villages
        await pages.screenshots(page, "console-map")
        # An import refused, with the report per feature.
        await page.get_by_role("link", name="导入").click()
        bad = {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {"name": "无编码村"}, "geometry": None},
            ],
        }
        await page.locator("#grid-file").set_input_files(
            files=[
                {
                    "name": "bad.geojson",
                    "mimeType": "application/geo+json",
                    "buffer": json.dumps(bad).encode(),
                }
            ]
        )
        pages.allow(r"422 .*/v1/admin/grids/import|status of 422")  # refused on purpose
        await page.get_by_role("button", name="导入网格").click()
        report = page.locator("#grid-report")
        await expect(report).to_contain_text("网格文件有问题")
        await expect(report.locator("tbody tr")).not_to_have_count(0)
        # A roster naming an unknown grid is refused and says which; a good one shows each
        # new agent's app link, once; the roster by grid then lists them.
        pages.allow(r"422 .*/v1/admin/agents/import")
        roster_file = page.locator("#roster-file")
        await roster_file.set_input_files(
            files=[csv_file("name,phone,grids\n赵六,13800000777,331199999999999\n")]
        )
        await page.get_by_role("button", name="导入名册").click()
        await expect(page.locator("#roster-report")).to_contain_text("331199999999999")
        await roster_file.set_input_files(
            files=[csv_file(f"name,phone,grids\n赵六,13800000777,{VILLAGE}\n")]
        )
        await page.get_by_role("button", name="导入名册").click()
        await expect(page.locator("#roster-report")).to_contain_text(f"{server.url}/app/#token=")
        await pages.screenshots(page, "console-import")
        await page.get_by_role("link", name="代办员").click()
        await expect(page.locator("#agents-list")).to_contain_text("双田社区（2 人）")
        await expect(page.locator("#agents-list")).to_contain_text("赵六")
        # The catalogue editor lists the seeded items.
        await page.get_by_role("link", name="事项目录").click()
        await expect(page.locator("#catalog-table")).to_contain_text("HJ-001")
        await page.locator("#catalog-table tr", has_text="HJ-001").click()
        await expect(page.locator("#item-name")).to_have_value("户口迁移（迁入）")
        await pages.screenshots(page, "console-catalog")
        pages.assert_clean()  # before the server stops (pages poll it)
