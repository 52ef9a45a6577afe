"""Follow-up calls (回访) and oversight reports over HTTP, with real Redis and Postgres: the
sample is reproducible from its seed and covers every agent, outcomes reach the trail, the
reports and their exports."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from clients import ApiClient
from dispatcher.core import followup
from dispatcher.settings import Settings
from tests.pointsflows import Clock, county, fetch, local, rate, read_csv, read_xlsx, replied
from tests.servers import InProcessServer
from tests.steps import Team, error, get


@pytest.fixture
async def srv(settings: Settings) -> AsyncIterator[tuple[InProcessServer, Clock]]:
    clock = Clock()
    clock.at(local(2026, 11, 20, 10, 0))
    settings = dataclasses.replace(settings, close_after=3600.0)
    async with InProcessServer(settings, clock=clock) as server:
        yield server, clock


async def closed_month(server: InProcessServer, clock: Clock) -> tuple[Team, list[int]]:
    """November: agent a closes 12 orders, b 2, c 1; d (g2) closes none."""
    t = await county(server.url, server.settings.admin_token or "", {"g1": 3, "g2": 1})
    a, b, c = t.agents["g1"]
    ids = []
    ratings = ["满意", "非常满意", "一般", "不满意"]
    for i, agent in enumerate([a] * 12 + [b] * 2 + [c]):
        order = await replied(t, agent, "class1")
        await rate(t, order, ratings[i % 4])
        ids.append(order["id"])
    return t, ids


async def test_the_sample_is_reproducible_and_covers_every_agent(
    srv: tuple[InProcessServer, Clock],
) -> None:
    server, clock = srv
    t, ids = await closed_month(server, clock)
    a, b, c = t.agents["g1"]
    async with ApiClient(t.url, t.admin_token) as admin:
        r = await admin.request("POST", "/v1/admin/followups/2026-11/sample", {"seed": 42})
        assert error(r) == (409, "month_not_over")
        clock.at(local(2026, 12, 2, 9, 0))
        for bad, field in [
            ({"seed": -1}, "seed"),
            ({"share": "2"}, "share"),
            ({"share": 0.1}, "share"),
            ({"share": "0.12345"}, "share"),
            ({"x": 1}, "x"),
        ]:
            r = await admin.request("POST", "/v1/admin/followups/2026-11/sample", bad)
            assert r.status_code == 422 and r.json()["error"]["details"]["field"] == field
        r = await admin.request("POST", "/v1/admin/followups/2026-11/sample", {"seed": 42})
        assert r.status_code == 201, r.text
        sample = r.json()
        r = await admin.request("POST", "/v1/admin/followups/2026-11/sample", {"seed": 7})
        assert error(r) == (409, "already_sampled")

    assert (sample["seed"], sample["share"], sample["candidates"]) == (42, "0.1", 15)
    drawn = [o["order_id"] for o in sample["orders"]]
    # 10% of 15 is 2 (rounded up), but three agents closed orders: one each at least.
    assert len(drawn) == 3
    assert {o["agent_id"] for o in sample["orders"]} == {a["id"], b["id"], c["id"]}
    # Anyone can redraw it from the recorded seed and the month's closed orders.
    statements = [
        await get(t.url, t.admin_token, f"/v1/admin/points?month=2026-11&agent_id={ag['id']}")
        for ag in (a, b, c)
    ]
    pool = [
        followup.Candidate(o["order_id"], s["agent"]["agent_id"])
        for s in statements
        for o in s["orders"]
    ]
    assert sorted(p.order_id for p in pool) == sorted(ids)
    assert followup.select(pool, Decimal(sample["share"]), sample["seed"]) == drawn
    first = sample["orders"][0]
    assert first["applicant_phone"] == "13800001111" and first["call"] is None
    assert first["item_name"] and first["agent_name"]

    listed = await get(t.url, t.admin_token, "/v1/admin/followups?month=2026-11")
    assert [o["order_id"] for o in listed["orders"]] == drawn
    trail = await get(t.url, t.admin_token, f"/v1/orders/{drawn[0]}/events")
    assert (trail["events"][-1]["kind"], trail["events"][-1]["label"]) == (
        "followup_sampled",
        "本次代办已被抽中回访，工作人员将电话回访您",
    )


async def test_call_outcomes_flag_contradictions_and_reach_the_trail(
    srv: tuple[InProcessServer, Clock],
) -> None:
    server, clock = srv
    t, _ids = await closed_month(server, clock)
    clock.at(local(2026, 12, 2, 9, 0))
    async with ApiClient(t.url, t.admin_token) as admin:
        r = await admin.request("POST", "/v1/admin/followups/2026-11/sample", {"share": "1"})
        assert r.status_code == 201
        orders = r.json()["orders"]
        assert len(orders) == 15
        satisfied = next(o for o in orders if o["rating"] == "satisfied")
        unhappy = next(o for o in orders if o["rating"] == "unsatisfied")
        r = await admin.request(
            "POST",
            "/v1/admin/followups/calls",
            {
                "order_id": satisfied["order_id"],
                "reached": True,
                "satisfied": False,
                "comment": "说没有办完",
            },
        )
        assert r.status_code == 201 and r.json()["contradicts"] is True
        r = await admin.request(
            "POST",
            "/v1/admin/followups/calls",
            {"order_id": unhappy["order_id"], "reached": False, "satisfied": None},
        )
        assert r.status_code == 201 and r.json()["contradicts"] is False
        for bad, field, code in [
            ({"order_id": satisfied["order_id"]}, "reached", "missing_field"),
            ({"order_id": satisfied["order_id"], "reached": "yes"}, "reached", "invalid_value"),
            (
                {"order_id": satisfied["order_id"], "reached": False, "satisfied": True},
                "satisfied",
                "invalid_value",
            ),
            ({"reached": True}, "order_id", "missing_field"),
        ]:
            r = await admin.request("POST", "/v1/admin/followups/calls", bad)
            assert r.status_code == 422, (bad, r.text)
            assert (r.json()["error"]["code"], r.json()["error"]["details"]["field"]) == (
                code,
                field,
            )
        r = await admin.request(
            "POST", "/v1/admin/followups/calls", {"order_id": 999999, "reached": True}
        )
        assert error(r) == (404, "not_found")
        r = await admin.request("GET", "/v1/admin/followups?month=2026-10")
        assert error(r) == (404, "no_sample")

    trail = await get(t.url, t.admin_token, f"/v1/orders/{satisfied['order_id']}/events")
    called = trail["events"][-1]
    assert (called["kind"], called["label"]) == ("followup_called", "工作人员已电话回访")
    assert called["details"]["contradicts"] is True and called["details"]["comment"] == "说没有办完"
    trail = await get(t.url, t.admin_token, f"/v1/orders/{unhappy['order_id']}/events")
    assert trail["events"][-1]["label"] == "工作人员电话回访未能接通"

    status, headers, data = await fetch(
        t.url, t.admin_token, "/v1/admin/followups?month=2026-11&format=csv"
    )
    rows = read_csv(data)
    assert status == 200 and "followups-2026-11.csv" in headers["content-disposition"]
    assert rows[0][:3] == ["工单", "申请人", "电话"]
    row = next(r for r in rows if r[0] == str(satisfied["order_id"]))
    assert row[2] == "13800001111" and row[5] == "满意" and row[6:9] == ["是", "否", "是"]
    status, _, data = await fetch(
        t.url, t.admin_token, "/v1/admin/followups?month=2026-11&format=xlsx"
    )
    sheet = read_xlsx(data)
    assert len(sheet) == 16 and sheet[0][0] == "工单"


async def test_oversight_reports(srv: tuple[InProcessServer, Clock]) -> None:
    server, clock = srv
    t, _ids = await closed_month(server, clock)
    a, b, c = t.agents["g1"]
    (d,) = t.agents["g2"]
    clock.at(local(2026, 12, 30, 11, 0))  # 40 days after: everybody idle for 30
    inactive = await get(t.url, t.admin_token, "/v1/admin/oversight/inactive")
    assert inactive["days"] == 30
    assert [x["agent_id"] for x in inactive["agents"]] == [d["id"], a["id"], b["id"], c["id"]]
    assert inactive["agents"][0]["idle_days"] is None and inactive["agents"][1]["idle_days"] == 40
    recent = await get(t.url, t.admin_token, "/v1/admin/oversight/inactive?days=60")
    assert [x["agent_id"] for x in recent["agents"]] == [d["id"]]
    async with ApiClient(t.url, t.admin_token) as admin:
        r = await admin.request("GET", "/v1/admin/oversight/inactive?days=0")
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "days"
        r = await admin.request("GET", "/v1/admin/oversight/top?month=2026-11&quarter=2026-Q4")
        assert r.status_code == 422
        r = await admin.request("GET", "/v1/admin/oversight/figures?month=2026-11&by=village")
        assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "by"

    top = await get(t.url, t.admin_token, "/v1/admin/oversight/top?quarter=2026-Q4&limit=2")
    assert [(x["rank"], x["agent_id"], x["orders"]) for x in top["agents"]] == [
        (1, a["id"], 12),
        (2, b["id"], 2),
    ]

    by_town = await get(
        t.url, t.admin_token, "/v1/admin/oversight/figures?month=2026-11&by=township"
    )
    (t1,) = by_town["groups"]
    assert (t1["township"], t1["name"], t1["filed"], t1["closed"], t1["rated"]) == (
        "t1",
        "塔峰镇",
        15,
        15,
        15,
    )
    # Ratings cycle 满意, 非常满意, 一般, 不满意 over 15 orders: 8 satisfied of 15 rated.
    assert t1["satisfaction"] == "0.5333" and t1["participation"] == "1"
    assert t1["claimed_in_time"] == "1" and t1["widened"] == "0" and t1["escalated"] == "0"
    assert isinstance(t1["median_claim_ms"], int) and t1["on_time"] == "1"
    by_county = await get(
        t.url, t.admin_token, "/v1/admin/oversight/figures?quarter=2026-Q4&by=county"
    )
    assert [g["county"] for g in by_county["groups"]] == ["c1"]
    status, _, data = await fetch(
        t.url, t.admin_token, "/v1/admin/oversight/figures?month=2026-11&by=grid&format=csv"
    )
    rows = read_csv(data)
    assert status == 200 and rows[0][2] == "受理工单" and rows[1][:3] == ["g1", "虎溪村", "15"]
    assert "实际参评满意率" in rows[0]
    status, _, data = await fetch(
        t.url, t.admin_token, "/v1/admin/oversight/top?month=2026-11&format=xlsx"
    )
    assert status == 200 and read_xlsx(data)[1][1] == a["id"]
    status, _, data = await fetch(t.url, t.admin_token, "/v1/admin/oversight/inactive?format=csv")
    assert read_csv(data)[1][4] == "从未办理"
