"""The console's points, pay and oversight pages and the agent's own statement, in real
Chromium against a real server whose clock the test moves (see tests/pointsflows.py): an
operator reads a month's points and an agent's statement, classifies a free-text order,
adds an adjustment, downloads the CSV, approves the finished quarter, draws the follow-up
sample and records a call that contradicts the rating; the agent app shows the statement."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from dispatcher.settings import Settings
from tests.browser import Pages
from tests.pointsflows import Clock, county, local, rate, read_csv, replied, until_closed
from tests.servers import InProcessServer
from tests.steps import get


@pytest.fixture
async def srv(settings: Settings) -> AsyncIterator[tuple[InProcessServer, Clock]]:
    clock = Clock()
    clock.at(local(2026, 11, 30, 22, 0))
    settings = dataclasses.replace(settings, close_after=3600.0)
    async with InProcessServer(settings, clock=clock) as server:
        yield server, clock


async def shoot(pages: Pages, page: Page, name: str) -> None:
    """Screenshots without the passing toasts of earlier steps."""
    await page.evaluate("document.getElementById('toasts')?.remove()")
    await pages.screenshots(page, name)


async def downloaded(page: Page, button: str) -> bytes:
    """The file a click on the button with id ``button`` saves."""
    async with page.expect_download() as info:
        await page.locator(f"#{button}").click()
    download = await info.value
    return await asyncio.to_thread(Path(await download.path()).read_bytes)


async def test_an_operator_runs_a_month_and_a_quarter_from_the_console(
    srv: tuple[InProcessServer, Clock], pages: Pages
) -> None:
    server, clock = srv
    pages.base_url = server.url
    t = await county(server.url, server.settings.admin_token or "", {"g1": 1, "g2": 1})
    (a,) = t.agents["g1"]
    (c,) = t.agents["g2"]
    clock.at(local(2026, 11, 30, 23, 0))
    satisfied = await replied(t, a, "class1")  # 1.5 + 1 = 2.5
    fair = await replied(t, a, "class2")  # 2
    text = await replied(t, c, "text")  # no class: nothing until classified
    for order, rating in ((satisfied, "满意"), (fair, "一般"), (text, "满意")):
        await rate(t, order, rating)
        await until_closed(t, order["id"])

    page = await pages.open(f"/console/#token={t.admin_token}", size={"width": 1280, "height": 800})
    await expect(page.locator("#conn")).to_have_text("已连接")
    # 积分: the month's table with totals, the statement of an agent on click.
    await page.get_by_role("link", name="积分").click()
    await page.locator("#points-month").fill("2026-11")
    await page.locator("#points-query").get_by_role("button", name="查询").click()
    row = page.locator(f'#points-table tbody tr[data-agent-id="{a["id"]}"]')
    await expect(row).to_contain_text(a["name"])
    await expect(row.locator("td").nth(4)).to_have_text("4.5")
    await expect(row.locator("td").nth(5)).to_have_text("45")
    await expect(page.locator("#points-table tfoot")).to_contain_text("4.5")
    await row.click()
    statement = page.get_by_role("article", name="积分明细")
    await expect(statement.locator(f'tr[data-order-id="{satisfied["id"]}"]')).to_contain_text(
        "满意"
    )
    await expect(
        statement.locator(f'tr[data-order-id="{satisfied["id"]}"] td').nth(5)
    ).to_have_text("2.5")
    await expect(statement.locator(f'tr[data-order-id="{fair["id"]}"] td').nth(5)).to_have_text("2")
    # The free-text order is listed as needing a class; classified 一类, it earns 2.5.
    needs = page.locator(f'#points-needs tr[data-order-id="{text["id"]}"]')
    await expect(needs).to_contain_text(c["name"])
    await needs.get_by_label(f"工单 {text['id']} 的类别").select_option("1")
    await needs.get_by_label(f"工单 {text['id']} 定类原因").fill("核实为一类事项")
    await needs.get_by_role("button", name="定类").click()
    c_row = page.locator(f'#points-table tbody tr[data-agent-id="{c["id"]}"]')
    await expect(c_row.locator("td").nth(4)).to_have_text("2.5")
    await expect(page.locator("#points-needs")).to_be_empty()
    # An adjustment for a's November (the form follows the selected agent).
    await expect(page.locator("#adjust-agent")).to_have_value(str(a["id"]))
    await page.locator("#adjust-month").fill("2026-11")
    await page.locator("#adjust-points").fill("-0.5")
    await page.locator("#adjust-reason").fill("迟报材料")
    await page.get_by_role("button", name="记录调整").click()
    await expect(row.locator("td").nth(4)).to_have_text("4")
    await expect(row.locator("td").nth(8)).to_have_text("-0.5")
    await expect(statement).to_contain_text("迟报材料")
    await expect(page.locator("#points-table tfoot")).to_contain_text("6.5")
    await shoot(pages, page, "console-points")
    # The month as CSV, fetched with the token: it parses, with the page's totals.
    rows = read_csv(await downloaded(page, "points-csv"))
    assert rows[0][:6] == ["代办员编号", "姓名", "网格", "工单数", "积分", "金额(元)"]
    by_id = {r[0]: r for r in rows[1:]}
    assert (by_id[str(a["id"])][4], by_id[str(a["id"])][5]) == ("4", "40")
    assert (by_id[str(c["id"])][4], by_id[str(c["id"])][5]) == ("2.5", "25")
    assert sum(Decimal(r[4]) for r in rows[1:]) == Decimal("6.5")
    assert sum(Decimal(r[5]) for r in rows[1:]) == Decimal("65")

    # 发放: on 30 November the quarter is not over, and the server says so.
    await page.get_by_role("link", name="发放").click()
    await page.locator("#payout-quarter").fill("2026-Q4")
    await page.locator("#payout-query").get_by_role("button", name="查询").click()
    await expect(page.locator("#payout-state")).to_contain_text("未审批")
    pages.allow(r"409 .*/v1/admin/payouts/2026-Q4/approve|status of 409")  # refused on purpose
    await page.get_by_role("button", name="审批本季度").click()
    await page.get_by_role("button", name="确认审批").click()
    await expect(page.locator("#payout-state")).to_contain_text("季度尚未结束，不能审批")
    await page.get_by_role("button", name="返回").click()
    # On 4 January it is over: approve it, with a confirmation.
    clock.at(local(2027, 1, 4, 9, 0))
    await expect(page.locator("#payout-table tbody")).to_contain_text("乡镇小计 塔峰镇")
    await expect(page.locator("#payout-table tfoot")).to_contain_text("6.5")
    await page.get_by_role("button", name="审批本季度").click()
    await expect(page.get_by_role("alertdialog", name="确认审批")).to_contain_text("2026-Q4")
    await page.get_by_role("button", name="确认审批").click()
    await expect(page.locator("#payout-state")).to_contain_text("已审批")
    payout = await get(t.url, t.admin_token, "/v1/admin/payouts?quarter=2026-Q4")
    assert payout["state"] == "approved" and payout["totals"]["points"] == "6.5"
    await shoot(pages, page, "console-payouts")
    finance = read_csv(await downloaded(page, "payout-csv"))
    assert finance[0][2] == "乡镇" and finance[-1][0] == "合计"
    assert finance[-1][-2:] == ["6.5", "65"]
    subtotals = {r[1]: r[-2:] for r in finance if r[0] == "乡镇小计"}
    assert subtotals == {"塔峰镇": ["4", "40"], "祠堂圩镇": ["2.5", "25"]}

    # 回访: no sample yet; draw all of November, record a call contradicting 满意.
    pages.allow(r"404 .*/v1/admin/followups|status of 404")  # the page asks, "no sample" yet
    await page.get_by_role("link", name="回访").click()
    # The view loads the browser's last month on its own when first shown, and the query loads
    # again: each answer puts up a fresh sample form.  Wait for the first, then fill only the
    # form the query put up (a late first answer used to replace it between the two fills).
    sample = page.locator("#followups-sample")
    await expect(sample).not_to_be_empty()
    await sample.evaluate("box => { for (const el of box.children) el.dataset.stale = '1'; }")
    await page.locator("#followups-month").fill("2026-11")
    await page.locator("#followups-query").get_by_role("button", name="查询").click()
    await expect(page.locator("#followups-sample > form:not([data-stale])")).to_be_visible()
    await page.get_by_label("抽样比例").fill("1")
    await page.get_by_label("随机种子").fill("4611686018427387903")  # 2^62 - 1, beyond a JS number
    await page.get_by_role("button", name="抽取回访样本").click()
    call = page.locator(f'#followups-table tr[data-order-id="{satisfied["id"]}"]')
    await expect(call).to_contain_text("13800001111")  # the applicant's phone
    await expect(call).to_contain_text("未回访")
    await expect(page.locator("#followups-table tbody tr")).to_have_count(3)
    await call.get_by_label(f"工单 {satisfied['id']} 是否满意").select_option("no")
    await call.get_by_label(f"工单 {satisfied['id']} 回访备注").fill("说材料跑了两趟")
    await call.get_by_role("button", name="记录").click()
    await expect(call).to_contain_text("与评价不符")
    await expect(call).to_have_class("contradicts")
    await expect(page.locator("#followups-sample")).to_contain_text("1 件回访与评价不符")
    listed = await get(t.url, t.admin_token, "/v1/admin/followups?month=2026-11")
    outcome = next(o["call"] for o in listed["orders"] if o["order_id"] == satisfied["id"])
    assert outcome["reached"] is True and outcome["satisfied"] is False
    assert outcome["contradicts"] is True and outcome["comment"] == "说材料跑了两趟"
    assert listed["seed"] == 4611686018427387903  # the operator's seed, exactly
    await expect(page.locator("#followups-sample")).to_contain_text(f"种子 {listed['seed']}")
    await shoot(pages, page, "console-followups")

    # 报表: figures per grid, the ranking, the idle list.
    await page.get_by_role("link", name="报表").click()
    await page.locator("#reports-month").fill("2026-11")
    await page.locator("#reports-query").get_by_role("button", name="查询").click()
    await expect(page.locator("#figures-table tbody")).to_contain_text("虎溪村")
    await expect(page.locator("#figures-table tfoot td").nth(1)).to_have_text("3")  # filed
    await expect(page.locator("#top-table tbody tr").first).to_contain_text(a["name"])
    await expect(page.locator("#inactive-days")).not_to_be_empty()
    await shoot(pages, page, "console-reports")
    # 公平: every agent that claimed, with its offers and wins.
    await page.get_by_role("link", name="公平").click()
    await page.locator("#fairplay-month").fill("2026-11")
    await page.locator("#fairplay-query").get_by_role("button", name="查询").click()
    fairplay = page.locator(f'#fairplay-table tr[data-agent-id="{a["id"]}"]')
    await expect(fairplay.locator("td").nth(3)).to_have_text("2")  # wins
    await expect(page.locator("#fairplay-thresholds")).to_contain_text("毫秒")
    await shoot(pages, page, "console-fairplay")
    pages.assert_clean()


async def test_the_agent_app_shows_the_agents_own_statement(
    srv: tuple[InProcessServer, Clock], pages: Pages
) -> None:
    server, clock = srv
    pages.base_url = server.url
    t = await county(server.url, server.settings.admin_token or "", {"g1": 1})
    (a,) = t.agents["g1"]
    clock.at(local(2026, 11, 30, 23, 0))
    satisfied = await replied(t, a, "class2")  # 2 + 1 = 3
    unhappy = await replied(t, a, "class1")  # 0
    await rate(t, satisfied, "非常满意")
    await rate(t, unhappy, "不满意")
    for order in (satisfied, unhappy):
        await until_closed(t, order["id"])

    page = await pages.open(f"/app/#token={a['token']}")
    await expect(page.locator("#conn")).to_have_text("已连接")
    await page.get_by_role("tab", name="我的积分").click()
    await page.locator("#points-month").fill("2026-11")
    await page.get_by_role("button", name="查看").click()
    body = page.locator("#points-body")
    await expect(body.get_by_label("本月合计")).to_contain_text("3积分")
    await expect(body.get_by_label("本月合计")).to_contain_text("30金额（元）")
    line = body.locator(f'article[data-order-id="{satisfied["id"]}"]')
    await expect(line).to_contain_text("3 分")
    await expect(line).to_contain_text("非常满意")
    await expect(body.locator(f'article[data-order-id="{unhappy["id"]}"]')).to_contain_text("0 分")
    await expect(body).not_to_contain_text("null")
    await shoot(pages, page, "app-points")
    # Another month: nothing counted there.
    await page.locator("#points-month").fill("2026-10")
    await page.get_by_role("button", name="查看").click()
    await expect(body).to_contain_text("本月没有计分工单。")
    pages.assert_clean()
