"""Points and payouts over HTTP, with real Redis and Postgres and a server clock the test moves:
the month an order earns in (local time), statements, exports, approval freezing a quarter."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from clients import ApiClient
from dispatcher.settings import Settings
from tests.pointsflows import (
    Clock,
    county,
    fetch,
    local,
    rate,
    read_csv,
    read_xlsx,
    replied,
    until_closed,
)
from tests.servers import InProcessServer
from tests.steps import Team, error, file, get, post


@pytest.fixture
async def srv(settings: Settings) -> AsyncIterator[tuple[InProcessServer, Clock]]:
    clock = Clock()
    clock.at(local(2026, 11, 30, 22, 0))
    settings = dataclasses.replace(settings, close_after=3600.0)
    async with InProcessServer(settings, clock=clock) as server:
        yield server, clock


async def november(server: InProcessServer, clock: Clock) -> tuple[Team, dict[str, Any]]:
    """Agents a, b (g1, township t1) and c (g2, t2); orders closed either side of midnight
    at the end of November, Shanghai time, covering every (class, rating) case."""
    t = await county(server.url, server.settings.admin_token or "", {"g1": 2, "g2": 1})
    a, b = t.agents["g1"]
    (c,) = t.agents["g2"]
    clock.at(local(2026, 11, 30, 22, 0))
    unrated = await replied(t, a, "class1")  # closes unrated at 23:30: 1.5
    clock.at(local(2026, 11, 30, 23, 20))
    o = {
        "a_c1_satisfied": (await replied(t, a, "class1"), "满意"),  # 2.5
        "a_c2_unsatisfied": (await replied(t, a, "class2"), "不满意"),  # 0
        "a_c2_fair": (await replied(t, a, "class2"), "一般"),  # 2
        "b_c1_very": (await replied(t, b, "class1"), "非常满意"),  # 2.5
        "c_text": (await replied(t, c, "text"), "满意"),  # no class: nothing, listed
    }
    cancelled = await file(t, grid="g1", item="HJ-002")
    r = await post(t.url, t.admin_token, cancelled["id"], "cancel", reason="申请人撤回")
    assert r.status_code == 200, r.text
    clock.at(local(2026, 11, 30, 23, 30))
    await until_closed(t, unrated["id"])
    for order, rating in o.values():
        await rate(t, order, rating)
    clock.at(local(2026, 12, 1, 0, 10))
    december = await replied(t, b, "class2")
    await rate(t, december, "满意")  # 3, in December although 30 November in UTC
    ids = {k: v[0]["id"] for k, v in o.items()} | {
        "a_unrated": unrated["id"],
        "b_december": december["id"],
    }
    return t, ids


async def test_monthly_points_follow_the_rule_and_local_months(
    srv: tuple[InProcessServer, Clock],
) -> None:
    server, clock = srv
    t, ids = await november(server, clock)
    a, b = t.agents["g1"]
    nov = await get(t.url, t.admin_token, "/v1/admin/points?month=2026-11")
    rows = {r["agent_id"]: r for r in nov["agents"]}
    assert set(rows) == {a["id"], b["id"]}  # c's only order has no class: not earning
    assert rows[a["id"]] | {"grids": None} == {
        "agent_id": a["id"],
        "name": a["name"],
        "grids": None,
        "orders": 4,
        "points": "6",  # 1.5 + 2.5 + 0 + 2
        "yuan": "60",
        "unsatisfied": 1,
        "unrated": 1,
        "adjustments": "0",
    }
    assert (rows[b["id"]]["orders"], rows[b["id"]]["points"]) == (1, "2.5")
    assert nov["totals"] == {"orders": 5, "points": "8.5", "yuan": "85"}
    assert [n["order_id"] for n in nov["needs_class"]] == [ids["c_text"]]
    dec = await get(t.url, t.admin_token, "/v1/admin/points?month=2026-12")
    assert [(r["agent_id"], r["points"]) for r in dec["agents"]] == [(b["id"], "3")]

    statement = await get(
        t.url, t.admin_token, f"/v1/admin/points?month=2026-11&agent_id={a['id']}"
    )
    lines = {o["order_id"]: o for o in statement["orders"]}
    assert {k: lines[ids[k]]["points"] for k in ids if k.startswith("a_")} == {
        "a_c1_satisfied": "2.5",
        "a_c2_unsatisfied": "0",
        "a_c2_fair": "2",
        "a_unrated": "1.5",
    }
    assert lines[ids["a_c2_fair"]]["rating_label"] == "一般"
    assert lines[ids["a_c2_fair"]]["item_class"] == 2
    assert lines[ids["a_unrated"]]["rating"] is None
    assert statement["totals"] == {"orders": 4, "points": "6", "yuan": "60"}

    # The agent's own statement, the same lines.
    own = await get(t.url, a["token"], "/v1/agent/points?month=2026-11")
    assert own["orders"] == statement["orders"] and own["totals"] == statement["totals"]


async def test_points_exports_parse_back(srv: tuple[InProcessServer, Clock]) -> None:
    server, clock = srv
    t, _ = await november(server, clock)
    a, _b = t.agents["g1"]
    status, headers, data = await fetch(
        t.url, t.admin_token, "/v1/admin/points?month=2026-11&format=csv"
    )
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert "points-2026-11.csv" in headers["content-disposition"]
    rows = read_csv(data)
    assert rows[0][:5] == ["代办员编号", "姓名", "网格", "工单数", "积分"]
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id[str(a["id"])][1] == a["name"] and by_id[str(a["id"])][4] == "6"
    assert by_id[str(a["id"])][5] == "60"

    status, headers, data = await fetch(
        t.url, t.admin_token, "/v1/admin/points?month=2026-11&format=xlsx"
    )
    assert status == 200 and "spreadsheetml" in headers["content-type"]
    sheet = read_xlsx(data)
    assert sheet[0][1] == "姓名"
    xrow = next(r for r in sheet[1:] if r[0] == a["id"])
    assert Decimal(str(xrow[4])) == Decimal(6) and xrow[1] == a["name"]

    status, _, data = await fetch(t.url, a["token"], "/v1/agent/points?month=2026-11&format=csv")
    lines = read_csv(data)
    assert status == 200 and lines[-1][0] == "合计" and lines[-1][6] == "6"
    assert sorted(r[4] for r in lines[1:-1]) == ["一般", "不满意", "未评价", "满意"]


async def test_parameters_and_who_may_read(srv: tuple[InProcessServer, Clock]) -> None:
    server, _ = srv
    t = await county(server.url, server.settings.admin_token or "", {"g1": 2})
    a, b = t.agents["g1"]
    async with ApiClient(t.url, t.admin_token) as admin:
        for path, field in [
            ("/v1/admin/points", "month"),
            ("/v1/admin/points?month=2026-13", "month"),
            ("/v1/admin/points?month=2026-11&agent_id=x", "agent_id"),
            ("/v1/admin/points?month=2026-11&format=pdf", "format"),
            ("/v1/admin/points?month=2026-11&bogus=1", "bogus"),
            ("/v1/admin/payouts?quarter=2026-Q5", "quarter"),
            ("/v1/admin/payouts", "quarter"),
        ]:
            r = await admin.request("GET", path)
            assert r.status_code == 422, (path, r.text)
            assert r.json()["error"]["details"]["field"] == field, path
        r = await admin.request("GET", "/v1/admin/points?month=2026-11&agent_id=999")
        assert error(r) == (404, "not_found")
        r = await admin.request("POST", "/v1/admin/payouts/2026-Q9/approve")
        assert error(r) == (422, "invalid_value")
    async with ApiClient(t.url, a["token"]) as agent:
        assert error(await agent.request("GET", "/v1/admin/points?month=2026-11")) == (
            403,
            "forbidden",
        )
        r = await agent.request("GET", f"/v1/agent/points?month=2026-11&agent_id={b['id']}")
        assert error(r) == (422, "unknown_field")  # an agent reads only its own statement
        r = await agent.request("POST", "/v1/admin/adjustments", {})
        assert error(r) == (403, "forbidden")
    async with ApiClient(t.url, t.admin_token) as admin:
        assert error(await admin.request("GET", "/v1/agent/points?month=2026-11")) == (
            403,
            "forbidden",
        )
    async with ApiClient(t.url, "bba_not-a-token") as nobody:
        r = await nobody.request("GET", "/v1/admin/points?month=2026-11")
        assert r.status_code == 401


async def test_adjustments_are_validated(srv: tuple[InProcessServer, Clock]) -> None:
    server, _ = srv
    t = await county(server.url, server.settings.admin_token or "", {"g1": 1})
    (a,) = t.agents["g1"]
    good = {"agent_id": a["id"], "month": "2026-11", "points": "-1.5", "reason": "迟报"}
    async with ApiClient(t.url, t.admin_token) as admin:
        for bad, field, code in [
            ({"points": "1.234"}, "points", "invalid_value"),
            ({"points": "0"}, "points", "invalid_value"),
            ({"points": 1.5}, "points", "invalid_value"),  # a float is not exact: a string
            ({"points": "NaN"}, "points", "invalid_value"),
            ({"month": "2026-1"}, "month", "invalid_value"),
            ({"month": "2027-01"}, "month", "invalid_value"),  # the future
            ({"agent_id": "1"}, "agent_id", "invalid_value"),
            ({"agent_id": 99999}, "agent_id", "unknown_agent"),
            ({"reason": ""}, "reason", "invalid_value"),
            ({"extra": 1}, "extra", "unknown_field"),
        ]:
            r = await admin.request("POST", "/v1/admin/adjustments", good | bad)
            assert r.status_code == 422, (bad, r.text)
            assert (r.json()["error"]["code"], r.json()["error"]["details"]["field"]) == (
                code,
                field,
            ), bad
        r = await admin.request(
            "POST", "/v1/admin/adjustments", {k: v for k, v in good.items() if k != "reason"}
        )
        assert error(r) == (422, "missing_field")
        r = await admin.request("POST", "/v1/admin/adjustments", good | {"points": 2})
        assert r.status_code == 201 and r.json()["points"] == "2"
        r = await admin.request("POST", "/v1/admin/adjustments", good)
        made = r.json()
        assert r.status_code == 201
        assert (made["points"], made["month"], made["moved_from"]) == ("-1.5", "2026-11", None)
    statement = await get(
        t.url, t.admin_token, f"/v1/admin/points?month=2026-11&agent_id={a['id']}"
    )
    assert [x["points"] for x in statement["adjustments"]] == ["2", "-1.5"]
    assert statement["adjustments"][1]["by"].startswith("admin")
    assert statement["totals"]["points"] == "0.5"


async def test_approval_freezes_the_quarter_and_later_changes_land_in_the_next_period(
    srv: tuple[InProcessServer, Clock],
) -> None:
    server, clock = srv
    t, ids = await november(server, clock)
    a, b = t.agents["g1"]
    (c,) = t.agents["g2"]
    async with ApiClient(t.url, t.admin_token) as admin:
        r = await admin.request(
            "POST",
            "/v1/admin/adjustments",
            {"agent_id": c["id"], "month": "2026-11", "points": "1", "reason": "补贴"},
        )
        assert r.status_code == 201
        r = await admin.request("POST", "/v1/admin/payouts/2026-Q4/approve")
        assert error(r) == (409, "quarter_not_over")

        live = await get(t.url, t.admin_token, "/v1/admin/payouts?quarter=2026-Q4")
        assert live["state"] == "open"
        per = {r["agent_id"]: r for r in live["agents"]}
        assert (per[a["id"]]["points"], per[b["id"]]["points"], per[c["id"]]["points"]) == (
            "6",
            "5.5",
            "1",
        )
        assert per[b["id"]]["months"] == {"2026-10": "0", "2026-11": "2.5", "2026-12": "3"}
        assert per[a["id"]]["township"] == "t1" and per[c["id"]]["township"] == "t2"
        towns = {x["township"]: x for x in live["townships"]}
        assert (towns["t1"]["points"], towns["t1"]["yuan"], towns["t1"]["name"]) == (
            "11.5",
            "115",
            "塔峰镇",
        )
        assert towns["t2"]["points"] == "1"
        assert live["totals"] == {"orders": 6, "points": "12.5", "yuan": "125"}

        clock.at(local(2027, 1, 4, 9, 0))
        r = await admin.request("POST", "/v1/admin/payouts/2026-Q4/approve")
        assert r.status_code == 201, r.text
        approved = r.json()
        assert approved["state"] == "approved" and approved["totals"] == live["totals"]
        r = await admin.request("POST", "/v1/admin/payouts/2026-Q4/approve")
        assert error(r) == (409, "already_approved")

        # After approval: an adjustment for December, and c's order classified at last.
        clock.at(local(2027, 1, 5, 10, 0))
        r = await admin.request(
            "POST",
            "/v1/admin/adjustments",
            {"agent_id": a["id"], "month": "2026-12", "points": "-2", "reason": "更正"},
        )
        moved = r.json()
        assert r.status_code == 201
        assert (moved["month"], moved["moved_from"], moved["for_month"]) == (
            "2027-01",
            "2026-12",
            "2026-12",
        )
        r = await admin.request(
            "POST",
            "/v1/admin/points/classify",
            {"order_id": ids["c_text"], "item_class": 1, "reason": "低保咨询，属一类"},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "order_id": ids["c_text"],
            "item_class": 1,
            "month": "2027-01",
            "points": "2.5",
            "moved_from": "2026-11",
        }
        r = await admin.request(
            "POST",
            "/v1/admin/points/classify",
            {"order_id": ids["c_text"], "item_class": 2, "reason": "再改"},
        )
        assert error(r) == (409, "has_class")
        r = await admin.request(
            "POST",
            "/v1/admin/points/classify",
            {"order_id": ids["a_c2_fair"], "item_class": 1, "reason": "x"},
        )
        assert error(r) == (409, "has_class")

    frozen = await get(t.url, t.admin_token, "/v1/admin/payouts?quarter=2026-Q4")
    assert frozen == approved  # the snapshot, whatever changed since
    november_now = await get(t.url, t.admin_token, "/v1/admin/points?month=2026-11")
    assert november_now["totals"]["points"] == "9.5"  # 8.5 + c's adjustment before approval
    january = await get(t.url, t.admin_token, "/v1/admin/points?month=2027-01")
    rows = {r["agent_id"]: r for r in january["agents"]}
    assert (rows[a["id"]]["points"], rows[c["id"]]["points"]) == ("-2", "2.5")
    statement = await get(t.url, c["token"], "/v1/agent/points?month=2027-01")
    assert [(o["order_id"], o["moved_from"], o["points"]) for o in statement["orders"]] == [
        (ids["c_text"], "2026-11", "2.5")
    ]
    q1 = await get(t.url, t.admin_token, "/v1/admin/payouts?quarter=2027-Q1")
    assert q1["state"] == "open" and q1["totals"]["points"] == "0.5"
    trail = await get(t.url, t.admin_token, f"/v1/orders/{ids['c_text']}/events")
    last = trail["events"][-1]
    assert (last["kind"], last["label"]) == (
        "points_classified",
        "政务专员已确认本次代办的事项类别",
    )

    status, _, data = await fetch(
        t.url, t.admin_token, "/v1/admin/payouts?quarter=2026-Q4&format=csv"
    )
    rows_csv = read_csv(data)
    assert status == 200
    assert rows_csv[0] == [
        "代办员编号",
        "姓名",
        "乡镇",
        "2026-10 积分",
        "2026-11 积分",
        "2026-12 积分",
        "工单数",
        "季度积分",
        "金额(元)",
    ]
    subtotal = [r for r in rows_csv if r[0] == "乡镇小计"]
    assert [(r[1], r[-2], r[-1]) for r in subtotal] == [
        ("塔峰镇", "11.5", "115"),
        ("祠堂圩镇", "1", "10"),
    ]
    assert rows_csv[-1][0] == "合计" and rows_csv[-1][-1] == "125"
    status, _, data = await fetch(
        t.url, t.admin_token, "/v1/admin/payouts?quarter=2026-Q4&format=xlsx"
    )
    sheet = read_xlsx(data)
    assert sheet[-1][0] == "合计" and Decimal(str(sheet[-1][-1])) == Decimal(125)


async def test_one_approval_wins_a_race_and_the_records_are_append_only(
    srv: tuple[InProcessServer, Clock],
) -> None:
    server, clock = srv
    t = await county(server.url, server.settings.admin_token or "", {"g1": 1})
    (a,) = t.agents["g1"]
    order = await replied(t, a, "class2")
    await rate(t, order, "满意")
    async with ApiClient(t.url, t.admin_token) as admin:
        r = await admin.request(
            "POST",
            "/v1/admin/adjustments",
            {"agent_id": a["id"], "month": "2026-11", "points": "0.5", "reason": "奖励"},
        )
        assert r.status_code == 201
        clock.at(local(2027, 1, 2, 9, 0))
        answers = await asyncio.gather(
            *(admin.request("POST", "/v1/admin/payouts/2026-Q4/approve") for _ in range(8))
        )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [409] * 7
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {
        "already_approved"
    }
    winner = next(r.json() for r in answers if r.status_code == 201)
    assert winner["totals"] == {"orders": 1, "points": "3.5", "yuan": "35"}
    conn = await asyncpg.connect(server.settings.database_url)
    try:
        for sql in (
            "UPDATE points_adjustments SET points = 100",
            "DELETE FROM points_adjustments",
            "UPDATE payout_approvals SET snapshot = '{}'::jsonb",
            "DELETE FROM payout_approvals",
        ):
            with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
                await conn.execute(sql)
    finally:
        await conn.close()
    frozen = await get(t.url, t.admin_token, "/v1/admin/payouts?quarter=2026-Q4")
    assert frozen == winner
