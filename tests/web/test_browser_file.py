"""The intake page in real Chromium: an order filed by address, with its tracking link."""

from __future__ import annotations

import json
import re

from playwright.async_api import expect

from clients import ApiClient
from geo import load_demo_county
from geo.demo import demo_county_text
from tests.browser import Pages
from tests.servers import InProcessServer, intake_token


async def county(admin: ApiClient) -> None:
    """A small tree of named places: 青山县 > 城东街道 > 双田社区, 白石村."""
    await admin.create_grid("c0", "青山县", level="county")
    await admin.create_grid("t1", "城东街道", level="township", parent="c0")
    await admin.create_grid("v1", "双田社区", level="village", parent="t1")
    await admin.create_grid("v2", "白石村", level="village", parent="t1")


async def test_an_order_is_filed_by_address(server: InProcessServer, pages: Pages) -> None:
    pages.base_url = server.url
    async with server.admin() as admin:
        await county(admin)
        intake = await intake_token(admin)
    page = await pages.open(f"/file#token={intake}")
    await page.get_by_label("搜索事项").fill("低保")
    await page.get_by_role("option", name="最低生活保障申请（低保）").click()
    await expect(page.locator("#item-picked")).to_contain_text("最低生活保障申请")
    await page.get_by_label("或者直接说需求").fill("我要给母亲申请低保")
    address = page.get_by_role("combobox", name="地址")
    await address.fill("双田")
    suggestion = page.get_by_role("option", name="青山县 城东街道 双田社区")
    await suggestion.click()
    await expect(address).to_have_value("青山县城东街道双田社区")
    await page.get_by_label("姓名").fill("李四")
    await page.get_by_label("手机号").fill("13700000001")
    await pages.screenshots(page, "file-form")
    await page.get_by_role("button", name="提交申请").click()
    link = page.locator("#done-link")
    await expect(link).to_contain_text("/t/")
    href = await link.get_attribute("href")
    assert href is not None and href.startswith(f"{server.url}/t/") and "#token=bbt_" in href
    order_id = int(href.split("/t/")[1].split("#")[0])
    await expect(page.locator("#done-id")).to_have_text(f"#{order_id}")
    stored = await server.ctx.store.get_order(order_id)
    assert stored is not None and stored.grid == "v1" and stored.item == "MZ-001"
    qr = page.locator("#done-qr")
    await expect(qr).to_have_attribute("src", re.compile(r"^blob:"))
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
    # The link opens the applicant's page for this order.
    async with ApiClient(server.url, href.split("#token=")[1]) as applicant:
        assert (await applicant.get_order(order_id))["applicant"]["name"] == "李四"
    await pages.screenshots(page, "file-done")
    pages.assert_clean()


async def test_an_order_is_filed_by_the_devices_position(
    server: InProcessServer, pages: Pages
) -> None:
    pages.base_url = server.url
    county_set = load_demo_county()
    village = county_set["331199001001000"]  # 双田社区
    assert village.geometry is not None
    inside = village.geometry.representative_point()
    async with server.admin() as admin:
        imported = await admin.request(
            "POST", "/v1/admin/grids/import", json=json.loads(demo_county_text())
        )
        assert imported.status_code == 200
        intake = await intake_token(admin)
    page = await pages.open(
        f"/file#token={intake}",
        geolocation={"latitude": inside.y, "longitude": inside.x},
        permissions=["geolocation"],
    )
    await page.get_by_label("或者直接说需求").fill("我要办理残疾人证")
    await page.get_by_role("button", name="用当前位置").click()
    await expect(page.locator("#located")).to_contain_text("已定位")
    await page.get_by_role("button", name="提交申请").click()
    await expect(page.locator("#done-link")).to_contain_text("/t/")
    href = await page.locator("#done-link").get_attribute("href")
    assert href is not None
    order_id = int(href.split("/t/")[1].split("#")[0])
    stored = await server.ctx.store.get_order(order_id)
    assert stored is not None and stored.grid == village.code
    pages.assert_clean()
